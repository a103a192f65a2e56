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
    pull(connection, since: datetime | None, *, full_scan: bool = False) -> PullResult
        What changed since the watermark: orders, listing states and listings the system may
        not know. Reads only (page reads); one page when nothing changed. `full_scan` (a pull
        staff asked for) also reads every listing now, whatever the channel's scan interval.
    parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen
        Check and identify a delivery (no business logic, no database writes).
    webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]
        Orders carried by a stored delivery (empty when the event is not about orders).

    find_listing(connection, sku: str) -> ListingSeen | None
        Our listing with this SKU on the channel (any state), the one publish would adopt.
    check(connection) -> ConnectionCheck
        Reads only: does the connection work, step by step in plain words (token, shop,
        location, policies...), and what to fix where it does not.

Optional parts (the engine looks them up with getattr):

    DEFAULT_PRIORITY: int          platform order on ties: Shopify 10, Reverb 20, V&R 30, eBay 40,
                                   Etsy 50, WooCommerce 60, Amazon 70 (editable per connection)
    EDITS_SEEN: frozenset[str]     the fields (of price, quantity, title, description) whose value read back
                                   is the payload's as pushed, so a difference is an edit made on the channel
                                   (inventory.services.edits). Default: all four. Leave out a field the
                                   channel rewrites (Etsy's cleaned title) or does not own (Amazon's catalogue
                                   title), or every pull would see it edited.
    CONNECTION_SERIALIZER: str     dotted path of a DRF serializer for the channel's connection
                                   model, a subclass of inventory.api.connections.ConnectionSerializer
                                   (secrets listed in Meta.secret_fields: write-only, hinted back)
    WEBHOOK_SETUP: str             where staff paste the webhook URL when it cannot be registered by API
    register_webhooks(connection, base_url: str) -> list[str]
        Register (or update) the channel's webhook subscriptions to base_url + connection.webhook_path;
        idempotent; returns one plain line per subscription.
    ship_order(connection, external_id: str, carrier: str, tracking_number: str) -> None
        Tell the channel an order shipped (Reverb's ship endpoint, eBay's fulfillment...). Called
        by a task after staff mark the order shipped (inventory.services.orders.order_ship).
        Absent: the shipment is recorded here only, and staff enter tracking on the channel.
    listing_scan_done(connection, *, seconds: float, listings: int) -> None
        A pull read every listing (`listings_complete`) and the engine compared them: what it cost
        (wall seconds of the pull, listings read), for a channel that schedules its full scans by
        it (Reverb's adaptive scan interval).
    webhook_challenge(connection, query: Mapping[str, str], url: str) -> WebhookReply
        Answer a GET on the webhook URL (eBay's endpoint challenge). Absent: GET is 405.
    revise_many(connection, revisions: Sequence[Revision]) -> list[ReviseOutcome]
    REVISE_MANY_FIELDS: frozenset[str]   the fields revise_many can change (eBay: price, quantity)
    REVISE_MANY_LIMIT: int               at most this many revisions a call (eBay: 25)
        Revise several listings of one connection in one call (eBay's bulkUpdatePriceQuantity),
        each changing only fields in REVISE_MANY_FIELDS. One outcome per revision, in order; an
        outcome's error is the typed error of that listing alone (the others still applied).
        The engine then gathers a connection's listings waiting on such changes into one call
        (inventory.services.batching) instead of one call, or two, per listing.
    seo_fields(payload: ListingPayload) -> tuple[SeoField, ...]
        The texts the channel would send for the item's title and SEO fields, by its own rules
        (limits, cuts at a word), and what each rule cuts off: pure, no call. The same rules
        the channel's mapper applies when it publishes and revises, so the item page's preview
        and the bulk SEO dry run show what would really be sent. Absent: the preview says the
        channel states no rules.
    WEBHOOK_CONTENT_TYPES: frozenset[str]  content types a delivery may have (default: application/json
                                   only; others are refused with 415 before parsing)
    WEBHOOK_ACCEPTED_TOPICS: frozenset[str]  the topics parse_webhook may identify; a delivery of any other topic
                                   is refused (400) and not stored. Absent: parse_webhook decides.

parse_webhook raises WebhookRejected(http_status=401 / 412...) for a delivery that must not be
stored (a bad or missing signature), and may return a WebhookReply instead of a WebhookSeen for a
delivery that is answered but carries nothing to store (WooCommerce's ping).

Transient failures inside one operation: wrap each step of a multi-step publish in
`retry_transient(step, ...)` (a few quick tries, a warning line each, no traceback), and make the
steps resumable (look up what an earlier attempt already created), so one blip neither restarts
the whole publish nor creates anything twice.

Identity: a listing is (connection, external id) *and* our SKU. read_listing returns what the
channel has under that id (None when it does not exist); the engine compares the SKU, never the
channel module.

Sync functions receive the channel's own connection row (e.g. ReverbConnection) and plain
data, and return plain dataclasses: they never write inventory rows. Errors are raised as
the typed errors below, so the engine knows what to retry.
"""

from __future__ import annotations

import importlib
import re
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


class StillProcessing(TransientChannelError):
    """The channel took the write and is still working on it (Amazon's feeds): look again
    shortly. Not a sign the channel is failing, so it never counts against its circuit."""


class RateLimited(TransientChannelError):
    """429: try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PermanentChannelError(ChannelError):
    """The channel refused the request (validation, auth, missing scope): retrying will not help."""


class ListingNotFound(PermanentChannelError):
    """The listing does not exist on the channel."""


class WebhookRejected(ChannelError):
    """A delivery that must not be stored (bad or missing signature, unknown key): answered `http_status`."""

    def __init__(self, message: str, *, http_status: int = 401, **kwargs):
        super().__init__(message, **kwargs)
        self.http_status = http_status


def retry_transient(step, *args, attempts: int = 3, delay: float = 0.2, max_wait: float = 2.0, **kwargs):
    """Run one step of a channel operation, retrying a transient failure a few times at once.

    For multi-call operations (publish = create item, create offer, publish offer): a blip on
    one call is retried here, briefly, instead of failing the whole attempt and waiting for the
    engine's backoff. A rate limit asking for longer than `max_wait`, and the last failure, are
    raised for the engine to schedule. Each retry logs one warning line, never a traceback.
    """
    import logging
    import time

    log = logging.getLogger("inventory.channels")
    for attempt in range(1, attempts + 1):
        try:
            return step(*args, **kwargs)
        except ListingBusy:
            raise
        except TransientChannelError as error:
            wait = delay * (2 ** (attempt - 1))
            if isinstance(error, RateLimited) and error.retry_after:
                wait = max(wait, error.retry_after)
            if attempt == attempts or wait > max_wait:
                raise
            log.warning(
                "%s failed (%s), retrying in %.2f s (try %d of %d)",
                getattr(step, "__name__", "step"),
                error,
                wait,
                attempt + 1,
                attempts,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")


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
class Revision:
    """One listing's change for `revise_many`: what `revise` would receive."""

    external_id: str
    payload: ListingPayload
    fields: frozenset[str]


@dataclass(frozen=True)
class ReviseOutcome:
    external_id: str
    error: ChannelError | None = None  # None: the channel applied it

    @property
    def ok(self) -> bool:
        return self.error is None


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
    # True when `listings` is every listing of the seller on the channel (a full scan): the
    # engine then marks our live listings that are not among them as missing.
    listings_complete: bool = False


@dataclass(frozen=True)
class WebhookSeen:
    """A delivery, identified. `dedupe_key` is the same for every redelivery of one event."""

    topic: str
    dedupe_key: str
    payload: Mapping


@dataclass(frozen=True)
class WebhookReply:
    """An answer to a delivery or a GET that stores nothing (a ping, an endpoint challenge)."""

    status: int = 200
    body: Mapping | bytes = b""


@dataclass(frozen=True)
class CheckStep:
    """One thing a connection check tried: what, whether it works, and in plain words what to fix."""

    label: str
    ok: bool
    message: str


@dataclass(frozen=True)
class ConnectionCheck:
    steps: tuple[CheckStep, ...]

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def summary(self) -> str:
        failed = [step for step in self.steps if not step.ok]
        if not failed:
            return "Everything works: " + "; ".join(step.message for step in self.steps)
        return "To fix: " + "; ".join(f"{step.label}: {step.message}" for step in failed)


@dataclass(frozen=True)
class SeoField:
    """One text (or list of tags) a channel would send for the item's title and SEO fields.

    `wanted` is what the item asks for before the channel's rules; `sent` what would go out
    ("" and `sent_to_channel=False` when the channel has no place for it, `note` says why);
    `cut` is the text a length limit removed, `dropped` the tags left out. `limit` counts
    characters (or tags for a list; `item_limit` then bounds each tag); None: no published limit.
    """

    name: str  # the channel's own name for it: "title", "seo.title", "tags"
    label: str  # in staff's words: "Title", "SEO title", "Tags"
    source: str  # which of our fields feed it: "seo_title or title"
    wanted: str
    sent: str
    limit: int | None = None
    cut: str = ""
    dropped: tuple[str, ...] = ()
    tags: tuple[str, ...] | None = None  # set for a list of tags; `sent` is then them joined
    item_limit: int | None = None
    sent_to_channel: bool = True
    note: str = ""

    @property
    def length(self) -> int:
        return len(self.tags) if self.tags is not None else len(self.sent)

    @property
    def over_limit(self) -> bool:
        return bool(self.cut or self.dropped)


def squash(text: str) -> str:
    """Whitespace runs as one space, trimmed: how every channel shows a one-line text."""
    return " ".join((text or "").split())


def cut_at_word(text: str, limit: int) -> tuple[str, str]:
    """(kept, cut): `text` squashed to one line and cut to at most `limit` characters at a word.

    The cut goes back to the last space when the limit falls inside a word, unless that would
    lose more than half of the room (one very long word is cut hard); trailing punctuation that
    would dangle (",", ":", "-", "(", "&") goes too. kept + cut is the whole text, give or take
    the space between them. Characters are code points, as the channels count them.
    """
    text = squash(text)
    if len(text) <= limit:
        return text, ""
    kept = text[:limit]
    if text[limit].isalnum() and kept[-1].isalnum():  # the limit falls inside a word
        space = kept.rfind(" ")
        if space > limit // 2:
            kept = kept[:space]
    kept = kept.rstrip(" ,;:-/(&").rstrip()
    return kept, text[len(kept) :].strip()


def tag_list(text: str) -> list[str]:
    """Keywords as staff type them ("a, b; c" or one per line) as a list, duplicates (any case) once."""
    found: list[str] = []
    seen: set[str] = set()
    for raw in re.split(r"[,;\n]", text or ""):
        tag = squash(raw)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            found.append(tag)
    return found


def not_sent(name: str, label: str, source: str, wanted: str, why: str) -> SeoField:
    """A text the channel has no place for: shown in the preview, never sent."""
    return SeoField(name, label, source, wanted=wanted, sent="", sent_to_channel=False, note=why)


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


_channel_of_connection: dict[int, str] = {}


def channel_name_of(connection_id: int) -> str:
    """The channel of a connection, asked once per process (a connection's channel never changes)."""
    name = _channel_of_connection.get(connection_id)
    if name is None:
        from .models import ChannelConnection

        name = ChannelConnection.objects.filter(pk=connection_id).values_list("channel", flat=True).get()
        _channel_of_connection[connection_id] = name
    return name


def specific_connection_model(name: str):
    """The model of a channel's own connection rows (a subclass of ChannelConnection)."""
    return apps.get_model(channel(name).CONNECTION_MODEL)


def specific_connection(connection):
    """The channel's own connection row (the subclass) for a ChannelConnection."""
    model = specific_connection_model(connection.channel)
    if isinstance(connection, model):
        return connection
    return model.objects.select_related("account").get(pk=connection.pk)
