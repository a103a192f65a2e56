"""Reverb's contract functions against the loopback Reverb: publish, revise, end, read, pull, webhooks."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from channels_reverb import mappers, sync
from channels_reverb.models import ReverbConnection, ReverbListingDetail
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory.channels import (
    END_SOLD_ELSEWHERE,
    END_SOLD_HERE,
    END_WITHDRAWN,
    EndResult,
    ListingNotFound,
    ListingPayload,
    PermanentChannelError,
    PublishResult,
    RateLimited,
    TransientChannelError,
    channel,
    specific_connection,
)
from inventory.models import ChannelConnection

pytestmark = pytest.mark.django_db

STRAT = ListingPayload(
    sku="BN-1964",
    title="1964 Fender Stratocaster",
    description="All original.",
    price=Decimal("5000.00"),
    currency="USD",
    quantity=1,
    brand="Fender",
    model="Stratocaster",
    year="1964",
    finish="Sunburst",
    category="Electric Guitars",
    condition="excellent",
    photos=("https://cdn.example.com/strat.jpg",),
)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def sandbox(clock):
    with ReverbSandbox(page_size=3, max_page_size=3, timeout_delay=2.5, clock=clock) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_clients():
    sync._clients.__dict__.clear()
    yield
    sync._clients.__dict__.clear()


@pytest.fixture
def connection(account, sandbox):
    return ReverbConnection.objects.create(
        account=account,
        name="Reverb main shop",
        api_token=DEFAULT_TOKEN,
        base_url=sandbox.base_url,
        timeout_seconds=10.0,
    )


def writes(sandbox) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sandbox.requests() if r.is_write]


# --- the contract module ---------------------------------------------------------------


def test_the_registry_finds_reverb_and_its_connection_model(connection):
    module = channel("reverb")

    assert (module.NAME, module.LABEL, module.CONNECTION_MODEL) == (
        "reverb",
        "Reverb",
        "channels_reverb.ReverbConnection",
    )
    base = ChannelConnection.objects.get(pk=connection.pk)
    assert base.channel == "reverb"
    assert isinstance(specific_connection(base), ReverbConnection)
    assert sync.reverb_connection(base).api_token == DEFAULT_TOKEN
    assert connection.webhook_path == f"/hooks/reverb/{connection.webhook_token}/"


# --- publish ---------------------------------------------------------------------------


def test_publish_looks_the_sku_up_then_creates_one_live_listing(sandbox, connection):
    result = sync.publish(connection, STRAT, None)

    [listing] = sandbox.listings()
    assert result == PublishResult(external_id=str(listing["id"]), url=listing["_links"]["web"]["href"], adopted=False)
    assert listing["state"]["slug"] == "live"
    assert (listing["sku"], listing["make"], listing["title"]) == ("BN-1964", "Fender", "1964 Fender Stratocaster")
    assert [(r.method, r.path) for r in sandbox.requests()] == [("GET", "/my/listings"), ("POST", "/listings")]
    detail = ReverbListingDetail.objects.get(connection=connection, listing_id=result.external_id)
    assert (detail.sku, detail.state, detail.slug) == ("BN-1964", "live", listing["slug"])
    assert detail.account_id == connection.account_id


def test_publish_after_a_create_that_timed_out_adopts_it_instead_of_listing_twice(sandbox, connection):
    connection.timeout_seconds = 1.0  # against the sandbox's 2.5 s delay
    connection.save(update_fields=["timeout_seconds"])
    sandbox.fail_next("timeout", method="POST", path_prefix="/listings")

    with pytest.raises(TransientChannelError):
        sync.publish(connection, STRAT, None)  # Reverb created it; the answer never came
    retried = sync.publish(connection, STRAT, None)  # the engine's retry

    [listing] = sandbox.listings(sku="BN-1964")
    assert retried.external_id == str(listing["id"])
    assert retried.adopted is True
    assert sandbox.calls(method="POST", path_prefix="/listings") == 1
    assert sandbox.calls(method="PUT", path_prefix="/listings/") == 1
    assert listing["state"]["slug"] == "live"


def test_publish_adopts_a_listing_made_on_reverb_with_our_sku_and_puts_it_back_on_sale(sandbox, connection):
    made_there = sandbox.add_external_listing("BN-1964", title="Old Strat", state="ended")

    result = sync.publish(connection, STRAT, None)

    assert result.external_id == str(made_there["id"])
    assert result.adopted is True
    [listing] = sandbox.listings(sku="BN-1964")
    assert listing["state"]["slug"] == "live"
    assert listing["title"] == "1964 Fender Stratocaster"
    assert writes(sandbox) == [("PUT", f"/listings/{made_there['id']}")]
    assert sandbox.requests(method="PUT")[0].body["publish"] is True


def test_publish_prefers_the_live_listing_and_never_adopts_a_sold_one_of_a_kind(sandbox, connection):
    sandbox.add_external_listing("BN-1964", state="sold")
    draft = sandbox.add_external_listing("BN-1964", state="draft")
    live = sandbox.add_external_listing("BN-1964")

    assert sync.publish(connection, STRAT, None).external_id == str(live["id"])
    assert draft["id"] != live["id"]


def test_publish_creates_a_new_listing_when_the_only_one_with_the_sku_sold(sandbox, connection):
    sold = sandbox.add_external_listing("BN-1964", state="sold")

    result = sync.publish(connection, STRAT, None)

    assert result.adopted is False
    assert result.external_id != str(sold["id"])
    assert sorted(x["state"]["slug"] for x in sandbox.listings(sku="BN-1964")) == ["live", "sold"]


def test_publish_with_our_own_listing_id_updates_it_without_a_sku_search(sandbox, connection):
    first = sync.publish(connection, STRAT, None)
    sandbox.reset_log()

    again = sync.publish(connection, replace(STRAT, title="Strat, refinished"), first.external_id)

    assert again == replace(first, adopted=False)
    assert [(r.method, r.path) for r in sandbox.requests()] == [
        ("GET", f"/listings/{first.external_id}"),
        ("PUT", f"/listings/{first.external_id}"),
    ]
    assert sandbox.listing(first.external_id)["title"] == "Strat, refinished"


def test_publish_with_an_id_reverb_no_longer_has_falls_back_to_the_sku(sandbox, connection):
    result = sync.publish(connection, STRAT, "99999")

    assert result.adopted is False
    assert len(sandbox.listings(sku="BN-1964")) == 1
    assert [r.path for r in sandbox.requests()] == ["/listings/99999", "/my/listings", "/listings"]


def test_publish_refuses_what_reverb_would_refuse_before_any_call(sandbox, connection):
    with pytest.raises(PermanentChannelError) as refused:
        sync.publish(connection, replace(STRAT, brand="", model=""), None)

    assert "Reverb needs a brand (make); Reverb needs a model" in refused.value.message
    assert sandbox.calls() == 0


def test_publish_says_why_reverb_kept_a_draft_and_adopts_that_draft_next_time(account, clock):
    with ReverbSandbox(require_category=True, clock=clock) as strict:
        connection = ReverbConnection.objects.create(
            account=account, name="Strict", api_token=DEFAULT_TOKEN, base_url=strict.base_url
        )

        with pytest.raises(PermanentChannelError) as kept_draft:
            sync.publish(connection, STRAT, None)

        [draft] = strict.listings()
        assert "will not publish it: A category is required" in kept_draft.value.message
        assert kept_draft.value.body["listing_id"] == str(draft["id"])
        assert ReverbListingDetail.objects.get(listing_id=draft["id"]).warnings == [
            "A category is required to publish: the listing stays a draft."
        ]

        connection.category_uuids = {"Electric Guitars": "dfd39027-d134-4353-b9e4-57dc6be791b9"}
        connection.save()
        result = sync.publish(connection, STRAT, None)

        assert result == PublishResult(external_id=str(draft["id"]), url=result.url, adopted=True)
        assert strict.listing(draft["id"])["state"]["slug"] == "live"
        assert len(strict.listings()) == 1


def test_publish_sends_multi_unit_stock_for_new_gear(sandbox, connection):
    pedals = replace(STRAT, sku="PED-1", condition="brand_new", quantity=6)

    result = sync.publish(connection, pedals, None)

    listing = sandbox.listing(result.external_id)
    assert (listing["has_inventory"], listing["inventory"]) == (True, 6)


def test_a_rate_limited_lookup_creates_nothing(sandbox, connection):
    # A rate limit asking for longer than a brief in-attempt wait goes back to the engine
    sandbox.set_faults(retry_after=30)
    sandbox.fail_next("rate_limit", method="GET", path_prefix="/my/listings")

    with pytest.raises(RateLimited):
        sync.publish(connection, STRAT, None)

    assert sandbox.listings() == []
    assert writes(sandbox) == []


def test_a_blip_on_a_lookup_is_retried_inside_the_publish_and_creates_once(sandbox, connection):
    sandbox.fail_next("error", method="GET", path_prefix="/my/listings", count=2)

    published = sync.publish(connection, STRAT, None)

    assert [listing["id"] for listing in sandbox.listings()] == [int(published.external_id)]
    assert sandbox.calls(method="GET", path_prefix="/my/listings") == 3
    assert [method for method, _path in writes(sandbox)] == ["POST"]


# --- revise ----------------------------------------------------------------------------


def test_revise_pushes_only_the_changed_fields(sandbox, connection):
    listing_id = sync.publish(connection, STRAT, None).external_id
    sandbox.reset_log()

    sync.revise(connection, listing_id, replace(STRAT, price=Decimal("4750")), frozenset({"price"}))

    [put] = sandbox.requests()
    assert (put.method, put.path, put.body) == (
        "PUT",
        f"/listings/{listing_id}",
        {"price": {"amount": "4750.00", "currency": "USD"}},
    )
    assert sandbox.listing(listing_id)["price"]["amount"] == "4750.00"


def test_revise_of_nothing_reverb_shows_makes_no_call(sandbox, connection):
    sync.revise(connection, "71000001", STRAT, frozenset({"seo_description", "seo_keywords", "serial_number"}))

    assert sandbox.calls() == 0


def test_revise_of_a_listing_reverb_does_not_have_is_listing_not_found(connection):
    with pytest.raises(ListingNotFound):
        sync.revise(connection, "424242", STRAT, frozenset({"title"}))


# --- end -------------------------------------------------------------------------------


def test_end_when_sold_elsewhere_ends_as_not_sold_and_reads_it_back(sandbox, connection):
    listing_id = sync.publish(connection, STRAT, None).external_id
    sandbox.reset_log()

    result = sync.end(connection, listing_id, END_SOLD_ELSEWHERE)

    assert result == EndResult(confirmed=True, state="ended")
    assert [(r.method, r.path) for r in sandbox.requests()] == [
        ("PUT", f"/my/listings/{listing_id}/state/end"),
        ("GET", f"/listings/{listing_id}"),
    ]
    assert sandbox.requests()[0].body == {"reason": "not_sold"}
    assert ReverbListingDetail.objects.get(listing_id=listing_id).state == "ended"


@pytest.mark.parametrize(("reason", "reverb_reason"), [(END_SOLD_HERE, "reverb_sale"), (END_WITHDRAWN, "not_sold")])
def test_end_tells_reverb_whether_it_sold_there(sandbox, connection, reason, reverb_reason):
    listing_id = sync.publish(connection, STRAT, None).external_id

    sync.end(connection, listing_id, reason)

    assert sandbox.requests(method="PUT", path_prefix="/my/listings")[0].body == {"reason": reverb_reason}


def test_ending_an_ended_listing_is_a_success(sandbox, connection):
    listing = sandbox.add_external_listing("BN-1964", state="ended")

    assert sync.end(connection, str(listing["id"]), END_WITHDRAWN) == EndResult(confirmed=True, state="ended")


def test_ending_a_listing_that_sold_on_reverb_is_a_success(sandbox, connection):
    listing_id = sync.publish(connection, STRAT, None).external_id
    sandbox.simulate_sale("BN-1964", deliver_webhook=False)

    assert sync.end(connection, listing_id, END_SOLD_HERE) == EndResult(confirmed=True, state="sold")


def test_ending_a_draft_deletes_it_so_it_can_never_go_live(sandbox, connection):
    draft = sandbox.add_external_listing("BN-1964", state="draft")

    result = sync.end(connection, str(draft["id"]), END_SOLD_ELSEWHERE)

    assert result == EndResult(confirmed=True, state="ended")
    assert sandbox.listings() == []
    assert ("DELETE", f"/listings/{draft['id']}") in writes(sandbox)


def test_ending_a_listing_reverb_no_longer_has_is_confirmed(sandbox, connection):
    assert sync.end(connection, "31337", END_WITHDRAWN) == EndResult(confirmed=True, state="ended")


def test_an_end_that_timed_out_is_retried_by_the_engine_and_then_confirmed(sandbox, connection):
    listing_id = sync.publish(connection, STRAT, None).external_id
    connection.timeout_seconds = 1.0  # against the sandbox's 2.5 s delay
    connection.save(update_fields=["timeout_seconds"])
    sandbox.fail_next("timeout", method="PUT", path_prefix="/my/listings")

    with pytest.raises(TransientChannelError):
        sync.end(connection, listing_id, END_SOLD_ELSEWHERE)
    assert sandbox.listing(listing_id)["state"]["slug"] == "ended"  # applied all the same

    assert sync.end(connection, listing_id, END_SOLD_ELSEWHERE) == EndResult(confirmed=True, state="ended")


def test_a_listing_held_by_an_unpaid_order_is_never_confirmed_off_sale(sandbox, connection):
    listing_id = sync.publish(connection, STRAT, None).external_id
    sandbox.set_listing_state(listing_id, "ordered")  # if the buyer does not pay, it is live again

    with pytest.raises(PermanentChannelError) as refused:
        sync.end(connection, listing_id, END_SOLD_ELSEWHERE)

    assert refused.value.status == 422
    assert f"Reverb shows listing {listing_id} as ordered" in refused.value.message
    assert sandbox.listing(listing_id)["state"]["slug"] == "ordered"


def test_an_end_reverb_accepted_but_did_not_apply_is_not_confirmed(sandbox, connection, monkeypatch):
    listing_id = sync.publish(connection, STRAT, None).external_id
    monkeypatch.setattr(sandbox.store, "end_listing", lambda ref, body: (200, None))  # accepted, still live

    assert sync.end(connection, listing_id, END_SOLD_ELSEWHERE) == EndResult(confirmed=False, state="live")


def test_end_read_back_failing_is_transient(sandbox, connection):
    listing_id = sync.publish(connection, STRAT, None).external_id
    sandbox.fail_next("error", method="GET", path_prefix="/listings/")

    with pytest.raises(TransientChannelError):
        sync.end(connection, listing_id, END_SOLD_ELSEWHERE)


# --- read ------------------------------------------------------------------------------


def test_read_listing_is_the_current_listing_or_none(sandbox, connection):
    listing_id = sync.publish(connection, STRAT, None).external_id

    seen = sync.read_listing(connection, listing_id)

    assert (seen.external_id, seen.sku, seen.state, seen.quantity, seen.price) == (
        listing_id,
        "BN-1964",
        "live",
        1,
        Decimal("5000.00"),
    )
    assert sync.read_listing(connection, "404404") is None


# --- pull ------------------------------------------------------------------------------


def test_pull_reads_one_page_and_writes_nothing_when_nothing_changed(sandbox, connection, clock):
    for n in range(7):
        sandbox.add_external_listing(f"EXT-{n}")
    first = sync.pull(connection, None)  # a new connection: orders of the last day and every listing
    assert first.pages_read == 1 + 3  # orders, then 7 listings on pages of 3
    sandbox.reset_log()
    clock.now += timedelta(minutes=1)

    again = sync.pull(connection, first.watermark or clock.now)

    assert (again.orders, again.listings, again.pages_read) == ([], [], 1)
    assert [(r.method, r.path) for r in sandbox.requests()] == [("GET", "/my/orders/selling/all")]
    assert sandbox.writes == 0


def test_pull_returns_a_sale_made_on_reverb_and_moves_the_watermark(sandbox, connection, clock):
    listing_id = sync.publish(connection, STRAT, None).external_id
    since = clock.now
    clock.now += timedelta(minutes=5)
    sale = sandbox.simulate_sale("BN-1964", deliver_webhook=False)

    result = sync.pull(connection, since)

    [order] = result.orders
    assert order.external_id == sale["order_number"]
    assert order.status == "paid"
    assert (order.lines[0].sku, order.lines[0].external_listing_id, order.lines[0].quantity) == (
        "BN-1964",
        listing_id,
        1,
    )
    assert order.placed_at == clock.now
    assert result.watermark == clock.now
    assert sandbox.requests(path_prefix="/my/orders")[0].query == {"updated_start_date": "2026-03-01T11:58:00-00:00"}


def test_pull_reads_a_little_before_the_watermark_and_keeps_it_when_nothing_is_new(sandbox, connection):
    since = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)

    result = sync.pull(connection, since)

    assert result.watermark == since
    assert sandbox.requests()[0].query == {"updated_start_date": "2026-03-01T10:58:00-00:00"}


def test_pull_reads_every_page_of_orders_and_reports_each_order_once(sandbox, connection, clock):
    for n in range(7):
        sandbox.add_external_listing(f"S-{n}")
        clock.now += timedelta(seconds=10)
        sandbox.simulate_sale(f"S-{n}", deliver_webhook=False)

    result = sync.pull(connection, datetime(2026, 3, 1, 11, 0, tzinfo=UTC))

    assert result.pages_read == 3 + 3  # orders, then this process's first listing scan (7 listings)
    assert sandbox.calls(path_prefix="/my/orders") == 3
    assert len(result.orders) == len({o.external_id for o in result.orders}) == 7
    assert result.watermark == clock.now


def test_pull_reports_listings_made_on_reverb_once_per_scan_interval(sandbox, connection, clock):
    made_there = sandbox.add_external_listing("NEW-ON-REVERB", title="Vox AC30")
    sync.publish(connection, STRAT, None)

    first = sync.pull(connection, None)
    second = sync.pull(connection, clock.now)

    assert {(x.external_id, x.sku, x.state) for x in first.listings} == {
        (str(made_there["id"]), "NEW-ON-REVERB", "live"),
        (ReverbListingDetail.objects.get(sku="BN-1964").listing_id, "BN-1964", "live"),
    }
    assert second.listings == []
    assert ReverbListingDetail.objects.filter(connection=connection).count() == 2

    connection.listing_scan_interval_seconds = 0
    assert len(sync.pull(connection, clock.now).listings) == 2


def test_a_listing_scan_that_failed_is_tried_again_on_the_next_pull(sandbox, connection, clock):
    sandbox.add_external_listing("EXT-1")
    sandbox.fail_next("error", method="GET", path_prefix="/my/listings")

    with pytest.raises(TransientChannelError):
        sync.pull(connection, None)
    result = sync.pull(connection, clock.now)

    assert [x.sku for x in result.listings] == ["EXT-1"]


# --- webhooks --------------------------------------------------------------------------


def _delivery(order: dict) -> bytes:
    return json.dumps(order).encode()


def test_a_redelivery_has_the_same_dedupe_key_and_a_later_update_another(sandbox, connection, clock):
    sync.publish(connection, STRAT, None)
    sale = sandbox.simulate_sale("BN-1964", status="unpaid", deliver_webhook=False)

    created = sync.parse_webhook(connection, {"Content-Type": "application/json"}, _delivery(sale))
    redelivered = sync.parse_webhook(connection, {}, _delivery(sale))
    clock.now += timedelta(minutes=3)
    paid = sync.parse_webhook(connection, {}, _delivery(sandbox.update_order(sale["order_number"], "paid", False)))

    assert created.topic == "orders/create"
    assert created.dedupe_key == redelivered.dedupe_key
    assert created.dedupe_key == f"orders/create:{sale['order_number']}:2026-03-01T12:00:00.000000Z:unpaid"
    assert paid.topic == "orders/update"
    assert paid.dedupe_key != created.dedupe_key
    assert created.payload["order_number"] == sale["order_number"]


def test_the_topic_header_wins_over_the_shape(connection):
    body = json.dumps({"order_number": "1", "updated_at": "2026-03-01T12:00:00Z", "status": "paid"}).encode()

    seen = sync.parse_webhook(connection, {"X-Reverb-Topic": "orders/paid"}, body)

    assert (seen.topic, seen.dedupe_key) == ("orders/paid", "orders/paid:1:2026-03-01T12:00:00.000000Z:paid")


def test_webhook_orders_reads_the_order_back_from_reverb(sandbox, connection, clock):
    sync.publish(connection, STRAT, None)
    sale = sandbox.simulate_sale("BN-1964", status="unpaid", deliver_webhook=False)
    event = sync.parse_webhook(connection, {}, _delivery(sale))
    clock.now += timedelta(seconds=30)
    sandbox.update_order(sale["order_number"], "paid", deliver_webhook=False)  # paid since the delivery

    [order] = sync.webhook_orders(connection, event)

    assert (order.external_id, order.status, order.lines[0].sku) == (sale["order_number"], "paid", "BN-1964")
    assert sandbox.requests()[-1].path == f"/my/orders/selling/{sale['order_number']}"


def test_a_forged_order_delivery_yields_no_order(sandbox, connection):
    forged = {"order_number": "666", "status": "paid", "created_at": "2026-03-01T12:00:00Z", "sku": "BN-1964"}
    event = sync.parse_webhook(connection, {}, json.dumps(forged).encode())

    assert sync.webhook_orders(connection, event) == []


def test_a_listing_delivery_carries_no_orders_and_costs_no_call(sandbox, connection):
    listing = sandbox.add_external_listing("BN-1964")
    sandbox.reset_log()
    event = sync.parse_webhook(connection, {}, json.dumps(listing).encode())

    assert event.topic == "listings/update"
    assert event.dedupe_key.startswith(f"listings/update:{listing['id']}:live:1:")
    assert sync.webhook_orders(connection, event) == []
    assert sandbox.calls() == 0


def test_a_body_that_is_not_json_is_refused(connection):
    with pytest.raises(PermanentChannelError):
        sync.parse_webhook(connection, {}, b"token=abc&x=1")
    with pytest.raises(PermanentChannelError):
        sync.parse_webhook(connection, {}, b"[1, 2]")


def test_an_unknown_payload_is_keyed_by_its_exact_bytes(connection):
    one = sync.parse_webhook(connection, {}, b'{"hello": "reverb"}')
    same = sync.parse_webhook(connection, {}, b'{"hello": "reverb"}')
    other = sync.parse_webhook(connection, {}, b'{"hello": "again"}')

    assert one.topic == "unknown"
    assert one.dedupe_key == same.dedupe_key != other.dedupe_key
    assert len(one.dedupe_key) <= 200


def test_one_instant_written_with_two_offsets_is_one_event(connection):
    utc = {"order_number": "7", "created_at": "2026-03-01T18:00:00Z", "updated_at": "2026-03-01T18:00:00Z"}
    local = {**utc, "updated_at": "2026-03-01T12:00:00-06:00"}

    assert (
        sync.parse_webhook(connection, {"X-Reverb-Topic": "orders/update"}, json.dumps(utc).encode()).dedupe_key
        == sync.parse_webhook(connection, {"X-Reverb-Topic": "orders/update"}, json.dumps(local).encode()).dedupe_key
    )


def test_an_order_marked_shipped_here_is_shipped_on_reverb_with_its_tracking(sandbox, connection):
    listing_id = sync.publish(connection, STRAT, None).external_id
    sale = sandbox.simulate_sale(listing_id, deliver_webhook=False)

    sync.ship_order(connection, str(sale["order_number"]), "Royal Mail", "RM123456789GB")

    order = sandbox.store.orders[str(sale["order_number"])]
    assert order["status"] == "shipped"
    assert order["shipment"] == {"provider": "Royal Mail", "tracking_number": "RM123456789GB"}
    assert mappers.shipping_provider("some local courier") == "Other"
