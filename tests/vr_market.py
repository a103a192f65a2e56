"""The loopback V&R dealer site as a marketplace of the end-to-end tests (the LoopbackMarket methods).

Like tests/test_sync_e2e_harness.LoopbackMarket for Reverb: it starts the site, makes this
shop's connection to it (with the category mapping the test items need), and translates what
the site holds and was sent into the channel contract's words. V&R sends no webhooks: a sale
is seen by the next pull, so `sell` only changes the site and the test asks for a pull, as
the schedule would.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from channels_vr import mappers
from channels_vr.client import close_all_sessions
from channels_vr.models import VRCategoryMapping, VRConnection
from channels_vr.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, VRSandbox
from inventory.channels import ListingSeen
from tests.test_sync_e2e_harness import Write

# The V&R form's fields, back in the contract's names.
_VR_FIELDS = {
    mappers.FIELD_BRAND: "brand",
    mappers.FIELD_MODEL: "model",
    mappers.FIELD_YEAR: "year",
    mappers.FIELD_FINISH: "finish",
    mappers.FIELD_DESCRIPTION: "description",
    mappers.FIELD_PRICE: "price",
    mappers.FIELD_EXTERNAL_ID: "sku",
    mappers.FIELD_YOUTUBE: "video_url",
}
CATEGORY_LEVELS = {
    "Electric Guitars": ("51", "83"),
    "Acoustic Guitars": ("51", "85"),
    "Amps": ("52", "90"),
    "Effects and Pedals": ("54", "99"),
    "Basses": ("53", "95"),
}


class VRMarket:
    channel = "vr"

    def __init__(self, account, name: str, *, priority: int = 30, timeout: float = 10.0, **switches: Any) -> None:
        self.account = account
        self.name = name
        self.priority = priority
        self.timeout = timeout
        self.sandbox = VRSandbox()
        self.switches = switches
        self.connection: VRConnection | None = None

    def __enter__(self) -> VRMarket:
        self.sandbox.start()
        if self.switches:
            self.sandbox.set_switches(**self.switches)
        self.connection = VRConnection.objects.create(
            account=self.account,
            name=self.name,
            priority=self.priority,
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            base_url=self.sandbox.base_url,
            step_timeout_seconds=self.timeout,
        )
        for category, levels in CATEGORY_LEVELS.items():
            VRCategoryMapping.objects.create(
                account=self.account,
                connection=self.connection,
                category=category,
                level_0=levels[0],
                level_1=levels[1],
            )
        return self

    def __exit__(self, *exc: object) -> None:
        close_all_sessions()  # the worker's browsers for this site
        self.sandbox.stop()

    # --- the buyer's and the seller's side ------------------------------------------------

    def sell(self, sku: str, quantity: int = 1, *, webhook: bool = False) -> str:
        """A buyer buys the item on V&R. Returns the order id the sync will give it."""
        item = self.sandbox.simulate_sale(sku)
        return f"vr-{item.id}"

    def list_directly(self, sku: str, *, title: str, price: str, quantity: int = 1) -> ListingSeen:
        brand, _, model = title.partition(" ")
        item = self.sandbox.add_external_item(sku, brand=brand or "Fender", model=model or title, price=price)
        return self.seen(str(item.id))

    # --- what the site holds ----------------------------------------------------------------

    def offered(self, sku: str) -> list[ListingSeen]:
        return [mappers.listing_seen(row) for row in self.sandbox.export_rows() if row["external id"] == sku]

    def seen(self, external_id: str) -> ListingSeen | None:
        """The item as the export shows it; a deleted item is "ended" (V&R forgets it)."""
        row = next((r for r in self.sandbox.export_rows() if r["product id"] == str(external_id)), None)
        if row is None:
            return ListingSeen(external_id=str(external_id), sku="", state="ended")
        return mappers.listing_seen(row)

    def listing_count_by_sku(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.sandbox.export_rows():
            counts[row["external id"]] = counts.get(row["external id"], 0) + 1
        return counts

    def order_ids(self) -> list[str]:
        return [f"vr-{item.id}" for item in self.sandbox.items() if item.sold_by == "buyer"]

    # --- what the site was sent ---------------------------------------------------------------

    def writes(self, external_id: str | None = None) -> list[Write]:
        return [w for w in self.requests(external_id) if w.kind in ("create", "revise", "end", "delete")]

    def requests(self, external_id: str | None = None) -> list[Write]:
        kinds = {"add": "create", "edit": "revise", "mark_sold": "end", "delete": "delete", "form": "read"}
        found = []
        for request in self.sandbox.requests():
            kind = kinds.get(request.kind)
            if kind is None or (kind == "read" and not request.product_id):
                continue
            if external_id is None or request.product_id == str(external_id):
                found.append(Write(kind, request.product_id, self._contract_fields(request.fields), request.status))
        return found

    @staticmethod
    def _contract_fields(fields: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if name in _VR_FIELDS:
                out[_VR_FIELDS[name]] = Decimal(value) if name == mappers.FIELD_PRICE else value
        return out

    @property
    def calls(self) -> int:
        return len(self.sandbox.requests())

    def reset_log(self) -> None:
        self.sandbox.reset_log()

    # --- faults ---------------------------------------------------------------------------------

    def set_faults(self, **switches: Any) -> None:
        self.sandbox.set_switches(**switches)

    def go_down(self) -> None:
        self.sandbox.set_switches(fail_requests=10**6)
