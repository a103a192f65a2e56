"""Prepared reads (inventory/services/prepared.py): compiled once, each call with its own values,
answering what iterating the queryset answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from channels_reverb.models import ReverbConnection
from channels_shopify.models import ShopifyConnection
from inventory.models import ChannelListing, Item
from inventory.services.prepared import Prepared, PreparedUpdate
from inventory.services.returning import returning_joined
from inventory.services.stock import _ITEM_WITH_MULTI_QUANTITY
from inventory.services.sync import connection_by_webhook_token
from tests.factories import make_item

pytestmark = pytest.mark.django_db

# The read every sale runs after its stock moves (stock_alerts_check): tested as it is used.
ITEM_WITH_ACCOUNT = _ITEM_WITH_MULTI_QUANTITY
SKUS_OF_ACCOUNT = Prepared(
    lambda account_id, state: (
        Item.objects.filter(account_id=account_id, state=state).order_by("sku").values_list("sku", flat=True)
    ),
    account_id=int,
    state=str,
)


def test_each_call_reads_its_own_values_as_the_queryset_would(account, other_account):
    first, second = make_item(account, n=1, quantity=3), make_item(other_account, n=2)
    for item in (first, second):
        prepared = ITEM_WITH_ACCOUNT.first(item_id=item.pk)
        plain = Item.objects.select_related("account").filter(pk=item.pk).first()
        assert prepared.pk == item.pk and prepared.sku == plain.sku and prepared.price == plain.price
        assert prepared.account == plain.account and prepared.account.name == plain.account.name
        # select_related: the account came with the row, no query for it.
        with CaptureQueriesContext(transaction.get_connection()) as queries:
            assert prepared.account.slug == plain.account.slug
        assert len(queries) == 0
        assert prepared._state.adding is False and prepared._state.db == "default"
    assert ITEM_WITH_ACCOUNT.first(item_id=second.pk + 1000) is None


def test_annotations_and_flat_values(account):
    single = make_item(account, n=1)
    stocked = make_item(account, n=2, quantity=5)  # its ledger's first row: 5 on hand
    assert ITEM_WITH_ACCOUNT.first(item_id=stocked.pk).multi_quantity is True
    assert ITEM_WITH_ACCOUNT.first(item_id=single.pk).multi_quantity is False
    assert SKUS_OF_ACCOUNT.all(account_id=account.pk, state="active") == sorted([single.sku, stocked.sku])
    assert SKUS_OF_ACCOUNT.all(account_id=account.pk, state="archived") == []


def test_one_statement_compiled_per_shape(account):
    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-0123456789ab")
    shopify = ShopifyConnection.objects.create(
        account=account, name="Shop", shop_domain="gear.myshopify.com", access_token="shpat_0123456789"
    )
    found = connection_by_webhook_token("reverb", reverb.webhook_token)
    assert isinstance(found, ReverbConnection) and found.pk == reverb.pk
    assert found.api_token == "rvb-0123456789ab"  # decrypted, as a plain read would
    assert found.webhooks_stopped_open is False and found.account.pk == account.pk
    found = connection_by_webhook_token("shopify", shopify.webhook_token)
    assert isinstance(found, ShopifyConnection) and found.pk == shopify.pk
    # Each channel's token only finds that channel's connection.
    assert connection_by_webhook_token("shopify", reverb.webhook_token) is None
    assert connection_by_webhook_token("reverb", "not-a-token") is None
    with pytest.raises(LookupError):
        connection_by_webhook_token("nochannel", reverb.webhook_token)


def test_values_of_the_wrong_type_are_refused(account):
    with pytest.raises(TypeError, match="item_id must be int"):
        ITEM_WITH_ACCOUNT.first(item_id="5")
    with pytest.raises(TypeError, match="item_id must be int"):
        ITEM_WITH_ACCOUNT.first(item_id=None)  # the ORM would write IS NULL: another statement
    with pytest.raises(TypeError, match="item_id must be int"):
        ITEM_WITH_ACCOUNT.first(item_id=True)
    with pytest.raises(TypeError, match="missing prepared value"):
        ITEM_WITH_ACCOUNT.first()
    with pytest.raises(TypeError, match="a prepared value is an int, a str or an aware datetime"):
        Prepared(lambda when: Item.objects.filter(created_at=when), when=object)
    by_time = Prepared(lambda when: Item.objects.filter(created_at__lt=when), when=datetime)
    with pytest.raises(TypeError, match="when must be datetime"):
        by_time.all(when=datetime(2026, 1, 1))  # naive: the ORM would guess its zone


def test_a_value_the_lookup_transforms_cannot_be_prepared(account):
    make_item(account, n=1)
    search = Prepared(lambda text: Item.objects.filter(title__icontains=text), text=str)
    with pytest.raises(TypeError, match="does not reach the SQL as given"):
        search.all(text="strat")


@pytest.mark.django_db(transaction=True)
def test_locking_read_needs_a_transaction(account):
    item = make_item(account, n=1)
    locked = Prepared(lambda item_id: Item.objects.select_for_update().filter(pk=item_id), item_id=int)
    with pytest.raises(TransactionManagementError):
        locked.all(item_id=item.pk)
    with transaction.atomic():
        assert [row.pk for row in locked.all(item_id=item.pk)] == [item.pk]


def test_listing_lines_resolve_by_listing_and_by_sku(account):
    from inventory.services.selling import _ITEM_OF_LISTING, _ITEM_OF_SKU

    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-0123456789ab")
    item = make_item(account, n=1)
    ChannelListing.objects.create(item=item, connection=reverb, account=account, external_id="L-77")
    assert _ITEM_OF_LISTING.first(connection_id=reverb.pk, external_id="L-77") == item.pk
    assert _ITEM_OF_LISTING.first(connection_id=reverb.pk, external_id="L-78") is None
    assert _ITEM_OF_SKU.first(account_id=account.pk, sku=item.sku) == item.pk
    assert _ITEM_OF_SKU.first(account_id=account.pk + 1000, sku=item.sku) is None


def test_prepared_update_claims_with_each_calls_values(account):
    """The converge's lease (listings._CLAIM): free or run out is claimed, held is not."""
    from inventory.services.listings import _CLAIM

    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-0123456789ab")
    free = ChannelListing.objects.create(item=make_item(account, n=1), connection=reverb, account=account)
    now = datetime.now(UTC)
    held = ChannelListing.objects.create(
        item=make_item(account, n=2), connection=reverb, account=account, lease_until=now + timedelta(minutes=5)
    )
    for listing, claimed in ((free, True), (held, False), (free, False)):
        statement, params = _CLAIM.statement(listing_id=listing.pk, now=now, until=now + timedelta(minutes=3))
        found = returning_joined(ChannelListing, statement, params, ReverbConnection)
        if claimed:
            row, connection = found
            assert row.pk == listing.pk and row.lease_until == now + timedelta(minutes=3)
            assert connection.pk == reverb.pk and connection.api_token == "rvb-0123456789ab"
        else:
            assert found is None  # held by another converge (the second time: by the first claim)
    # Run out: claimable again, with this call's times.
    later = now + timedelta(minutes=10)
    statement, params = _CLAIM.statement(listing_id=held.pk, now=later, until=later + timedelta(minutes=3))
    row, _ = returning_joined(ChannelListing, statement, params, ReverbConnection)
    assert row.lease_until == later + timedelta(minutes=3)
    update = PreparedUpdate(lambda pk: (Item.objects.filter(pk=pk), {"title": "x"}), pk=int)
    assert update.statement(pk=7)[1][-1] == 7


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def _claim(listing, now):
    from inventory.services.listings import _CLAIM

    statement, params = _CLAIM.statement(listing_id=listing.pk, now=now, until=now + timedelta(minutes=3))
    return returning_joined(ChannelListing, statement, params, ReverbConnection, unflushed=True)


