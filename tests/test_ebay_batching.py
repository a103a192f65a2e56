"""A price sweep on eBay through the engine's own path: the converge tasks of a connection's
listings share bulkUpdatePriceQuantity calls of up to 25 (inventory/services/batching.py)
instead of a read and a one-entry call each."""

from decimal import Decimal

import pytest

from channels_ebay import sync
from channels_ebay.models import EbayListingDetail
from inventory.channels import END_SOLD_ELSEWHERE, TransientChannelError
from inventory.models import Alert, AlertKind, ChannelListing, ListingState, SyncKind, SyncRun
from inventory.services import Actor, item_update
from inventory.services.batching import listing_converge_batched
from inventory.services.listings import listing_converge, listings_publish
from inventory.tasks import converge_listing_task
from tests.ebay_market import EbayMarket
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")
BULK = "/sell/inventory/v1/bulk_update_price_quantity"


@pytest.fixture
def market(account):
    with EbayMarket(account, "eBay") as running:
        yield running


def live_listings(account, market, count: int, *, quantity: int = 1) -> list[ChannelListing]:
    items = []
    for n in range(count):
        item = make_item(account, n=n, sku=f"SWEEP-{n:02d}", price=Decimal("1000.00"), quantity=quantity)
        item.photos.create(url="https://cdn.example.com/x.jpg", position=0)
        items.append(item)
    listings_publish(
        account=account, item_ids=[i.pk for i in items], actor=STAFF, connection_ids=[market.connection.pk]
    )
    for pk in ChannelListing.objects.order_by("pk").values_list("pk", flat=True):
        listing_converge(pk)
    listings = list(ChannelListing.objects.order_by("pk"))
    assert {listing.actual_state for listing in listings} == {ListingState.LIVE}
    market.reset_log()
    return listings


def reprice(listings, price: str) -> None:
    for listing in listings:
        item_update(item_id=listing.item_id, actor=STAFF, changes={"price": Decimal(price)})


def run_tasks(listings) -> list[str]:
    """As the worker runs the queued converge tasks, one after the other."""
    return [listing_converge_batched(listing.pk) for listing in listings]


def test_a_price_sweep_over_30_listings_is_two_bulk_calls_and_no_reads(account, market):
    listings = live_listings(account, market, 30)
    reprice(listings, "950.00")

    outcomes = run_tasks(listings)

    bulk = market.sandbox.requests("POST", BULK)
    assert [len(r.body["requests"]) for r in bulk] == [25, 5]
    assert market.sandbox.calls("GET", "/sell/inventory/v1/offer") == 0  # nothing read first: one call per 25
    assert outcomes[0] == "revised price (one call with 24 other listing(s))"
    assert outcomes[1:25] == ["in sync"] * 24
    assert outcomes[25] == "revised price (one call with 4 other listing(s))"
    assert outcomes[26:] == ["in sync"] * 4
    for listing in ChannelListing.objects.all():
        assert (listing.needs_push, listing.pushed_content["price"]) == (False, "950.00")
        assert market.seen(listing.external_id).price == Decimal("950.00")
    assert {d.revisions_today for d in EbayListingDetail.objects.all()} == {1}  # one revision each, no more
    [first, second] = SyncRun.objects.filter(kind=SyncKind.PUSH, updated__gt=0).order_by("pk")
    assert (first.updated, second.updated) == (25, 5)


def test_the_worker_task_takes_the_batched_path(account, market):
    listings = live_listings(account, market, 3)
    reprice(listings, "900.00")

    results = [converge_listing_task.apply(args=[listing.pk]).get() for listing in listings]

    assert results == ["revised price (one call with 2 other listing(s))", "in sync", "in sync"]
    assert len(market.sandbox.requests("POST", BULK)) == 1


def test_a_listing_with_other_changes_goes_its_own_way_and_the_rest_share_a_call(account, market):
    listings = live_listings(account, market, 4)
    reprice(listings, "880.00")
    item_update(item_id=listings[2].item_id, actor=STAFF, changes={"title": "Fender Twin Reverb 1968"})

    outcomes = run_tasks(listings)

    assert outcomes[0] == "revised price (one call with 2 other listing(s))"
    assert outcomes[2] == "revised price,title"  # the single path: the item replace and its own bulk entry
    [batched, single] = market.sandbox.requests("POST", BULK)
    assert len(batched.body["requests"]) == 3 and len(single.body["requests"]) == 1
    assert market.seen(listings[2].external_id).title == "Fender Twin Reverb 1968"
    assert all(market.seen(listing.external_id).price == Decimal("880.00") for listing in listings)


