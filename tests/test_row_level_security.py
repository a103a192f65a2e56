"""PostgreSQL row-level security behind the ORM scoping (accounts/rls.py).

The suite connects as the `postgres` superuser, which bypasses every policy; these tests switch
the connection to a plain role (no superuser, no BYPASSRLS: what production must use) inside the
test's transaction, so the role and its grants vanish with it.
"""

import uuid

import pytest
from celery import shared_task
from celery.app.trace import build_tracer
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.api.permissions import IsAccountMember
from accounts.rls import (
    POLICY,
    AccountScopeMiddleware,
    account_scope,
    account_scope_of,
    business_tables,
    current_account_id,
    task_scope,
    worker_owns_sessions,
)
from accounts.services import api_token_create
from channels_reverb.models import ReverbConnection
from inventory.models import Item
from tests.factories import make_item

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ROLE = "bo_rls_probe"


@pytest.fixture
def plain_role():
    """Switch this connection to a role row-level security applies to, with the app's privileges."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN "
            f"CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$"
        )
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
        cursor.execute(f"SET LOCAL ROLE {ROLE}")
    yield ROLE
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute("SELECT set_config('app.account_id', '', false)")


@pytest.fixture
def shops(account, other_account):
    mine = [make_item(account, n=1), make_item(account, n=2)]
    theirs = [make_item(other_account, n=3)]
    my_reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-mine-0123456789")
    their_reverb = ReverbConnection.objects.create(
        account=other_account, name="Reverb", api_token="rvb-theirs-0123456789"
    )
    return {"mine": mine, "theirs": theirs, "my_reverb": my_reverb, "their_reverb": their_reverb}


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _scope(account_id) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.account_id', %s, false)", [str(account_id)])


def test_every_business_table_has_the_policy_enabled_and_forced():
    expected = {table for table, _ in business_tables()}
    state = {
        name: (enabled, forced)
        for name, enabled, forced in _rows(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)",
            [list(expected)],
        )
    }
    policies = {name for (name,) in _rows("SELECT tablename FROM pg_policies WHERE policyname = %s", [POLICY])}

    assert {
        "inventory_item",
        "inventory_order",
        "inventory_channelconnection",
        "channels_reverb_reverbconnection",
        "channels_amazon_amazonlistingdetail",
        "billing_subscription",
        "documents_documentsettings",
    } <= expected
    assert "accounts_user" not in expected
    assert state == dict.fromkeys(expected, (True, True))
    assert policies == expected


def test_a_raw_query_under_another_accounts_setting_sees_none_of_this_accounts_rows(
    plain_role, account, other_account, shops
):
    _scope(other_account.pk)

    assert _rows("SELECT id FROM inventory_item WHERE account_id = %s", [account.pk]) == []
    assert _rows("SELECT id FROM inventory_item") == [(shops["theirs"][0].pk,)]
    assert (
        _rows(
            "SELECT channelconnection_ptr_id, api_token FROM channels_reverb_reverbconnection WHERE "
            "channelconnection_ptr_id = %s",
            [shops["my_reverb"].pk],
        )
        == []
    )
    assert _rows("SELECT count(*) FROM inventory_itemstatechange WHERE account_id = %s", [account.pk]) == [(0,)]
    assert _rows(
        "SELECT count(*) FROM inventory_item i JOIN inventory_stockmovement m ON m.item_id = i.id WHERE i.id = %s",
        [shops["mine"][0].pk],
    ) == [(0,)]


def test_the_same_query_under_the_own_setting_sees_the_own_rows(plain_role, account, shops):
    _scope(account.pk)

    assert sorted(_rows("SELECT id FROM inventory_item")) == sorted((item.pk,) for item in shops["mine"])
    assert _rows("SELECT channelconnection_ptr_id FROM channels_reverb_reverbconnection") == [(shops["my_reverb"].pk,)]


def test_without_a_setting_system_work_sees_every_shop(plain_role, shops):
    assert len(_rows("SELECT id FROM inventory_item")) == 3


def test_writes_into_another_account_are_refused_under_a_scope(plain_role, account, other_account, shops):
    _scope(other_account.pk)

    with connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_item SET title = 'hijacked' WHERE account_id = %s", [account.pk])
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM inventory_stockmovement WHERE account_id = %s", [account.pk])
        assert cursor.rowcount == 0
    with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
        ReverbConnection.objects.filter(pk=shops["their_reverb"].pk).update(account=account)
    assert Item.objects.filter(account=account, title="hijacked").count() == 0


def test_a_superuser_connection_bypasses_the_policies_so_production_must_not_use_one(account, other_account, shops):
    _scope(other_account.pk)
    try:
        assert len(_rows("SELECT id FROM inventory_item WHERE account_id = %s", [account.pk])) == 2
    finally:
        _scope("")


def test_the_middleware_scopes_a_staff_request_even_for_an_unscoped_query_and_resets_after(
    plain_role, settings, staff, account, shops
):
    settings.DATABASE_ROW_LEVEL_SECURITY = True
    seen = {}

    def view(request):
        # A bug the ORM scoping would not catch: no for_user(), no account filter.
        seen["accounts"] = set(Item.objects.values_list("account_id", flat=True))
        seen["scope"] = current_account_id()
        return "response"

    request = RequestFactory().get("/admin/inventory/item/")
    request.user = staff

    assert AccountScopeMiddleware(view)(request) == "response"
    assert seen == {"accounts": {account.pk}, "scope": account.pk}
    assert current_account_id() is None


def test_an_api_token_request_is_scoped_once_drf_knows_the_user(plain_role, settings, staff, account, shops):
    settings.DATABASE_ROW_LEVEL_SECURITY = True
    _, key = api_token_create(user=staff, name="scanner", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    response = client.get("/api/v1/items/")

    assert response.status_code == 200, response.content
    assert sorted(row["id"] for row in response.json()["results"]) == sorted(i.pk for i in shops["mine"])
    assert current_account_id() is None


def test_the_account_permission_sets_the_scope_for_the_authenticated_user(plain_role, settings, staff, account):
    settings.DATABASE_ROW_LEVEL_SECURITY = True
    request = RequestFactory().get("/api/v1/items/")
    request.user = staff
    request._account_scope = None

    assert IsAccountMember().has_permission(request, view=None)
    assert current_account_id() == account.pk


def test_the_app_works_under_a_plain_role_with_the_scope_on(plain_role, settings, api, staff, account, shops):
    settings.DATABASE_ROW_LEVEL_SECURITY = True
    created = api.post(
        "/api/v1/items/", {"title": "1972 Gibson SG", "brand": "Gibson", "price": "1800.00"}, format="json"
    )
    listed = api.get("/api/v1/items/")
    other = api.get(f"/api/v1/items/{shops['theirs'][0].pk}/")

    assert created.status_code == 201, created.content
    assert listed.status_code == 200 and listed.json()["count"] == 3
    assert other.status_code == 404


def test_the_admin_creates_an_api_token_under_the_scope_and_its_audit_entry_is_the_shops(
    plain_role, settings, client, staff, account
):
    """Found running the whole suite as a plain role: the token's audit entry had no account
    (tokens belong to a person), so the policy refused it and the admin answered 500."""
    from accounts.models import ApiToken, AuditEntry

    settings.DATABASE_ROW_LEVEL_SECURITY = True
    client.force_login(staff)
    response = client.post("/admin/accounts/apitoken/add/", {"user": staff.pk, "name": "scanner", "scope": "read"})

    assert response.status_code == 302
    token = ApiToken.objects.get(name="scanner")
    assert AuditEntry.objects.get(object_pk=str(token.pk)).account_id == account.pk


def test_an_etsy_callback_for_another_shops_connection_is_refused_not_a_500(
    plain_role, settings, account, other_account, other_staff, admin_client_for
):
    """Found the same way: under the scope another shop's connection is invisible, and the
    callback's lookup raised DoesNotExist."""
    from django.core.cache import cache

    from channels_etsy.models import EtsyConnection
    from channels_etsy.services import _pending_key

    settings.DATABASE_ROW_LEVEL_SECURITY = True
    theirs = EtsyConnection.objects.create(account=account, name="Etsy", keystring="k", shop_id=1)
    cache.set(_pending_key("s" * 32), {"connection_id": theirs.pk, "verifier": "v" * 64, "redirect_uri": "x"}, 60)

    refused = admin_client_for(other_staff).get(f"/etsy/oauth/callback/?code=c&state={'s' * 32}")

    assert refused.status_code == 400 and b"another shop" in refused.content