def test_an_unflushed_claim_commits_without_waiting_for_the_disk_and_only_itself(account):
    """The converge's lease is claimed with synchronous_commit off for its own transaction
    (returning._UNFLUSHED): inside a caller's transaction it would cover what that transaction
    wrote too, so there it is not asked for."""
    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-0123456789ab")
    listing = ChannelListing.objects.create(item=make_item(account, n=1), connection=reverb, account=account)
    now = datetime.now(UTC)
    # Inside the test's transaction, as inside any caller's: the setting is left alone.
    row, _ = _claim(listing, now)
    assert row.lease_until == now + timedelta(minutes=3)
    assert _synchronous_commit() == "on"
    # The statement as sent outside a transaction, run here so its transaction can be looked at:
    # set_config ran with the claim, for the claim's transaction only.
    ChannelListing.objects.filter(pk=listing.pk).update(lease_until=None)
    connection.in_atomic_block = False
    try:
        row, linked = _claim(listing, now)
    finally:
        connection.in_atomic_block = True
    assert row.pk == listing.pk and linked.pk == reverb.pk and linked.account.pk == account.pk
    assert _synchronous_commit() == "off"


@pytest.mark.django_db(transaction=True)
def test_an_unflushed_claim_outside_a_transaction_leaves_the_session_as_it_was(account):
    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-0123456789ab")
    listing = ChannelListing.objects.create(item=make_item(account, n=1), connection=reverb, account=account)
    now = datetime.now(UTC)
    row, _ = _claim(listing, now)
    assert row.lease_until == now + timedelta(minutes=3)
    assert _synchronous_commit() == "on"  # the next transaction of this session waits for the disk again
    assert ChannelListing.objects.get(pk=listing.pk).lease_until == now + timedelta(minutes=3)  # committed
    assert _claim(listing, now) is None  # and held


def test_prepared_update_writes_integer_fields_as_the_orm_wraps_them(account):
    """An integer field's value to write comes from the ORM wrapped (psycopg's Int2 for a small
    integer): each call's value takes the same wrapping, and lands."""
    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-0123456789ab")
    listing = ChannelListing.objects.create(item=make_item(account, n=1), connection=reverb, account=account)
    update = PreparedUpdate(
        lambda listing_id, attempts, last_error: (
            ChannelListing.objects.filter(pk=listing_id),
            {"attempts": attempts, "last_error": last_error},
        ),
        listing_id=int,
        attempts=int,
        last_error=str,
    )
    for attempts, error in ((3, "timed out"), (0, "")):
        assert update.run(listing_id=listing.pk, attempts=attempts, last_error=error) == 1
        listing.refresh_from_db()
        assert (listing.attempts, listing.last_error) == (attempts, error)
    assert type(update.statement(listing_id=listing.pk, attempts=5, last_error="")[1][0]) is not int
