"""Per-person API tokens (hashed, scoped, revocable) and the audit log (who changed what, before/after)."""

import pytest
from django.db import connection as db
from rest_framework.test import APIClient

from accounts.audit import SECRET_MASK
from accounts.models import ApiToken, AuditEntry
from accounts.roles import Role
from accounts.services import api_token_create, api_token_revoke, staff_user_create, user_role_change
from tests.factories import make_item

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# --- Tokens ----------------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_digest(staff):
    token, key = api_token_create(user=staff, name="website", scope="read")

    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        rows = cursor.fetchall()
    assert key not in repr(rows)
    assert token.prefix == key[:10] and len(token.digest) == 64


def test_a_token_records_when_it_was_last_used_and_stops_at_once_when_revoked(staff, account):
    token, key = api_token_create(user=staff, name="website", scope="read")
    assert token.last_used_at is None

    assert _token_client(key).get("/api/v1/items/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None

    api_token_revoke(token=token, by=staff)
    response = _token_client(key).get("/api/v1/items/")
    assert response.status_code == 401
    assert "revoked" in str(response.data)


def test_only_an_owner_revokes_a_colleagues_token(account, staff):
    from django.core.exceptions import PermissionDenied

    colleague = staff_user_create(account=account, username="bob", password=PASSWORD, role=Role.STAFF)
    token, _ = api_token_create(user=staff, name="owner's", scope="read")
    with pytest.raises(PermissionDenied):
        api_token_revoke(token=token, by=colleague)
    own, _ = api_token_create(user=colleague, name="bob's", scope="read")
    api_token_revoke(token=own, by=colleague)
    api_token_revoke(token=token, by=staff)
    assert ApiToken.objects.filter(revoked_at__isnull=False).count() == 2


def test_the_login_endpoint_still_answers_a_token_now_a_hashed_one_per_call(staff, account):
    client = APIClient()
    first = client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}).data["token"]
    second = client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD, "name": "nightly export", "scope": "read"}
    ).data["token"]

    assert first != second
    assert list(ApiToken.objects.filter(user=staff).order_by("created_at").values_list("scope", flat=True)) == [
        "read_write",
        "read",
    ]
    assert ApiToken.objects.filter(name="nightly export").exists()
    make_item(account)
    assert _token_client(first).get("/api/v1/items/").data["count"] == 1
    assert client.post("/api/v1/auth/token/", {"username": "alice", "password": "wrong"}).status_code == 400


def test_the_admin_shows_a_new_token_once(client, staff):
    client.force_login(staff)
    response = client.post(
        "/admin/accounts/apitoken/add/", {"user": staff.pk, "name": "scanner", "scope": "read"}, follow=True
    )

    token = ApiToken.objects.get(name="scanner")
    page = response.content.decode()
    assert "Copy it now" in page
    assert token.prefix in page
    listing = client.get("/admin/accounts/apitoken/").content.decode()
    assert "scanner" in listing and "Copy it now" not in listing


def test_a_staff_member_sees_only_their_own_tokens_and_an_owner_all(client, account, staff):
    colleague = staff_user_create(account=account, username="bob", password=PASSWORD, role=Role.STAFF)
    api_token_create(user=staff, name="owner-token")
    api_token_create(user=colleague, name="bob-token")

    client.force_login(colleague)
    page = client.get("/admin/accounts/apitoken/").content.decode()
    assert "bob-token" in page and "owner-token" not in page
    client.force_login(staff)
    page = client.get("/admin/accounts/apitoken/").content.decode()
    assert "bob-token" in page and "owner-token" in page


def test_old_drf_tokens_become_hashed_tokens_with_the_same_key(staff, account):
    from importlib import import_module

    from django.apps import apps
    from rest_framework.authtoken.models import Token

    old = Token.objects.create(user=staff)
    import_module("accounts.migrations.0003_accounts_roles_tokens_audit").tokens_hashed(apps, None)

    assert not Token.objects.exists()
    make_item(account)
    assert _token_client(old.key).get("/api/v1/items/").data["count"] == 1


# --- Audit log -------------------------------------------------------------------------------


def test_an_item_edit_through_the_api_is_logged_with_who_and_before_and_after(staff, account):
    item = make_item(account, sku="AUD-1", price="1000.00", title="Old title")
    _, key = api_token_create(user=staff, name="sync", scope="read_write")

    response = _token_client(key).patch(
        f"/api/v1/items/{item.pk}/", {"price": "950.00", "title": "New title"}, format="json"
    )

    assert response.status_code == 200
    entry = AuditEntry.objects.filter(item_id=item.pk, action=AuditEntry.Action.UPDATE).get()
    assert entry.actor == staff  # authenticated by token, inside the view
    assert entry.account_id == account.pk
    assert entry.changes_dict["price"] == ["1000.00", "950.00"]
    assert entry.changes_dict["title"] == ["Old title", "New title"]


