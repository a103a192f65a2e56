"""The end-to-end harness of the sync engine: a real Celery worker, a real web server for the
webhooks, and loopback marketplaces.

Holds no tests; tests/test_sync_e2e.py and tests/test_sync_faults.py import from it. Only
`LoopbackMarket` knows which marketplace it drives (the loopback Reverb): it builds the
connection and translates what the marketplace holds and was sent into the channel
contract's words (ListingSeen; contract field names such as title, price, quantity). The
tests themselves never look at Reverb's wire format, so another channel plugs in by giving
its own market class the same methods.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from billing.services import plan_assign
from billing.services.plans import plan_get, plans_ensure
from channels_reverb import mappers
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from config.celery import app
from inventory.channels import ListingSeen
from inventory.models import ChannelConnection, ChannelListing

# What the loopback Reverb was sent, back in the contract's field names.
_REVERB_FIELDS = {
    "title": "title",
    "description": "description",
    "price": "price",
    "make": "brand",
    "model": "model",
    "year": "year",
    "finish": "finish",
    "sku": "sku",
    "photos": "photos",
    "videos": "video_url",
    "categories": "category",
    "condition": "condition",
    "inventory": "quantity",
}


@dataclass(frozen=True)
class Write:
    """One write a marketplace received: create, revise, end or delete, with the contract fields it set."""

    kind: str
    external_id: str
    fields: dict[str, Any]
    status: int


class LoopbackMarket:
    """One marketplace for the end-to-end tests: its loopback server and this shop's connection to it.

    Usage: `with LoopbackMarket(account, "Shop 1", webhook_base=live_server.url) as market:`.
    Faults (error_rate, rate_limit_rate, timeout_rate, timeout_delay, retry_after, seed) are the
    loopback's own; `timeout` is how long the connection waits for an answer.
    """

    channel = "reverb"

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
        self.sandbox = ReverbSandbox(seed=seed, **faults)
        self.connection: ChannelConnection | None = None

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> LoopbackMarket:
        self.sandbox.start()
        self.connection = ReverbConnection.objects.create(
            account=self.account,
            name=self.name,
            priority=self.priority,
            api_token=DEFAULT_TOKEN,
            base_url=self.sandbox.base_url,
            timeout_seconds=self.timeout,
            listing_scan_interval_seconds=0,  # every pull also reads the listings (new ones made there)
        )
        if self.webhook_base:
            self.sandbox.register_webhook(self.webhook_url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sandbox.stop()

    @property
    def webhook_url(self) -> str:
        return self.webhook_base.rstrip("/") + self.connection.webhook_path

    # --- the buyer's and the seller's side on the marketplace -----------------------

    def sell(self, sku: str, quantity: int = 1, *, webhook: bool = True) -> str:
        """A buyer checks out on the marketplace (the order webhook goes out before this returns). Returns
        the marketplace's order id."""
        return str(self.sandbox.simulate_sale(sku, quantity=quantity, deliver_webhook=webhook)["order_number"])

    def order_delivery(self, order_id: str) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of the webhook this marketplace delivers for an order, as it would send it."""
        [order] = [o for o in self.sandbox.orders() if str(o["order_number"]) == order_id]
        return self.webhook_url, json.dumps(order).encode(), {"Content-Type": "application/json"}

    def list_directly(self, sku: str, *, title: str, price: str, quantity: int = 1) -> ListingSeen:
        """The seller lists something on the marketplace itself, not through the back office."""
        condition = "brand_new" if quantity > 1 else "excellent"
        raw = self.sandbox.add_external_listing(sku, title=title, price=price, quantity=quantity, condition=condition)
        return mappers.listing_seen(raw)

    # --- what the marketplace holds ---------------------------------------------------

    def offered(self, sku: str) -> list[ListingSeen]:
        """Every listing the marketplace holds with this SKU, in any state."""
        return [mappers.listing_seen(raw) for raw in self.sandbox.listings(sku=sku)]

    def seen(self, external_id: str) -> ListingSeen | None:
        raw = self.sandbox.listing(external_id)
        return None if raw is None else mappers.listing_seen(raw)

    def listing_count_by_sku(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for raw in self.sandbox.listings():
            counts[raw["sku"]] = counts.get(raw["sku"], 0) + 1
        return counts

    def order_ids(self) -> list[str]:
        return [str(order["order_number"]) for order in self.sandbox.orders()]

    # --- what the marketplace was sent ------------------------------------------------

    def writes(self, external_id: str | None = None) -> list[Write]:
        """Writes received (answered or not), oldest first, optionally for one listing."""
        return [w for w in self.requests(external_id) if w.kind in ("create", "revise", "end", "delete")]

    def requests(self, external_id: str | None = None) -> list[Write]:
        """Calls about listings (writes, and "read" for a listing read back by id), oldest first."""
        found = []
        for request in self.sandbox.requests():
            parts = request.path.strip("/").split("/")
            if request.method == "POST" and parts == ["listings"]:
                kind, listing_id = "create", ""
            elif parts[:2] == ["my", "listings"] and parts[-1] == "end":
                kind, listing_id = "end", parts[2]
            elif parts[0] == "listings" and len(parts) == 2:
                kind = {"PUT": "revise", "DELETE": "delete", "GET": "read"}.get(request.method, request.method)
                listing_id = parts[1]
            else:
                continue  # lookups by SKU, pages, orders
            if external_id is None or listing_id == str(external_id):
                found.append(Write(kind, listing_id, self._contract_fields(request.body), request.status))
        return found

    @staticmethod
    def _contract_fields(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            return {}
        fields: dict[str, Any] = {}
        for name, value in body.items():
            if name not in _REVERB_FIELDS:
                continue  # the channel's own switches (publish, has_inventory, upc_does_not_apply...)
            if name == "price":
                value = Decimal(value["amount"])
            fields[_REVERB_FIELDS[name]] = value
        return fields

    @property
    def calls(self) -> int:
        return self.sandbox.calls()

    def reset_log(self) -> None:
        self.sandbox.reset_log()

    # --- faults -------------------------------------------------------------------------

    def set_faults(self, **faults: Any) -> None:
        self.sandbox.set_faults(**faults)

    def go_down(self) -> None:
        """Every API call answers 500 from now on."""
        self.sandbox.set_faults(error_rate=1.0, rate_limit_rate=0.0, timeout_rate=0.0)


# --- the stack ----------------------------------------------------------------------------


def shop_on_business_plan(account) -> None:
    """The shops of these tests list and import without meeting a plan limit."""
    plans_ensure()  # a transactional test before this one may have flushed the migration's rows
    plan_assign(account=account, plan=plan_get("business"), source="test")


@contextmanager
def real_worker(concurrency: int = 4) -> Iterator[None]:
    """A Celery worker in this process (threads pool) consuming the app's queues over Redis."""
    assert app.conf.broker_url == settings.REDIS_URL and not app.conf.task_always_eager
    app.control.purge()  # nothing left over from an earlier test may reach this worker
    with start_worker(
        app,
        pool="threads",
        concurrency=concurrency,
        queues=list(settings.CELERY_WORKER_QUEUES),
        perform_ping_check=False,
        shutdown_timeout=60,
        loglevel="WARNING",
    ):
        yield
    app.control.purge()
    _end_worker_sessions()


def _end_worker_sessions() -> None:
    """The worker's threads are gone but their database sessions (kept for reuse, as in production)
    are not: end them, or the test database cannot be flushed or dropped."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def wait_until(condition: Callable[[], Any], *, timeout: float = 30.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


def all_converged(listings: Iterable[ChannelListing] | None = None) -> bool:
    """Every listing (or the given ones) has what the shop wants, and no worker is on it."""
    rows = (
        ChannelListing.objects.all()
        if listings is None
        else ChannelListing.objects.filter(pk__in=[listing.pk for listing in listings])
    )
    return all(listing.converged and listing.lease_until is None for listing in rows)


def lagging(listings: Iterable[ChannelListing] | None = None) -> list[str]:
    """What is not converged yet, for assertion messages."""
    rows = (
        ChannelListing.objects.all()
        if listings is None
        else ChannelListing.objects.filter(pk__in=[listing.pk for listing in listings])
    )
    return [
        f"{row.item.sku}@{row.connection.name}: wants {row.desired_state}, is {row.actual_state}"
        f"{' (needs push)' if row.needs_push else ''}, attempts {row.attempts}, error {row.last_error[:80]!r}"
        for row in rows.select_related("item", "connection")
        if not row.converged or row.lease_until is not None
    ]
