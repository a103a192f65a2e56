"""The channel contract: what inventory knows of a marketplace, and nothing more.

Each channel app has a `sync` module that provides the functions below and is named in
settings.CHANNELS ({"reverb": "channels_reverb.sync", ...}). Inventory never imports a
channel app by name; it goes through `channel(name)`.

A channel's sync module provides:

    NAME: str                      "reverb"
    LABEL: str                     "Reverb"
    CONNECTION_MODEL: str          "channels_reverb.ReverbConnection" (a ChannelConnection subclass)
    publish(connection, payload: ListingPayload, external_id: str | None) -> PublishResult
        Create the listing, or adopt the one that already has this SKU (look it up first,
        never create a duplicate). Idempotent: safe to call again after a timeout.
    revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None
        Push the changed fields only (names from ListingPayload).
    end(connection, external_id: str, reason: str) -> EndResult
        Take it off sale; reason is END_SOLD_ELSEWHERE or END_WITHDRAWN. Read it back and
        say whether the end is confirmed. Ending an ended or sold listing is a success.
    read_listing(connection, external_id: str) -> ListingSeen | None
        The listing as the channel has it now (None when it does not exist).
    read_all_listings(connection) -> Iterable[ListingSeen]
        Every listing of the seller on the channel, by page reads only (for the reconcile
        and the import of listings made elsewhere).
    pull(connection, since: datetime | None) -> PullResult
        What changed since the watermark: orders, listing states and listings the system may
        not know. Reads only (page reads); one page when nothing changed.
    parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen
        Check and identify a delivery (no business logic, no database writes).
    webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]
        Orders carried by a stored delivery (empty when the event is not about orders).

Sync functions receive the channel's own connection row (e.g. ReverbConnection) and plain
data, and return plain dataclasses: they never write inventory rows. Errors are raised as
the typed errors below, so the engine knows what to retry.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from types import ModuleType

from django.apps import apps
from django.conf import settings

END_SOLD_ELSEWHERE = "sold_elsewhere"
END_WITHDRAWN = "withdrawn"
END_SOLD_HERE = "sold_here"


# --- Errors ---------------------------------------------------------------------------


class ChannelError(Exception):
    """A channel call failed. `transient` errors are retried; the others need a person."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None, body: object = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class TransientChannelError(ChannelError):
    """Timeouts, connection errors, 5xx: try again later."""

    transient = True


class ListingBusy(TransientChannelError):
    """Another worker is converging this listing right now: try again in a moment."""


class RateLimited(TransientChannelError):
    """429: try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PermanentChannelError(ChannelError):
    """The channel refused the request (validation, auth, missing scope): retrying will not help."""


class ListingNotFound(PermanentChannelError):
    """The listing does not exist on the channel."""


# --- Data that crosses the boundary ---------------------------------------------------


@dataclass(frozen=True)
class ListingPayload:
    """What the product wants a listing to say. Field names are the ones `revise` receives."""

    sku: str
    title: str
    description: str
    price: Decimal
    currency: str
    quantity: int
    brand: str = ""
    model: str = ""
    year: str = ""
    finish: str = ""
    category: str = ""
    condition: str = ""
    serial_number: str = ""
    photos: tuple[str, ...] = ()
    video_url: str = ""
    seo_title: str = ""
    seo_description: str = ""
    seo_keywords: str = ""


@dataclass(frozen=True)
class PublishResult:
    external_id: str
    url: str = ""
    adopted: bool = False  # an existing listing with this SKU was taken over, not created


@dataclass(frozen=True)
class EndResult:
    confirmed: bool
    state: str  # the state read back: "ended", "sold", "live"...


@dataclass(frozen=True)
class ListingSeen:
    """A listing as the channel reports it. `state` is live / ended / sold / draft."""

    external_id: str
    sku: str
    state: str
    quantity: int | None = None
    title: str = ""
    description: str = ""
    price: Decimal | None = None
    currency: str = ""
    brand: str = ""
    model: str = ""
    year: str = ""
    finish: str = ""
    condition: str = ""
    photos: tuple[str, ...] = ()
    url: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True)
class OrderLineSeen:
    sku: str
    external_listing_id: str
    quantity: int
    unit_price: Decimal | None = None
    title: str = ""


@dataclass(frozen=True)
class OrderSeen:
    """An order as the channel reports it. `status` is normalised to pending / paid / cancelled."""

    external_id: str
    status: str
    placed_at: datetime
    updated_at: datetime | None
    lines: tuple[OrderLineSeen, ...]
    currency: str = "USD"
    subtotal: Decimal | None = None
    shipping: Decimal | None = None
    tax: Decimal | None = None
    total: Decimal | None = None
    buyer_name: str = ""
    buyer_email: str = ""
    ship_name: str = ""
    ship_line1: str = ""
    ship_line2: str = ""
    ship_city: str = ""
    ship_region: str = ""
    ship_postal_code: str = ""
    ship_country: str = ""


@dataclass
class PullResult:
    orders: list[OrderSeen] = field(default_factory=list)
    listings: list[ListingSeen] = field(default_factory=list)
    watermark: datetime | None = None  # the newest change seen; the next pull starts here
    pages_read: int = 0


@dataclass(frozen=True)
class WebhookSeen:
    """A delivery, identified. `dedupe_key` is the same for every redelivery of one event."""

    topic: str
    dedupe_key: str
    payload: Mapping


ORDER_PENDING = "pending"
ORDER_PAID = "paid"
ORDER_CANCELLED = "cancelled"


# --- Registry -------------------------------------------------------------------------


@cache
def channel(name: str) -> ModuleType:
    """The sync module of a configured channel."""
    try:
        module_path = settings.CHANNELS[name]
    except KeyError:
        raise LookupError(f"No channel named {name!r}; configured: {', '.join(settings.CHANNELS)}.") from None
    return importlib.import_module(module_path)


def channel_names() -> list[str]:
    return list(settings.CHANNELS)


def channel_choices() -> list[tuple[str, str]]:
    return [(name, getattr(channel(name), "LABEL", name)) for name in settings.CHANNELS]


def specific_connection(connection):
    """The channel's own connection row (the subclass) for a ChannelConnection."""
    model = apps.get_model(channel(connection.channel).CONNECTION_MODEL)
    if isinstance(connection, model):
        return connection
    return model.objects.select_related("account").get(pk=connection.pk)