def test_a_task_scope_follows_the_row_it_was_given_and_nests(plain_role, settings, account, other_account, shops):
    settings.DATABASE_ROW_LEVEL_SECURITY = True

    with account_scope_of("inventory.Item", shops["theirs"][0].pk):
        assert current_account_id() == other_account.pk
        assert _rows("SELECT count(*) FROM inventory_item") == [(1,)]
        with account_scope(account.pk):
            assert _rows("SELECT count(*) FROM inventory_item") == [(2,)]
        assert current_account_id() == other_account.pk
    assert current_account_id() is None
    assert _rows("SELECT count(*) FROM inventory_item") == [(3,)]


def test_the_scope_is_a_no_op_when_switched_off(settings, account):
    settings.DATABASE_ROW_LEVEL_SECURITY = False

    with account_scope(account.pk):
        assert current_account_id() is None


def test_the_deploy_check_warns_when_the_role_ignores_row_level_security(settings, plain_role):
    from accounts.checks import row_level_security_role

    settings.DATABASE_ROW_LEVEL_SECURITY = True
    assert row_level_security_role() == []  # the plain role is bound by the policies

    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # back to the suite's superuser
    [warning] = row_level_security_role()
    assert warning.id == "accounts.W001" and "superuser or has BYPASSRLS" in warning.msg


