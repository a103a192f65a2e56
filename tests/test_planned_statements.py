"""Statements of a fixed shape run as server-side prepared statements (config/database.py,
planned_cursor) and the sale path's inserts written once (returning.insert_rows)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import Item, ItemStateChange, LockStatus, Order, OrderLine, StockLock
from inventory.services.prepared import PreparedUpdate
from inventory.services.returning import INSERT_ROWS_AT_MOST, insert_rows
from inventory.services.stock import _ITEM_WITH_MULTI_QUANTITY
from tests.factories import make_item

pytestmark = pytest.mark.django_db


def _prepared_here() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_prepared_read_is_planned_once_per_session_and_answers_each_call(account):
    first, second = make_item(account, n=1), make_item(account, n=2, quantity=4)
    assert _ITEM_WITH_MULTI_QUANTITY.first(item_id=first.pk).sku == first.sku
    assert _ITEM_WITH_MULTI_QUANTITY.first(item_id=second.pk).multi_quantity is True
    held = [text for text in _prepared_here() if '"inventory_item"' in text and "$1" in text]
    assert len(held) == 1  # one statement on the server, bound with each call's id
    # The query log still shows what ran, with its values (DEBUG, tests' captured queries).
    with CaptureQueriesContext(connection) as queries:
        _ITEM_WITH_MULTI_QUANTITY.first(item_id=second.pk)
    assert str(second.pk) in queries.captured_queries[0]["sql"]
    assert "$1" not in queries.captured_queries[0]["sql"]


def test_switched_off_nothing_is_prepared(settings, account):
    settings.DATABASE_PREPARED_STATEMENTS = False
    item = make_item(account, n=1)
    before = len(_prepared_here())
    assert _ITEM_WITH_MULTI_QUANTITY.first(item_id=item.pk).pk == item.pk
    assert len(_prepared_here()) == before


def test_prepared_statements_survive_a_rollback(account):
    item = make_item(account, n=1)
    with transaction.atomic():
        assert _ITEM_WITH_MULTI_QUANTITY.first(item_id=item.pk).pk == item.pk
        transaction.set_rollback(True)
    # psycopg forgets its statements on a rollback; the next call prepares again and answers.
    assert _ITEM_WITH_MULTI_QUANTITY.first(item_id=item.pk).pk == item.pk


def test_insert_rows_writes_several_rows_and_gives_each_its_key(account):
    order = Order.objects.create(account=account, channel="manual", external_id="M-1", placed_at=timezone.now())
    items = [make_item(account, n=n) for n in (1, 2, 3)]
    lines = [OrderLine(order=order, item=item, quantity=1, unit_price=item.price, sku=item.sku) for item in items]
    insert_rows(lines)
    assert all(line.pk and not line._state.adding for line in lines)
    # A column NULL in every row (closed_at) still takes its column's type.
    locks = [
        StockLock(account_id=account.pk, order_line=line, item=line.item, quantity=1, status=LockStatus.OPEN)
        for line in lines
    ]
    insert_rows(locks)
    stored = {lock.pk: lock for lock in StockLock.objects.filter(order_line__order=order)}
    assert sorted(stored) == sorted(lock.pk for lock in locks)
    for lock in locks:  # RETURNING answers the keys in the order the rows were given
        assert stored[lock.pk].order_line_id == lock.order_line_id and stored[lock.pk].closed_at is None
    assert {line.pk: line.sku for line in OrderLine.objects.filter(order=order)} == {li.pk: li.sku for li in lines}


def test_insert_rows_hands_a_bulk_action_to_bulk_create(account):
    items = [make_item(account, n=n) for n in range(1, INSERT_ROWS_AT_MOST + 3)]
    changes = [
        ItemStateChange(account_id=account.pk, item_id=item.pk, from_state="active", to_state="archived")
        for item in items
    ]
    with CaptureQueriesContext(connection) as queries:
        insert_rows(changes, batch_size=5)
    assert len([q for q in queries.captured_queries if q["sql"].startswith("INSERT")]) == 2  # bulk_create's batches
    assert all(change.pk for change in changes)
    assert ItemStateChange.objects.filter(to_state="archived", item__in=items).count() == len(items)


def test_insert_rows_refuses_saved_rows_and_reports_what_the_database_refused(account):
    item = make_item(account, n=1)
    saved = ItemStateChange.objects.create(
        account_id=account.pk, item_id=item.pk, from_state="draft", to_state="active"
    )
    with pytest.raises(ValueError, match="new ItemStateChange rows only"):
        insert_rows([saved])
    with pytest.raises(IntegrityError, match="account_id"), transaction.atomic():
        insert_rows([ItemStateChange(account_id=None, item_id=item.pk, from_state="active", to_state="sold")])
    assert not ItemStateChange.objects.filter(item_id=item.pk, to_state="sold").exists()


@pytest.fixture
def sqlite_alias():
    """A SQLite connection (the dev setup's default database) to compile statements for; the
    statements are only compiled, never run, so it needs no tables."""
    alias = "sqlite_probe"
    configured = connections.configure_settings(
        {
            "default": dict(connections.settings["default"]),
            alias: {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
        }
    )
    connections.settings[alias] = configured[alias]
    yield alias
    connections[alias].close()
    del connections[alias]
    del connections.settings[alias]


def test_a_prepared_update_carries_datetimes_to_sqlite_as_its_text(sqlite_alias):
    update = PreparedUpdate(
        lambda pk, sold_at, now: (
            Item.objects.using(sqlite_alias).filter(pk=pk),
            {"sold_at": sold_at, "updated_at": now},
        ),
        pk=int,
        sold_at=datetime,
        now=datetime,
    )
    sold_at = timezone.now() - timedelta(minutes=20)
    now = timezone.now()
    _sql, params = update.statement(pk=7, sold_at=sold_at, now=now)

    adapt = connections[sqlite_alias].ops.adapt_datetimefield_value
    assert [adapt(sold_at), adapt(now), 7] == [p for p in params if p in (adapt(sold_at), adapt(now), 7)]
    assert all(isinstance(p, str) for p in params[:2]), params  # SQLite is handed text, as the ORM hands it
    assert "1901" not in " ".join(map(str, params))  # no marker left behind
