"""Roles inside an account, per role per action: every operation in the OpenAPI schema, every admin
action, the admin pages, API token scopes and the commands (accounts/roles.py is the one layer).

The expectations here are written out independently of accounts.roles.ROLE_CAPABILITIES, so a
change of the policy table must be made twice: there and here, on purpose.
"""

import re

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from accounts.roles import Capability, Role
from accounts.services import account_create, api_token_create, staff_user_create, user_role_change
from inventory.models import ChannelConnection, ChannelListing, DesiredState
from tests.factories import make_item

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"
ROLES = [Role.OWNER, Role.MANAGER, Role.STAFF, Role.VIEWER]

# Who may change what, as the issue states it: owner (billing, connections, people), manager
# (everything but billing and people), staff (items, listing, printing, orders), viewer (read only).
MAY = {
    "catalogue": {"owner", "manager", "staff"},
    "operations": {"owner", "manager"},
    "connections": {"owner", "manager"},
    "billing": {"owner"},
    "people": {"owner"},
}
# What a write to each part of the API takes, by path prefix (the first match wins).
API_WRITES = [
    ("/api/v1/items/", "catalogue"),
    ("/api/v1/orders/", "catalogue"),
    ("/api/v1/listings/", "catalogue"),
    ("/api/v1/conflicts/", "catalogue"),
    ("/api/v1/alerts/", "catalogue"),
    ("/api/v1/documents/", "catalogue"),
    ("/api/v1/connections/", "connections"),
    ("/api/v1/etsy/connections/", "connections"),
    ("/api/v1/sync-runs/", "operations"),
    ("/api/v1/webhook-events/", "operations"),
    ("/api/v1/billing/", "billing"),
    ("/api/v1/analytics/", "catalogue"),  # reads only: no write is in the schema
]
PUBLIC = {"/api/v1/auth/token/"}
SAFE = {"get", "head", "options"}


def _operations():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, methods in schema["paths"].items():
        for method in methods:
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method


OPERATIONS = sorted(_operations())


def _write_capability(path: str) -> str:
    for prefix, capability in API_WRITES:
        if path.startswith(prefix):
            return capability
    raise AssertionError(f"{path} is in the schema but not in this test's table: say what a write there takes.")


def _person(account, role: str):
    return staff_user_create(account=account, username=f"{role}-person", password=PASSWORD, role=role)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _call(client, method: str, path: str):
    concrete = re.sub(r"\{[^}]+\}", "999999", path)
    return getattr(client, method)(concrete, {}, format="json")


def test_the_schema_has_the_operations_this_table_covers():
    assert len(OPERATIONS) > 40
    for path, _ in OPERATIONS:
        if path not in PUBLIC:
            _write_capability(path)


@pytest.mark.parametrize("role", ROLES)
def test_every_api_operation_is_allowed_or_refused_as_the_role_says(account, role):
    client = _client(_person(account, role))
    wrong = []
    for path, method in OPERATIONS:
        if path in PUBLIC:
            continue
        allowed = method in SAFE or role in MAY[_write_capability(path)]
        response = _call(client, method, path)
        refused_by_role = response.status_code == 403 and "may not do this" in str(response.data)
        if allowed and response.status_code == 403:
            wrong.append(f"{method.upper()} {path}: refused ({response.data}) but a {role} may")
        if not allowed and not refused_by_role:
            wrong.append(f"{method.upper()} {path}: answered {response.status_code}, a {role} must be refused")
    assert wrong == []


def test_a_refusal_says_which_role_it_takes(account):
    response = _client(_person(account, Role.STAFF)).post("/api/v1/webhook-events/bulk-replay/", {}, format="json")
    assert response.status_code == 403
    assert "owner or manager" in str(response.data["detail"])


