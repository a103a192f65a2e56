"""The loopback Etsy for tests: a connected EtsyConnection to a sandbox, and EtsyMarket, the
end-to-end harness's marketplace adapter (the LoopbackMarket methods) for Etsy."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from channels_etsy import mappers
from channels_etsy.models import EtsyConnection
from channels_etsy.sandbox import (
    DEFAULT_KEYSTRING,
    DEFAULT_SHARED_SECRET,
    READINESS_STATE_ID,
    RETURN_POLICY_ID,
    SHIPPING_PROFILE_ID,
    SHOP_ID,
    EtsySandbox,
)
from inventory.channels import ListingSeen
from inventory.models import ItemPhoto
from tests.test_sync_e2e_harness import Write

TAXONOMY_ID = 1234


def connect(account, sandbox: EtsySandbox, *, name: str = "Etsy shop", **fields: Any) -> EtsyConnection:
    """An Etsy connection to the sandbox with tokens as if the shop owner had pressed Connect Etsy."""
    tokens = sandbox.grant()
    values = {
        "keystring": DEFAULT_KEYSTRING,
        "shared_secret": DEFAULT_SHARED_SECRET,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "token_expires_at": timezone.now() + timedelta(seconds=tokens["expires_in"]),
        "shop_id": SHOP_ID,
        "shipping_profile_id": SHIPPING_PROFILE_ID,
        "return_policy_id": RETURN_POLICY_ID,
        "readiness_state_id": READINESS_STATE_ID,
        "default_taxonomy_id": TAXONOMY_ID,
        "api_base_url": sandbox.base_url,
        "authorize_url": sandbox.authorize_url,
        "token_url": sandbox.token_url,
        "webhook_secret": sandbox.webhook_secret,
        "timeout_seconds": 10.0,
        "listing_scan_interval_seconds": 0,
        "daily_reserve": 0,
        **fields,
    }
    return EtsyConnection.objects.create(account=account, name=name, **values)


def photo_url(sandbox: EtsySandbox, name: str = "front.jpg") -> str:
    return f"{sandbox.base_url}/_sandbox/photos/{name}"


def add_photos(item, sandbox: EtsySandbox, count: int = 1) -> None:
    for index in range(count):
        ItemPhoto.objects.create(item=item, url=photo_url(sandbox, f"p{index}.jpg"), position=index)


_WRITES = {
    "createDraftListing": "create",
    "updateListing": "revise",
    "updateListingInventory": "revise",
    "uploadListingImage": "revise",
    "deleteListingImage": "revise",
    "deleteListing": "delete",
}


class EtsyMarket:
    """The end-to-end harness's marketplace, on the loopback Etsy (same methods as LoopbackMarket)."""

    channel = "etsy"

    def __init__(
        self, account, name: str, *, webhook_base: str | None = None, priority: int = 100, timeout: float = 10.0,
        seed: int = 0, **faults: Any,
    ) -> None:  # fmt: skip
        self.account, self.name, self.webhook_base = account, name, webhook_base
        self.priority, self.timeout = priority, timeout
        self.sandbox = EtsySandbox(seed=seed, **faults)
        self.connection: EtsyConnection | None = None

    def __enter__(self) -> EtsyMarket:
        self.sandbox.start()
        self.connection = connect(
            self.account, self.sandbox, name=self.name, priority=self.priority, timeout_seconds=self.timeout
        )
        if self.webhook_base:
            self.sandbox.register_webhook(self.webhook_url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sandbox.stop()

    @property
    def webhook_url(self) -> str:
        return self.webhook_base.rstrip("/") + self.connection.webhook_path

    def photo(self, name: str = "front.jpg") -> str:
        return photo_url(self.sandbox, name)

    # --- the buyer's and the seller's side --------------------------------------------

    def sell(self, sku: str, quantity: int = 1, *, webhook: bool = True) -> str:
        return str(self.sandbox.simulate_sale(sku, quantity, deliver_webhook=webhook)["receipt_id"])

    def order_delivery(self, order_id: str) -> tuple[str, bytes, dict[str, str]]:
        body = self.sandbox.order_event("order.paid", int(order_id))
        return self.webhook_url, body, self.sandbox.signed_headers(f"msg_replay_{order_id}", body)

    def list_directly(self, sku: str, *, title: str, price: str, quantity: int = 1) -> ListingSeen:
        return mappers.listing_seen(self.sandbox.add_external_listing(sku, title=title, price=price, quantity=quantity))

    # --- what the marketplace holds ---------------------------------------------------

    def offered(self, sku: str) -> list[ListingSeen]:
        return [mappers.listing_seen(raw) for raw in self.sandbox.listings(sku=sku)]

    def seen(self, external_id: str) -> ListingSeen | None:
        raw = self.sandbox.listing(external_id)
        return None if raw is None else mappers.listing_seen(raw)

    def listing_count_by_sku(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for raw in self.sandbox.listings():
            sku = raw["skus"][0] if raw["skus"] else ""
            counts[sku] = counts.get(sku, 0) + 1
        return counts

    def order_ids(self) -> list[str]:
        return [str(r["receipt_id"]) for r in self.sandbox.receipts()]

    # --- what the marketplace was sent ------------------------------------------------

    def requests(self, external_id: str | None = None) -> list[Write]:
        found = []
        for request in self.sandbox.requests():
            kind = _WRITES.get(request.operation_id)
            if request.operation_id == "updateListing" and (request.body or {}).get("state") == "inactive":
                kind = "end"
            if request.operation_id == "getListing":
                kind = "read"
            if kind is None:
                continue
            listing_id = str(request.path.split("/listings/")[1].split("/")[0]) if "/listings/" in request.path else ""
            if external_id is None or listing_id == str(external_id):
                found.append(Write(kind, listing_id, self._contract_fields(request), request.status))
        return found

    def writes(self, external_id: str | None = None) -> list[Write]:
        return [w for w in self.requests(external_id) if w.kind in ("create", "revise", "end", "delete")]

    @staticmethod
    def _contract_fields(request) -> dict[str, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        fields: dict[str, Any] = {}
        for ours in ("title", "description"):
            if ours in body:
                fields[ours] = body[ours]
        if "price" in body:
            fields["price"] = Decimal(str(body["price"])).quantize(Decimal("0.01"))
        if "quantity" in body:
            fields["quantity"] = body["quantity"]
        for product in body.get("products") or []:
            fields["sku"] = product.get("sku")
            offering = product["offerings"][0]
            fields["price"] = Decimal(str(offering["price"])).quantize(Decimal("0.01"))
            fields["quantity"] = offering["quantity"]
        if request.operation_id == "uploadListingImage":
            fields["photos"] = True
        return fields

    @property
    def calls(self) -> int:
        return self.sandbox.calls()

    def reset_log(self) -> None:
        self.sandbox.reset_log()

    def set_faults(self, **faults: Any) -> None:
        self.sandbox.set_faults(**faults)

    def go_down(self) -> None:
        self.sandbox.set_faults(error_rate=1.0, rate_limit_rate=0.0, timeout_rate=0.0)
