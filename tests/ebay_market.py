"""The loopback eBay as a marketplace of the end-to-end harness (tests/test_sync_e2e_harness.py).

`EbayMarket` has LoopbackMarket's methods, so the engine's end-to-end tests can list, sell and
fault on eBay without knowing its wire format: what the sandbox holds and was sent comes back
in the channel contract's words (ListingSeen, Write with contract field names).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from channels_ebay import mappers
from channels_ebay.models import EbayConnection
from channels_ebay.sandbox import EbaySandbox
from inventory.channels import ListingSeen
from tests.test_sync_e2e_harness import Write

INVENTORY = "/sell/inventory/v1"


class EbayMarket:
    channel = "ebay"

    def __init__(
        self,
        account,
        name: str,
        *,
        webhook_base: str | None = None,
        priority: int = 100,
        timeout: float = 10.0,
        seed: int = 0,
        **faults: Any,
    ) -> None:
        self.account = account
        self.name = name
        self.webhook_base = webhook_base
        self.priority = priority
        self.timeout = timeout
        self.sandbox = EbaySandbox(seed=seed, **faults)
        self.connection: EbayConnection | None = None

    def __enter__(self) -> EbayMarket:
        self.sandbox.start()
        self.connection = EbayConnection.objects.create(
            account=self.account,
            name=self.name,
            priority=self.priority,
            timeout_seconds=self.timeout,
            category_ids={
                c: "33034" for c in ("Electric Guitars", "Acoustic Guitars", "Amps", "Effects and Pedals", "Basses", "")
            },
            listing_scan_interval_seconds=0,
            **self.sandbox.connection_fields(),
        )
        if self.webhook_base:
            self.sandbox.webhook_urls.append(self.webhook_url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sandbox.stop()

    @property
    def webhook_url(self) -> str:
        return self.webhook_base.rstrip("/") + self.connection.webhook_path

    # --- the buyer's and the seller's side ------------------------------------------------

    def sell(self, sku: str, quantity: int = 1, *, webhook: bool = True) -> str:
        return self.sandbox.simulate_sale(sku, quantity, deliver=webhook)["orderId"]

    def order_delivery(self, order_id: str) -> tuple[str, bytes, dict[str, str]]:
        payload = self.sandbox.notification("ORDER_CONFIRMATION", {"orderId": order_id}, f"n-{order_id}")
        body, headers = self.sandbox.signed(payload)
        return self.webhook_url, body, headers

    def list_directly(self, sku: str, *, title: str, price: str, quantity: int = 1) -> ListingSeen:
        """The seller listed it with another Inventory API tool (visible to us; not made here)."""
        store = self.sandbox.store
        with store.lock:
            store.items[sku] = {
                "sku": sku,
                "locale": "en_US",
                "condition": "NEW" if quantity > 1 else "USED_EXCELLENT",
                "product": {"title": title, "imageUrls": ["https://i.ebayimg.com/direct.jpg"]},
                "availability": {"shipToLocationAvailability": {"quantity": quantity}},
            }
            offer_id = store.new_id("offer")
            store.offers[offer_id] = {
                "offerId": offer_id,
                "sku": sku,
                "marketplaceId": "EBAY_US",
                "format": "FIXED_PRICE",
                "availableQuantity": quantity,
                "pricingSummary": {"price": {"value": price, "currency": "USD"}},
                "status": "PUBLISHED",
                "listing": {"listingId": store.new_id("listing"), "listingStatus": "ACTIVE", "soldQuantity": 0},
            }
        return self.seen(offer_id)

    # --- what the marketplace holds ---------------------------------------------------------

    def offered(self, sku: str) -> list[ListingSeen]:
        item = self.sandbox.store.items.get(sku)
        return [mappers.listing_seen(offer, item) for offer in self.sandbox.store.offers_by_sku(sku)]

    def seen(self, external_id: str) -> ListingSeen | None:
        status, offer = self.sandbox.store.get_offer(str(external_id))
        if status != 200:
            return None
        return mappers.listing_seen(offer, self.sandbox.store.items.get(offer["sku"]))

    def listing_count_by_sku(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.sandbox.store.lock:
            for offer in self.sandbox.store.offers.values():
                counts[offer["sku"]] = counts.get(offer["sku"], 0) + 1
        return counts

    def order_ids(self) -> list[str]:
        return list(self.sandbox.store.orders)

    # --- what the marketplace was sent ---------------------------------------------------------

    def writes(self, external_id: str | None = None) -> list[Write]:
        return [w for w in self.requests(external_id) if w.kind in ("create", "revise", "publish", "end")]

    def requests(self, external_id: str | None = None) -> list[Write]:
        """Calls about offers: create, revise (item, offer or bulk), publish, end, read."""
        found = []
        offer_of_sku = {o["sku"]: oid for oid, o in self.sandbox.store.offers.items()}
        for request in self.sandbox.api_calls():
            path = request.path
            if not path.startswith(INVENTORY):
                continue
            parts = path[len(INVENTORY) :].strip("/").split("/")
            body = request.body if isinstance(request.body, dict) else {}
            if request.method == "POST" and parts == ["offer"]:
                kind, offer_id, fields = "create", str((request.answer or {}).get("offerId") or ""), _offer_fields(body)
            elif parts[0] == "offer" and len(parts) == 3 and parts[2] in ("publish", "withdraw"):
                kind, offer_id, fields = ("publish" if parts[2] == "publish" else "end"), parts[1], {}
            elif parts[0] == "offer" and len(parts) == 2:
                kind = {"PUT": "revise", "GET": "read"}.get(request.method, request.method)
                offer_id, fields = parts[1], _offer_fields(body)
            elif parts[0] == "inventory_item" and len(parts) == 2 and request.method == "PUT":
                kind, offer_id, fields = "revise", offer_of_sku.get(parts[1], ""), _item_fields(body)
            elif parts == ["bulk_update_price_quantity"]:
                for entry in body.get("requests") or []:
                    for offer in entry.get("offers") or []:
                        fields = {}
                        if "price" in offer:
                            fields["price"] = Decimal(offer["price"]["value"])
                        if "availableQuantity" in offer:
                            fields["quantity"] = offer["availableQuantity"]
                        if external_id is None or offer["offerId"] == str(external_id):
                            found.append(Write("revise", offer["offerId"], fields, request.status))
                continue
            else:
                continue
            if external_id is None or offer_id == str(external_id):
                found.append(Write(kind, offer_id, fields, request.status))
        return found

    @property
    def calls(self) -> int:
        return len(self.sandbox.api_calls())

    def reset_log(self) -> None:
        self.sandbox.reset_log()

    def set_faults(self, **faults: Any) -> None:
        self.sandbox.set_faults(**faults)

    def go_down(self) -> None:
        self.sandbox.set_faults(error_rate=1.0, rate_limit_rate=0.0, timeout_rate=0.0)


def _item_fields(body: dict) -> dict[str, Any]:
    product = body.get("product") or {}
    fields: dict[str, Any] = {}
    if "title" in product:
        fields["title"] = product["title"]
    quantity = ((body.get("availability") or {}).get("shipToLocationAvailability") or {}).get("quantity")
    if quantity is not None:
        fields["quantity"] = quantity
    return fields


def _offer_fields(body: dict) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    price = ((body.get("pricingSummary") or {}).get("price") or {}).get("value")
    if price is not None:
        fields["price"] = Decimal(price)
    if "availableQuantity" in body:
        fields["quantity"] = body["availableQuantity"]
    return fields