def test_connection_changes_are_logged_with_secrets_masked(staff, account, client):
    from channels_reverb.models import ReverbConnection

    connection = ReverbConnection.objects.create(account=account, name="Reverb", api_token="first-secret-token-123")
    client.force_login(staff)
    from inventory.services.connections import connection_update

    connection_update(connection=connection, fields={"api_token": "second-secret-token-456", "name": "Reverb main"})

    entry = AuditEntry.objects.filter(content_type__model="reverbconnection", action=AuditEntry.Action.UPDATE).get()
    assert entry.changes_dict["api_token"] == [SECRET_MASK, SECRET_MASK]
    assert entry.changes_dict["name"] == ["Reverb", "Reverb main"]
    everything = repr(list(AuditEntry.objects.values()))
    assert "secret-token" not in everything


def test_plan_changes_role_changes_and_webhook_replays_are_logged(account, staff):
    from billing.services.plans import plan_assign, plan_get
    from inventory.models import ChannelConnection, WebhookEvent
    from inventory.services.sync import webhook_replay

    plan_assign(account=account, plan=plan_get("pro"), user=staff)
    colleague = staff_user_create(account=account, username="bob", password=PASSWORD, role=Role.STAFF)
    user_role_change(user=colleague, role=Role.MANAGER, by=staff)
    connection = ChannelConnection.objects.create(account=account, channel="reverb", name="R")
    event = WebhookEvent.objects.create(
        account=account, connection=connection, topic="orders/create", dedupe_key="e1", payload={}, status="failed"
    )
    webhook_replay(event_ids=[event.pk])

    mine = AuditEntry.objects.filter(account=account)
    assert mine.filter(content_type__model="subscription").exists()
    role = mine.get(content_type__model="user", object_id=colleague.pk, action=AuditEntry.Action.UPDATE)
    assert role.changes_dict["role"] == ["staff", "manager"]
    replay = mine.get(content_type__model="webhookevent", object_id=event.pk)
    assert replay.changes_dict["status"] == ["failed", "pending"]
    assert replay.additional_data == {"note": "replayed"}


def test_the_audit_log_in_the_admin_is_per_account_and_filters_per_item_and_per_person(
    client, account, other_account, staff, other_staff
):
    from inventory.services import Actor, item_update

    mine = make_item(account, sku="MINE-1", title="Mine")
    other_item = make_item(account, sku="MINE-2", title="Other of mine")
    theirs = make_item(other_account, sku="THEIRS-1", title="Theirs secret")
    item_update(item_id=mine.pk, actor=Actor(), changes={"title": "Mine renamed"})
    item_update(item_id=other_item.pk, actor=Actor(), changes={"title": "Other renamed"})
    item_update(item_id=theirs.pk, actor=Actor(), changes={"title": "Theirs renamed"})
    AuditEntry.objects.filter(item_id=mine.pk).update(actor=staff)

    client.force_login(staff)
    everything = client.get("/admin/accounts/auditentry/").content.decode()
    assert "Mine renamed" in everything and "Theirs" not in everything
    per_item = client.get(f"/admin/accounts/auditentry/?item={mine.pk}").content.decode()
    assert "Mine renamed" in per_item and "Other renamed" not in per_item
    per_person = client.get(f"/admin/accounts/auditentry/?actor={staff.pk}").content.decode()
    assert "Mine renamed" in per_person and "Other renamed" not in per_person
    system = client.get("/admin/accounts/auditentry/?actor=system").content.decode()
    assert "Other renamed" in system and "Mine renamed" not in system
    entry = AuditEntry.objects.filter(account=other_account).first()
    assert client.get(f"/admin/accounts/auditentry/{entry.pk}/change/").status_code == 302  # not theirs to see


def test_the_audit_log_is_read_only_for_everyone(client, account, staff):
    item = make_item(account, sku="RO-1")
    entry = AuditEntry.objects.filter(item_id=item.pk).first()
    client.force_login(staff)
    page = client.get(f"/admin/accounts/auditentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert "<td>sku</td><td>None</td><td>RO-1</td>" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/accounts/auditentry/{entry.pk}/delete/").status_code == 403


def test_an_items_history_button_opens_its_audit_log_and_a_connections_too(client, account, staff):
    from channels_reverb.models import ReverbConnection

    item = make_item(account, sku="HIST-1")
    connection = ReverbConnection.objects.create(account=account, name="Reverb", api_token="t-123456")
    client.force_login(staff)

    to_item = client.get(f"/admin/inventory/item/{item.pk}/history/")
    to_connection = client.get(f"/admin/channels_reverb/reverbconnection/{connection.pk}/history/")

    assert to_item.url == f"/admin/accounts/auditentry/?item={item.pk}"
    page = client.get(to_connection.url).content.decode()
    assert to_connection.url.endswith(f"?object=channels_reverb.reverbconnection:{connection.pk}")
    assert "Reverb" in page and "HIST-1" not in page