def test_a_207_outcome_is_recorded_per_listing_the_others_are_applied(account, market):
    listings = live_listings(account, market, 5)
    gone = listings[1]
    sync.end(market.connection, gone.external_id, END_SOLD_ELSEWHERE)  # withdrawn on eBay behind our back
    EbayListingDetail.objects.filter(sku=listings[3].item.sku).update(
        revision_day=sync.ebay_today(), revisions_today=250
    )
    reprice(listings, "870.00")
    market.reset_log()

    outcomes = run_tasks(listings)

    [bulk] = market.sandbox.requests("POST", BULK)
    assert bulk.status == 207 and len(bulk.body["requests"]) == 4  # the one out of revisions is not sent
    assert outcomes[0] == "revised price (one call with 4 other listing(s))"
    gone.refresh_from_db()
    # eBay's 25713 for it: marked missing with an alert, then its own task (run next) published it again.
    assert outcomes[1] == "adopted"  # the same offer, published again: never a second one
    assert gone.actual_state == ListingState.LIVE
    assert market.seen(gone.external_id).price == Decimal("870.00")
    assert Alert.objects.filter(kind=AlertKind.LISTING_MISSING, listing=gone).exists()
    spent = ChannelListing.objects.get(pk=listings[3].pk)
    assert spent.actual_state == ListingState.ERROR
    assert "250 revisions" in spent.last_error
    assert Alert.objects.filter(kind=AlertKind.SYNC_ERROR, listing=spent).exists()
    for listing in (listings[0], listings[2], listings[4]):
        assert market.seen(listing.external_id).price == Decimal("870.00")
        listing.refresh_from_db()
        assert listing.needs_push is False


def test_a_listing_another_worker_holds_is_left_to_it(account, market):
    listings = live_listings(account, market, 3)
    reprice(listings, "860.00")
    from inventory.services.listings import _claim

    assert _claim(listings[1].pk)  # another worker is on it

    assert listing_converge_batched(listings[0].pk) == "revised price (one call with 1 other listing(s))"
    [bulk] = market.sandbox.requests("POST", BULK)
    skus = [r["sku"] for r in bulk.body["requests"]]
    assert skus == [listings[0].item.sku, listings[2].item.sku]
    held = ChannelListing.objects.get(pk=listings[1].pk)
    assert held.needs_push is True and held.lease_until is not None  # untouched, its lease kept


def test_when_the_whole_call_fails_each_listing_goes_the_single_path(account, market):
    listings = live_listings(account, market, 3)
    reprice(listings, "850.00")
    market.sandbox.fail_next("error", method="POST", path_prefix=BULK, count=3)  # all of retry_transient's tries

    outcome = listing_converge_batched(listings[0].pk)

    assert outcome == "revised price"  # the single path read the offer and sent its own entry
    sent = [len(r.body["requests"]) for r in market.sandbox.requests("POST", BULK) if r.status == 200]
    assert sent == [1]
    assert run_tasks(listings[1:]) == ["revised price (one call with 1 other listing(s))", "in sync"]
    # The failed call spent no revision: each listing has exactly the one eBay applied.
    assert {d.revisions_today for d in EbayListingDetail.objects.all()} == {1}


def test_a_transient_error_for_the_tasks_own_listing_is_raised_for_the_task_to_retry(account, market, monkeypatch):
    listings = live_listings(account, market, 2)
    reprice(listings, "840.00")
    real = sync.bulk_revise_price_quantity

    def first_sku_busy(connection, changes):
        changes = list(changes)
        outcomes = real(connection, changes[1:])
        busy = sync.PriceQuantityOutcome(
            changes[0].sku, changes[0].offer_id, False, 500, "eBay 25001: system error", TransientChannelError("25001")
        )
        return [busy, *outcomes]

    monkeypatch.setattr("channels_ebay.sync.listings.bulk_revise_price_quantity", first_sku_busy)

    with pytest.raises(TransientChannelError):
        listing_converge_batched(listings[0].pk)

    first, second = (ChannelListing.objects.get(pk=listing.pk) for listing in listings)
    assert (first.needs_push, first.attempts, first.lease_until) == (True, 1, None)
    assert (second.needs_push, second.lease_until) == (False, None)