@shared_task(bind=True, name="tests.rls_items_seen")
def _items_seen(self, item_id: int, account_id: int | None = None) -> tuple[int, int | None]:
    """Shaped as the sale's tasks: scoped to the account it was sent (else its row's)."""
    with task_scope("inventory.Item", item_id, account_id, eager=self.request.is_eager):
        return _rows("SELECT count(*) FROM inventory_item")[0][0], current_account_id()


@shared_task(name="tests.rls_system_sweep")
def _system_sweep() -> tuple[int, int | None]:
    """Shaped as beat's sweepers: no scope of its own, it must see every shop."""
    return _rows("SELECT count(*) FROM inventory_item")[0][0], current_account_id()


def _in_worker(task, **kwargs):
    """Run a task as the worker does (Celery's tracer: task_prerun, the task, task_postrun), not eagerly."""
    trace = build_tracer(task.name, task, app=task.app, eager=False, propagate=True)
    return trace(str(uuid.uuid4()), [], kwargs, {})[0]


@pytest.fixture
def worker():
    worker_owns_sessions()
    yield
    worker_owns_sessions(False)


def test_a_worker_task_for_one_shop_then_one_for_another_never_sees_the_first_shops_rows(
    plain_role, settings, worker, account, other_account, shops
):
    settings.DATABASE_ROW_LEVEL_SECURITY = True
    mine, theirs = shops["mine"][0], shops["theirs"][0]

    # When one worker process runs a task for this shop, then one for the other, then system work
    first = _in_worker(_items_seen, item_id=mine.pk, account_id=account.pk)
    second = _in_worker(_items_seen, item_id=theirs.pk, account_id=other_account.pk)
    unsent = _in_worker(_items_seen, item_id=mine.pk)  # an older message, without its account
    sweep = _in_worker(_system_sweep)

    # Then each saw only its own shop's rows, and the system work every shop's
    assert first == (2, account.pk)
    assert second == (1, other_account.pk)
    assert unsent == (2, account.pk)
    assert sweep == (3, None)


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_a_shops_scope_for_its_next_task_only_while_the_session_holds_it(
    settings, worker, account, other_account
):
    # Given tasks in a worker, in autocommit as there, with row-level security on
    settings.DATABASE_ROW_LEVEL_SECURITY = True
    mine, theirs = make_item(account, n=1), make_item(other_account, n=2)
    _in_worker(_items_seen, item_id=mine.pk, account_id=account.pk)

    # When the next task is for the same shop, it sets nothing: the session holds its scope
    with CaptureQueriesContext(connection) as same:
        assert _in_worker(_items_seen, item_id=mine.pk, account_id=account.pk)[1] == account.pk
    # And after a reconnect (CONN_MAX_AGE, an error) the new session is scoped again
    connection.close()
    with CaptureQueriesContext(connection) as reconnected:
        assert _in_worker(_items_seen, item_id=mine.pk, account_id=account.pk)[1] == account.pk
    # And a scope set inside a transaction that rolled back is not taken as held
    with transaction.atomic():
        _in_worker(_items_seen, item_id=theirs.pk, account_id=other_account.pk)
        transaction.set_rollback(True)
    assert current_account_id() == account.pk  # the rollback took the other shop's scope away
    with CaptureQueriesContext(connection) as after_rollback:
        assert _in_worker(_items_seen, item_id=theirs.pk, account_id=other_account.pk)[1] == other_account.pk
    # And system work after a shop's task starts unscoped
    assert _in_worker(_system_sweep)[1] is None

    def scope_statements(queries):
        return [q["sql"] for q in queries.captured_queries if "set_config" in q["sql"]]

    assert scope_statements(same) == []
    assert len(scope_statements(reconnected)) == 1
    assert len(scope_statements(after_rollback)) == 1
