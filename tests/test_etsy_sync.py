"""Etsy's sync functions against the loopback Etsy: publish (draft, inventory, photos in order,
activate, read back; adopt by SKU; never twice, after a lost answer too), revise only what changed,
end and relist, pull receipts by watermark, signed webhooks, and the connection check. Every
request the functions send is checked against the OpenAPI file by the sandbox."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels_etsy import sync
from channels_etsy.models import EtsyListingDetail
from channels_etsy.sandbox import EtsySandbox
from inventory.channels import ListingPayload, PermanentChannelError, TransientChannelError, WebhookRejected
from inventory.models import WebhookEvent
from tests.etsy_market import connect, photo_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def etsy():
    with EtsySandbox() as sandbox:
        yield sandbox
        assert sandbox.violations == []  # nothing the sync sent was outside the spec
        assert sandbox.answer_violations == []


@pytest.fixture
def conn(account, etsy):
    return connect(account, etsy)


def guitar(etsy: EtsySandbox, **changes) -> ListingPayload:
    values = {
        "sku": "V-1965-JAG",
        "title": "1965 Fender Jaguar",
        "description": "All original, with case.",
        "price": Decimal("4200.00"),
        "currency": "USD",
        "quantity": 1,
        "brand": "Fender",
        "model": "Jaguar",
        "year": "1965",
        "category": "Electric Guitars",
        "photos": (photo_url(etsy, "front.jpg"), photo_url(etsy, "back.jpg"), photo_url(etsy, "head.jpg")),
    }
    values.update(changes)
    return ListingPayload(**values)


def ops(etsy: EtsySandbox) -> list[str]:
    return [r.operation_id for r in etsy.requests()]


def test_publish_creates_a_draft_sets_the_inventory_uploads_photos_in_order_activates_and_reads_back(conn, etsy):
    result = sync.publish(conn, guitar(etsy), None)

    [listing] = etsy.listings()
    assert (result.external_id, result.adopted) == (str(listing["listing_id"]), False)
    assert result.url == listing["url"]
    assert listing["state"] == "active" and listing["skus"] == ["V-1965-JAG"]
    assert (listing["who_made"], listing["when_made"], listing["taxonomy_id"]) == ("someone_else", "1960s", 1234)
    assert listing["shipping_profile_id"] == 90001 and listing["return_policy_id"] == 91001
    assert listing["price"] == {"amount": 420000, "divisor": 100, "currency_code": "USD"}
    assert [(i["rank"], i["alt_text"]) for i in etsy.images(listing["listing_id"])] == [
        (1, "1965 Fender Jaguar"),
        (2, "1965 Fender Jaguar (photo 2)"),
        (3, "1965 Fender Jaguar (photo 3)"),
    ]
    [create] = etsy.requests("createDraftListing")
    assert create.body["tags"] == ["Fender", "Jaguar", "Fender Jaguar", "Electric Guitars", "1960s", "vintage"]
    assert ops(etsy)[-5:] == [
        "uploadListingImage", "uploadListingImage", "uploadListingImage", "updateListing", "getListing",
    ]  # fmt: skip
    assert etsy.requests("updateListing")[-1].body == {"state": "active"}
    detail = EtsyListingDetail.objects.get(connection=conn, listing_id=listing["listing_id"])
    assert (detail.sku, detail.state, len(detail.image_ids)) == ("V-1965-JAG", "active", 3)


def test_publishing_again_adopts_the_same_listing_and_creates_nothing(conn, etsy):
    first = sync.publish(conn, guitar(etsy), None)
    etsy.reset_log()
    again = sync.publish(conn, guitar(etsy), None)
    assert again.external_id == first.external_id
    assert len(etsy.listings()) == 1
    assert "createDraftListing" not in ops(etsy) and "uploadListingImage" not in ops(etsy)
    assert "updateListingInventory" not in ops(etsy)  # Etsy already has exactly this SKU, price and quantity


def test_a_create_whose_answer_was_lost_is_found_and_finished_not_created_twice(conn, etsy):
    conn.timeout_seconds = 1.0  # against the 2.5 s delay
    conn.save(update_fields=["timeout_seconds"])
    etsy.set_faults(timeout_delay=2.5)
    etsy.fail_next("timeout", method="POST", path_contains="/listings")  # the create: applied, answer lost
    with pytest.raises(TransientChannelError, match="may have been applied"):
        sync.publish(conn, guitar(etsy), None)
    [draft] = etsy.listings()
    assert (draft["state"], draft["skus"]) == ("draft", [])  # made, but no SKU on it yet

    # When the engine tries again
    result = sync.publish(conn, guitar(etsy), None)

    # Then the draft is the one brought live
    assert result.external_id == str(draft["listing_id"])
    [listing] = etsy.listings()
    assert (listing["state"], listing["skus"]) == ("active", ["V-1965-JAG"])
    assert len(etsy.requests("createDraftListing")) == 1


def test_a_publish_interrupted_after_the_photos_resumes_without_uploading_them_again(conn, etsy):
    etsy.fail_next("error", method="PATCH", count=3)  # activation fails on every quick retry
    with pytest.raises(TransientChannelError):
        sync.publish(conn, guitar(etsy), None)
    [draft] = etsy.listings()
    assert draft["state"] == "draft" and len(etsy.images(draft["listing_id"])) == 3
    etsy.reset_log()
    result = sync.publish(conn, guitar(etsy), str(draft["listing_id"]))
    assert (result.external_id, etsy.listing(draft["listing_id"])["state"]) == (str(draft["listing_id"]), "active")
    assert "uploadListingImage" not in ops(etsy) and "createDraftListing" not in ops(etsy)


def test_a_listing_made_on_etsy_with_our_sku_is_adopted(conn, etsy):
    made = etsy.add_external_listing("V-1965-JAG", title="Fender Jaguar 65", price="3900.00")
    result = sync.publish(conn, guitar(etsy), None)
    assert (result.external_id, result.adopted) == (str(made["listing_id"]), True)
    [listing] = etsy.listings()
    assert (listing["title"], listing["price"]["amount"]) == ("1965 Fender Jaguar", 420000)
    assert etsy.requests("createDraftListing") == []


def test_a_2015_guitar_is_refused_with_the_reason_and_nothing_is_sent(conn, etsy):
    with pytest.raises(PermanentChannelError) as refused:
        sync.publish(conn, guitar(etsy, year="2015", title="2015 Fender Player Strat"), None)
    assert "Etsy lists used gear only as vintage" in refused.value.message
    assert "this item is from 2015" in refused.value.message
    assert etsy.requests() == [] and etsy.listings() == []
    with pytest.raises(PermanentChannelError, match="no year"):
        sync.publish(conn, guitar(etsy, year=""), None)
    assert etsy.requests() == []


def test_revise_sends_only_what_changed(conn, etsy):
    listing_id = sync.publish(conn, guitar(etsy), None).external_id
    etsy.reset_log()

    # price and quantity: through updateListingInventory only
    sync.revise(conn, listing_id, guitar(etsy, price=Decimal("3950.00")), frozenset({"price"}))
    assert ops(etsy) == ["getListingInventory", "updateListingInventory"]
    offering = etsy.inventory(listing_id)["products"][0]["offerings"][0]
    assert (offering["price"]["amount"], offering["quantity"], offering["readiness_state_id"]) == (395000, 1, 92001)
    etsy.reset_log()

    # the title: updateListing with the title alone
    sync.revise(conn, listing_id, guitar(etsy, title="1965 Fender Jaguar (refret)"), frozenset({"title"}))
    assert ops(etsy) == ["updateListing"]
    assert etsy.requests()[0].body == {"title": "1965 Fender Jaguar (refret)"}
    etsy.reset_log()

    # fields Etsy has no place for: no call at all
    sync.revise(conn, listing_id, guitar(etsy), frozenset({"serial_number", "seo_description"}))
    assert etsy.requests() == []

    # the photos: replaced, in the new order
    sync.revise(conn, listing_id, guitar(etsy, photos=(photo_url(etsy, "new.jpg"),)), frozenset({"photos"}))
    assert [i["rank"] for i in etsy.images(listing_id)] == [1]
    assert etsy.listing(listing_id)["state"] == "active"


def test_end_deactivates_and_reads_back_and_relist_activates_the_same_listing(conn, etsy):
    listing_id = sync.publish(conn, guitar(etsy), None).external_id
    etsy.reset_log()
    ended = sync.end(conn, listing_id, "sold_elsewhere")
    assert (ended.confirmed, ended.state) == (True, "ended")
    assert ops(etsy) == ["updateListing", "getListing"]
    assert etsy.requests()[0].body == {"state": "inactive"}
    assert etsy.listing(listing_id)["state"] == "inactive"
    # ending again is a success (Etsy refuses to deactivate an inactive listing; the read-back decides)
    assert sync.end(conn, listing_id, "withdrawn").confirmed
    # relist: the same listing comes back on sale, nothing created
    etsy.reset_log()
    relisted = sync.publish(conn, guitar(etsy), listing_id)
    assert relisted.external_id == listing_id and etsy.listing(listing_id)["state"] == "active"
    assert "createDraftListing" not in ops(etsy)


def test_ending_a_sold_out_or_vanished_listing_is_confirmed(conn, etsy):
    listing_id = sync.publish(conn, guitar(etsy), None).external_id
    etsy.simulate_sale("V-1965-JAG", deliver_webhook=False)
    assert sync.end(conn, listing_id, "sold_here") == sync.EndResult(confirmed=True, state="sold")
    etsy.store.listings.clear()
    assert sync.end(conn, listing_id, "withdrawn").confirmed
    assert sync.read_listing(conn, listing_id) is None


def test_pull_reads_receipts_by_watermark_one_page_when_nothing_changed(conn, etsy):
    listing_id = sync.publish(conn, guitar(etsy), None).external_id
    receipt = etsy.simulate_sale("V-1965-JAG", deliver_webhook=False)
    etsy.add_external_listing("MADE-ON-ETSY", title="1972 Fender Twin Reverb", price="1500.00")

    first = sync.pull(conn, None)
    [order] = first.orders
    assert (order.external_id, order.status, order.lines[0].sku, order.lines[0].external_listing_id) == (
        str(receipt["receipt_id"]), "paid", "V-1965-JAG", listing_id,
    )  # fmt: skip
    assert first.watermark == order.updated_at
    assert first.listings_complete and {s.sku for s in first.listings} == {"V-1965-JAG", "MADE-ON-ETSY"}

    # When nothing changed: one page of receipts (the scan of listings is every interval, 0 in this shop)
    conn.listing_scan_interval_seconds = 900
    conn.save()
    sync.pull(conn, None)  # the first pull of the interval reads listings
    etsy.reset_log()
    later = sync.pull(conn, first.watermark)
    assert later.pages_read == 1 and ops(etsy) == ["getShopReceipts"]
    [query] = [r.query for r in etsy.requests()]
    assert query["min_last_modified"] == int(first.watermark.timestamp()) - 120
    assert later.watermark >= first.watermark


def test_pull_pages_receipts_and_maps_cancellations_and_refunds(conn, etsy):
    for n in range(130):
        etsy.store.add_listing(f"S-{n}", title=f"Pedal {n}", price="50")
        etsy.store.sell(f"S-{n}")
    receipts = sorted(etsy.store.receipts)
    etsy.store.set_receipt_status(receipts[0], "canceled")
    etsy.store.set_receipt_status(receipts[1], "fully refunded")
    etsy.store.set_receipt_status(receipts[2], "partially refunded")
    conn.listing_scan_interval_seconds = 900
    conn.save()
    sync.pull(conn, None)
    etsy.reset_log()
    result = sync.pull(conn, timezone.now() - timedelta(hours=1))  # not the first pull: no listing scan due
    assert len(result.orders) == 130 and result.pages_read == 2
    assert [r.query["offset"] for r in etsy.requests("getShopReceipts")] == [0, 100]
    status = {o.external_id: o.status for o in result.orders}
    assert [status[str(r)] for r in receipts[:4]] == ["cancelled", "cancelled", "paid", "paid"]


def _delivery(etsy: EtsySandbox, receipt_id: int, *, webhook_id: str = "msg_1", **kwargs):
    body = etsy.order_event("order.paid", receipt_id)
    return body, etsy.signed_headers(webhook_id, body, **kwargs)


def test_a_signed_delivery_is_identified_by_its_webhook_id_and_reads_the_receipt(conn, etsy):
    sync.publish(conn, guitar(etsy), None)
    receipt = etsy.simulate_sale("V-1965-JAG", deliver_webhook=False)
    body, headers = _delivery(etsy, receipt["receipt_id"])
    seen = sync.parse_webhook(conn, headers, body)
    assert (seen.topic, seen.dedupe_key) == ("order.paid", "etsy:msg_1")
    [order] = sync.webhook_orders(conn, seen)
    assert (order.external_id, order.status) == (str(receipt["receipt_id"]), "paid")


@pytest.mark.parametrize("tamper", ["wrong secret", "changed body", "no signature", "no id", "stale", "no secret set"])
def test_a_delivery_that_is_not_etsys_is_rejected_with_401_and_nothing_stored(conn, etsy, client, tamper):
    receipt = etsy.store.sell(str(etsy.store.add_listing("X", title="t", price="9")["listing_id"]))
    body, headers = _delivery(etsy, receipt["receipt_id"])
    if tamper == "wrong secret":
        headers = etsy.signed_headers("msg_1", body, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQQ==")
    elif tamper == "changed body":
        body = body.replace(b"order.paid", b"order.PAID")
    elif tamper == "no signature":
        headers.pop("webhook-signature")
    elif tamper == "no id":
        headers.pop("webhook-id")
    elif tamper == "stale":
        headers = etsy.signed_headers("msg_1", body, at=int(time.time()) - 600)
    else:
        conn.webhook_secret = ""
        conn.save()
    with pytest.raises(WebhookRejected) as rejected:
        sync.parse_webhook(conn, headers, body)
    assert rejected.value.http_status == 401
    answer = client.post(
        conn.webhook_path, data=body, content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )  # fmt: skip
    assert answer.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_duplicate_delivery_is_stored_once(conn, etsy, client):
    receipt = etsy.store.sell(str(etsy.store.add_listing("X", title="t", price="9")["listing_id"]))
    body, headers = _delivery(etsy, receipt["receipt_id"], webhook_id="msg_dup")
    extra = {k: v for k, v in headers.items() if k != "Content-Type"}
    answers = [
        client.post(conn.webhook_path, data=body, content_type="application/json", headers=extra) for _ in range(2)
    ]
    assert [(a.status_code, a.content) for a in answers] == [(200, b"stored"), (200, b"duplicate")]
    event = WebhookEvent.objects.get()
    assert (event.dedupe_key, event.deliveries, event.topic) == ("etsy:msg_dup", 2, "order.paid")


def test_the_check_says_what_works_and_what_to_fix_in_plain_words(conn, etsy):
    result = sync.check(conn)
    assert result.ok, result.summary
    assert [s.label for s in result.steps] == ["App key", "Token", "Shop", "Shipping profile", "Return policy", "Fees"]
    assert "listing fee" in result.steps[-1].message
    assert "SandboxVintageGear" in result.summary
    conn.shipping_profile_id = 12345
    conn.save()
    broken = sync.check(conn)
    assert not broken.ok and broken.summary.startswith("To fix: Shipping profile: Shipping profile 12345")
    etsy.refuse_refresh()
    etsy.expire_tokens()
    conn.keystring = "wrong"
    conn.save()
    [step] = sync.check(conn).steps
    assert (step.label, step.ok) == ("App key", False) and "keystring and shared secret" in step.message


def test_a_new_listing_uses_the_taxonomy_of_its_category(conn, etsy):
    conn.taxonomy_ids = {"Amplifiers": 77}
    conn.save()
    sync.publish(conn, guitar(etsy, sku="AMP-1", category="Amplifiers", title="1968 Fender Bassman"), None)
    assert etsy.listings(sku="AMP-1")[0]["taxonomy_id"] == 77
    conn.taxonomy_ids, conn.default_taxonomy_id = {}, None
    conn.save()
    with pytest.raises(PermanentChannelError, match="no Etsy taxonomy id for the category Amplifiers"):
        sync.publish(conn, replace(guitar(etsy), sku="AMP-2", category="Amplifiers"), None)


def test_when_the_days_budget_is_low_publishing_waits_ends_go_and_staff_are_told(conn, etsy):
    from channels_etsy.client import DailyBudgetLow
    from inventory.models import Alert, AlertKind

    listing_id = sync.publish(conn, guitar(etsy), None).external_id
    conn.daily_reserve = 50
    conn.save()
    etsy.remaining_today = 40
    sync.read_listing(conn, listing_id)  # Etsy now says 39 calls remain today
    etsy.reset_log()
    with pytest.raises(DailyBudgetLow):
        sync.publish(conn, guitar(etsy, sku="V-OTHER"), None)
    assert etsy.requests() == []
    [alert] = Alert.objects.filter(kind=AlertKind.CONNECTION)
    assert "daily call budget is low" in alert.title and "Ends, read-backs and receipts go first" in alert.message
    assert sync.end(conn, listing_id, "sold_elsewhere").confirmed  # a sale's end still goes out
    assert sync.pull(conn, None).pages_read >= 1  # and so do receipts


def test_tracking_is_pushed_to_the_receipt(conn, etsy):
    sync.publish(conn, guitar(etsy), None)
    receipt = etsy.simulate_sale("V-1965-JAG", deliver_webhook=False)
    answer = sync.push_tracking(
        conn, str(receipt["receipt_id"]), tracking_code="1Z999AA10123456784", carrier_name="ups"
    )
    assert answer["is_shipped"] is True
    [shipment] = etsy.store.receipts[receipt["receipt_id"]]["shipments"]
    assert (shipment["tracking_code"], shipment["carrier_name"]) == ("1Z999AA10123456784", "ups")


def test_deliveries_twice_and_out_of_order_store_one_event_each_and_read_the_receipt_as_it_is_now(
    conn, etsy, live_server
):
    sync.publish(conn, guitar(etsy), None)
    etsy.register_webhook(live_server.url + conn.webhook_path)
    etsy.hold_deliveries()
    receipt = etsy.simulate_sale("V-1965-JAG", duplicate=True)
    etsy.set_receipt_status(receipt["receipt_id"], "canceled")
    sent = etsy.release(reverse=True)  # the cancellation arrives first, the paid event (twice) after
    assert [d.status for d in sent] == [200, 200, 200]
    events = WebhookEvent.objects.order_by("id")
    assert [(e.topic, e.deliveries) for e in events] == [("order.canceled", 1), ("order.paid", 2)]
    for event in events:
        [order] = sync.webhook_orders(conn, sync.WebhookSeen(event.topic, event.dedupe_key, event.payload))
        assert order.status == "cancelled"  # read fresh: an old paid event cannot undo the cancellation


def test_find_listing_and_read_all_listings_see_every_state(conn, etsy):
    listing_id = sync.publish(conn, guitar(etsy), None).external_id
    sync.end(conn, listing_id, "withdrawn")
    etsy.add_external_listing("ON-ETSY", title="1979 MXR Phase 90", price="150.00")
    found = sync.find_listing(conn, "V-1965-JAG")
    assert (found.external_id, found.state, found.sku) == (listing_id, "ended", "V-1965-JAG")
    assert sync.find_listing(conn, "NOT-THERE") is None
    every = {seen.sku: seen.state for seen in sync.read_all_listings(conn)}
    assert every == {"V-1965-JAG": "ended", "ON-ETSY": "live"}
    assert {r.query["state"] for r in etsy.requests("getListingsByShop")} >= {
        "active",
        "inactive",
        "draft",
        "sold_out",
        "expired",
    }