def test_a_read_token_reads_everything_and_writes_nothing(account):
    owner = _person(account, Role.OWNER)
    _, key = api_token_create(user=owner, name="website", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    for path, method in OPERATIONS:
        if path in PUBLIC:
            continue
        response = _call(client, method, path)
        if method in SAFE:
            assert response.status_code != 403, (method, path, response.data)
        else:
            assert response.status_code == 403, (method, path, response.status_code)
            assert "read only" in str(response.data["detail"])


def test_a_read_write_token_does_what_its_persons_role_allows(account):
    staff = _person(account, Role.STAFF)
    _, key = api_token_create(user=staff, name="scanner", scope="read_write")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    item = make_item(account, sku="TOKEN-1")
    assert client.patch(f"/api/v1/items/{item.pk}/", {"title": "Renamed by token"}, format="json").status_code == 200
    assert client.post("/api/v1/connections/", {"channel": "reverb"}, format="json").status_code == 403


# --- Admin ---------------------------------------------------------------------------------

# What changing each admin model takes, as the issue states it. Channel apps: connections are
# connections, everything else there is catalogue detail.
ADMIN_MODELS = {
    "accounts.account": "operations",
    "accounts.user": "people",
    "inventory.item": "catalogue",
    "inventory.order": "catalogue",
    "inventory.channellisting": "catalogue",
    "inventory.conflict": "catalogue",
    "inventory.alert": "catalogue",
    "inventory.stockmovement": "catalogue",
    "inventory.stocklock": "catalogue",
    "inventory.channelconnection": "connections",
    "inventory.webhookevent": "operations",
    "inventory.syncrun": "operations",
    "documents.documentsettings": "operations",
}


def _admin_capability(model) -> str | None:
    label = model._meta.label_lower
    if label in ADMIN_MODELS:
        return ADMIN_MODELS[label]
    if model._meta.app_label.startswith("channels_"):
        return "connections" if model._meta.model_name.endswith("connection") else "catalogue"
    return None  # platform admins (billing's, celery beat's, the audit log, tokens): tested elsewhere


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_every_admin_action_is_offered_to_the_roles_that_may_run_it(account):
    people = {role: _person(account, role) for role in ROLES}
    wrong = []
    checked = 0
    for model, model_admin in admin.site._registry.items():
        capability = _admin_capability(model)
        if capability is None:
            continue
        owners = set(model_admin.get_actions(_request(people[Role.OWNER])))
        for role in ROLES:
            offered = set(model_admin.get_actions(_request(people[role])))
            for name in owners:
                checked += 1
                expected = name == "export_admin_action" or role in MAY[capability]
                if (name in offered) != expected:
                    wrong.append(f"{model._meta.label}.{name}: {'offered' if name in offered else 'hidden'} to {role}")
    assert checked > 150  # every model's actions, four roles
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_admin_pages_per_role(client, account, role):
    person = _person(account, role)
    client.force_login(person)
    item = make_item(account, sku="PAGE-1")
    assert client.get("/admin/inventory/item/").status_code == 200  # everyone sees the catalogue
    can_edit = role in MAY["catalogue"]
    change = client.get(f"/admin/inventory/item/{item.pk}/change/")
    assert change.status_code == 200
    assert ('name="_save"' in change.content.decode()) is can_edit
    assert client.get("/admin/inventory/item/add/").status_code == (200 if can_edit else 403)
    assert client.get("/admin/channels_reverb/reverbconnection/add/").status_code in (
        (200, 302) if role in MAY["connections"] else (403,)
    )
    assert client.get("/admin/accounts/user/invite/").status_code == (200 if role in MAY["people"] else 403)


def _connection(account):
    return ChannelConnection.objects.create(account=account, channel="reverb", name="Reverb")


def test_a_viewer_posting_an_admin_action_changes_nothing(client, account):
    item = make_item(account, sku="VIEW-1")
    listing = ChannelListing.objects.create(
        account=account, item=item, connection=_connection(account), desired_state=DesiredState.LIVE
    )
    client.force_login(_person(account, Role.VIEWER))
    client.post("/admin/inventory/item/", {"action": "delist_everywhere", "_selected_action": [item.pk], "index": 0})
    listing.refresh_from_db()
    assert listing.desired_state == DesiredState.LIVE


def test_a_staff_member_cannot_replay_webhooks_through_the_admin(client, account):
    from inventory.models import WebhookEvent, WebhookStatus

    connection = _connection(account)
    event = WebhookEvent.objects.create(
        account=account, connection=connection, topic="orders/create", dedupe_key="x-1", payload={}, status="failed"
    )
    client.force_login(_person(account, Role.STAFF))
    client.post("/admin/inventory/webhookevent/", {"action": "replay", "_selected_action": [event.pk], "index": 0})
    event.refresh_from_db()
    assert event.status == WebhookStatus.FAILED


# --- Commands, role changes ------------------------------------------------------------------


def test_a_command_run_as_a_viewer_is_refused_and_as_staff_is_recorded_as_theirs(account):
    item = make_item(account, sku="CMD-1")
    listing = ChannelListing.objects.create(
        account=account, item=item, connection=_connection(account), desired_state=DesiredState.LIVE
    )
    viewer, staff = _person(account, Role.VIEWER), _person(account, Role.STAFF)
    with pytest.raises(CommandError, match="viewer may not"):
        call_command("delist_everywhere", "CMD-1", account=account.slug, apply=True, as_user=viewer.username)
    listing.refresh_from_db()
    assert listing.desired_state == DesiredState.LIVE

    call_command("delist_everywhere", "CMD-1", account=account.slug, apply=True, as_user=staff.username)
    listing.refresh_from_db()
    assert listing.desired_state == DesiredState.ENDED
    entry = AuditEntry.objects.get(
        content_type__model="channellisting", object_id=listing.pk, action=AuditEntry.Action.UPDATE
    )
    assert entry.actor == staff
    assert entry.changes_dict["desired_state"] == ["live", "ended"]
    assert entry.item_id == item.pk and entry.account_id == account.pk


def test_the_last_owner_cannot_be_demoted_and_role_changes_take_an_owner(account):
    from django.core.exceptions import PermissionDenied, ValidationError

    owner, manager = _person(account, Role.OWNER), _person(account, Role.MANAGER)
    with pytest.raises(PermissionDenied):
        user_role_change(user=owner, role=Role.VIEWER, by=manager)
    with pytest.raises(ValidationError, match="needs an owner"):
        user_role_change(user=owner, role=Role.VIEWER, by=owner)
    user_role_change(user=manager, role=Role.OWNER, by=owner)
    manager.refresh_from_db()
    user_role_change(user=owner, role=Role.VIEWER, by=manager)
    owner.refresh_from_db()
    assert owner.role == Role.VIEWER


def test_existing_account_users_became_owners(account):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("accounts.migrations.0003_accounts_roles_tokens_audit")
    user = staff_user_create(account=account, username="old", password=PASSWORD, role=Role.VIEWER)
    migration.existing_users_are_owners(apps, None)
    user.refresh_from_db()
    assert user.role == Role.OWNER


def test_capabilities_are_the_documented_ones():
    assert set(Capability.values) == {"view", *MAY}


def test_the_admin_form_keeps_an_active_owner(account):
    from django.core.exceptions import ValidationError

    from accounts.services import owner_check_kept

    owner = _person(account, Role.OWNER)
    with pytest.raises(ValidationError, match="needs an active owner"):
        owner_check_kept(user=owner, new_role=Role.OWNER, new_active=False)
    with pytest.raises(ValidationError, match="needs an active owner"):
        owner_check_kept(user=owner, new_role=Role.MANAGER, new_active=True)
    _person(account, Role.MANAGER)
    second = staff_user_create(account=account, username="second-owner", password=PASSWORD, role=Role.OWNER)
    owner_check_kept(user=owner, new_role=Role.MANAGER, new_active=True)  # another owner is left
    assert second.role == Role.OWNER


def test_an_owner_changes_a_role_in_the_admin_and_it_is_audited(client, account):
    owner, bob = _person(account, Role.OWNER), _person(account, Role.STAFF)
    client.force_login(owner)
    page = client.get(f"/admin/accounts/user/{bob.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "role": Role.MANAGER,
            "date_joined_0": bob.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": bob.date_joined.strftime("%H:%M:%S"),
            "is_active": "on",
            "is_staff": "on",
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)
    data.pop("groups", None)
    response = client.post(f"/admin/accounts/user/{bob.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    bob.refresh_from_db()
    assert bob.role == Role.MANAGER
    entry = AuditEntry.objects.get(content_type__model="user", object_id=bob.pk, action=AuditEntry.Action.UPDATE)
    assert entry.actor == owner and entry.changes_dict["role"] == ["staff", "manager"]


def test_printing_from_the_shell_as_a_viewer_is_refused(account, tmp_path):
    viewer = _person(account, Role.VIEWER)
    make_item(account, sku="PRINT-1")
    with pytest.raises(CommandError, match="viewer may not"):
        call_command(
            "print_documents",
            "labels",
            account=account.slug,
            sku=["PRINT-1"],
            output=str(tmp_path / "l.pdf"),
            as_user=viewer.username,
        )
    assert not (tmp_path / "l.pdf").exists()
    with pytest.raises(CommandError, match="does not work for"):
        other = staff_user_create(
            account=account_create(name="Other shop"),
            username="outsider",
            password=PASSWORD,
        )
        call_command("print_documents", "labels", account=account.slug, sku=["PRINT-1"], as_user=other.username)
