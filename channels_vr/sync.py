"""Vintage & Rare's side of the channel contract (see inventory/channels.py), through a real browser.

These functions receive a VRConnection and plain data, drive the dealer site through
VRBrowser, and return the contract's dataclasses. They never write inventory rows; they
keep this app's own records: VRListingDetail (what the export last said, when a sale was
first seen) and VRStepFailure (a failed step's screenshot and page, for staff).

V&R has no ids in its answers, no change dates and no webhooks. So: the inventory CSV
export is the only read (one download per operation, always fresh: a publish and every
retry of it first look the SKU up there, so an item is never created twice), a sale is an
item the export shows sold that this system did not mark sold itself, and its time is the
pull that first saw it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from inventory.channels import (
    END_SOLD_HERE,
    END_WITHDRAWN,
    ChannelError,
    CheckStep,
    ConnectionCheck,
    EndResult,
    ListingBusy,
    ListingPayload,
    ListingSeen,
    OrderSeen,
    PermanentChannelError,
    PublishResult,
    PullResult,
    TransientChannelError,
    WebhookRejected,
    WebhookSeen,
    retry_transient,
)

from . import mappers
from .client import Photo, VRBrowser, download_photo, session_for
from .mappers import seo_fields  # noqa: F401  (the contract's preview of the SEO texts)
from .models import DEFAULT_PRIORITY as _DEFAULT_PRIORITY
from .models import VRConnection, VRListingDetail, VRStepFailure

logger = logging.getLogger(__name__)

NAME = "vr"
LABEL = "Vintage & Rare"
CONNECTION_MODEL = "channels_vr.VRConnection"
CONNECTION_SERIALIZER = "channels_vr.serializers.VRConnectionSerializer"
DEFAULT_PRIORITY = _DEFAULT_PRIORITY
EDITS_SEEN = frozenset({"price", "quantity", "description"})  # V&R has no title of its own
WEBHOOK_SETUP = "Vintage & Rare sends no webhooks: sales are read from the inventory export on every pull."

# Sales are reported again for this long after they were first seen, so a pull whose
# recording failed (the watermark did not move) reports them again; the engine dedupes.
ORDER_OVERLAP = timedelta(minutes=2)
# How long one operation may wait for the connection's browser held by another worker.
LOCK_WAIT_SECONDS = 20.0
LOCK_TTL_SECONDS = 240


# --- connection and browser --------------------------------------------------------------


def vr_connection(connection) -> VRConnection:
    if isinstance(connection, VRConnection):
        return connection
    return VRConnection.objects.select_related("account").get(pk=connection.pk)


def browser_for(connection: VRConnection) -> VRBrowser:
    """This process's browser for the connection's dealer login (one per login, reused)."""
    secret = hashlib.sha256(connection.password.encode()).hexdigest()[:16]
    key = ((connection.base_url.rstrip("/"), connection.username), secret, connection.step_timeout_seconds)
    media_url = settings.MEDIA_URL if settings.MEDIA_URL.startswith(("/", "http")) else "/" + settings.MEDIA_URL
    return session_for(
        key,
        lambda: VRBrowser(
            connection.base_url,
            connection.username,
            connection.password,
            step_timeout=connection.step_timeout_seconds,
            artifact_root=settings.MEDIA_ROOT,
            artifact_dir=f"vr-failures/{connection.account_id}",
            artifact_url=media_url,
        ),
    )


@contextlib.contextmanager
def _session(connection: VRConnection, *, sku: str = "", product_id: str = "") -> Iterator[VRBrowser]:
    """The connection's browser, held by this operation alone (across worker processes too), with
    every failed step's screenshot and page kept as a VRStepFailure row."""
    key = f"channels_vr:browser-lock:{connection.username}@{connection.base_url}"
    token = uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not cache.add(key, token, timeout=LOCK_TTL_SECONDS):
        if time.monotonic() > deadline:
            raise ListingBusy("another worker is using this V&R connection's browser")
        time.sleep(0.1)  # waiting for a lock, not for a page
    try:
        yield browser_for(connection)
    except ChannelError as error:
        _record_failure(connection, error, sku=sku, product_id=product_id)
        raise
    finally:
        if cache.get(key) == token:
            cache.delete(key)


def _record_failure(connection: VRConnection, error: ChannelError, *, sku: str, product_id: str) -> None:
    artifacts = getattr(error, "artifacts", None)
    if artifacts is None:
        return
    listing_id = None
    if sku or product_id:
        from inventory.models import ChannelListing  # read only: which listing staff will look at

        found = ChannelListing.objects.filter(connection_id=connection.pk)
        found = found.filter(external_id=str(product_id)) if product_id else found.filter(item__sku=sku)
        listing_id = found.values_list("pk", flat=True).first()
    VRStepFailure.objects.create(
        account_id=connection.account_id,
        connection=connection,
        listing_id=listing_id,
        sku=sku[:100],
        product_id=str(product_id)[:40],
        step=artifacts.step[:100],
        message=error.message,
        page_url=artifacts.page_url[:500],
        screenshot=artifacts.screenshot,
        page_html=artifacts.page_html,
    )


# --- publish / revise / end / read -----------------------------------------------------


def publish(connection, payload: ListingPayload, external_id: str | None) -> PublishResult:
    """Adopt the item V&R already has with this SKU, else fill the add-item form, then find its id.

    The export is read first (and a publish retried after a lost answer reads it again):
    an item carrying our SKU is adopted, never created twice. The brand is checked with V&R
    before the form is filled: an unknown brand is a clear error, never a guess. The form's
    answer carries no id; the fresh export after the submit gives it.
    """
    connection = vr_connection(connection)
    problems = mappers.listing_problems(payload)
    if problems:
        raise PermanentChannelError("V&R cannot list this item: " + "; ".join(problems) + ".")
    brand = vr_brand(connection, payload.brand)
    levels = category_levels(connection, payload.category)
    if not levels:
        raise PermanentChannelError(
            f'No V&R category is mapped for "{payload.category or "(no category)"}": add it under the Vintage & Rare '
            "connection's category mappings, then retry.",
        )
    with _session(connection, sku=payload.sku, product_id=external_id or "") as browser:
        rows = retry_transient(browser.export)
        existing = _row_to_adopt(rows, payload.sku, external_id)
        if existing is not None:
            _remember(connection, [existing])
            return PublishResult(external_id=existing["product id"], adopted=existing["product id"] != external_id)

        brand_id = retry_transient(browser.check_brand, brand)
        if brand_id in ("", "0"):
            raise PermanentChannelError(
                f'V&R does not know the brand "{brand}". Map our brand "{payload.brand}" to one V&R lists '
                "(Vintage & Rare connection, brand mappings), then retry.",
                body={"field": "brand"},
            )
        photos = [retry_transient(download_photo, url) for url in payload.photos[: mappers.MAX_PHOTOS]]
        form = mappers.item_form(
            payload,
            brand=brand,
            category_levels=levels,
            processing_time=connection.processing_time,
            processing_unit=connection.processing_unit,
            available_for_shipment=connection.available_for_shipment,
        )
        try:
            browser.add_item(form, photos)
        except TransientChannelError:
            # The answer was lost or failed: the item may be stored all the same. Look before anyone retries.
            created = _find_after_submit(browser, payload.sku)
            if created is None:
                raise
            logger.info("V&R stored %s although its answer failed: adopted %s", payload.sku, created["product id"])
        else:
            created = _find_after_submit(browser, payload.sku)
        if created is None:
            raise TransientChannelError(
                f"V&R answered that the item was saved, but its export does not list {payload.sku} yet"
            )
        _remember(connection, [created])
        return PublishResult(external_id=created["product id"])


def revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None:
    """Open the edit form, replace only the changed values, and post the whole form back.

    An edit replaces every field on V&R, so the browser posts the form as V&R filled it, with
    only the changed fields set anew. Nothing is sent when no V&R field changed.
    """
    connection = vr_connection(connection)
    brand = vr_brand(connection, payload.brand) if "brand" in fields else ""
    levels = category_levels(connection, payload.category) if "category" in fields else ()
    changes = mappers.revise_form(payload, fields, brand=brand, category_levels=levels)
    photos_changed = "photos" in fields and bool(payload.photos)
    if not changes and not photos_changed:
        return
    with _session(connection, sku=payload.sku, product_id=external_id) as browser:
        if "brand" in fields and retry_transient(browser.check_brand, brand) in ("", "0"):
            raise PermanentChannelError(
                f'V&R does not know the brand "{brand}". Map our brand "{payload.brand}" to one V&R lists, then retry.',
                body={"field": "brand"},
            )
        photos: list[Photo] | None = None
        if photos_changed:
            photos = [retry_transient(download_photo, url) for url in payload.photos[: mappers.MAX_PHOTOS]]
        retry_transient(browser.edit_item, external_id, changes, photos)


def end(connection, external_id: str, reason: str) -> EndResult:
    """Mark the item sold (sold elsewhere) or delete it (withdrawn), then confirm it in the export.

    The item is noted as ended here before V&R is asked, so a pull running next never
    mistakes our own "sold" for a sale on V&R. An item already sold or gone is a success.
    """
    connection = vr_connection(connection)
    with _session(connection, product_id=external_id) as browser:
        rows = retry_transient(browser.export)
        row = _by_id(rows, external_id)
        if row is None:
            _mark_detail(connection, external_id, state="deleted", ended_here=None)
            return EndResult(confirmed=True, state="ended")
        if mappers.is_sold(row):
            _remember(connection, [row])
            return EndResult(confirmed=True, state="sold")
        if reason == END_SOLD_HERE:
            return EndResult(confirmed=False, state="live")  # V&R shows it for sale: nothing to do but wait
        _mark_detail(connection, external_id, state="ending", ended_here=True, row=row)
        marked = True
        if reason == END_WITHDRAWN:
            retry_transient(browser.delete_item, external_id)
        else:
            marked = retry_transient(browser.mark_sold, external_id)
        after = _by_id(retry_transient(browser.export), external_id)
    if after is None:
        _mark_detail(connection, external_id, state="deleted", ended_here=True)
        return EndResult(confirmed=True, state="ended")
    if not marked and mappers.is_sold(after):
        # V&R refused our "sold" because a buyer had just bought it there: that is a sale on V&R.
        _mark_detail(connection, external_id, state="ending", ended_here=False)
    _remember(connection, [after])
    if mappers.is_sold(after):
        return EndResult(confirmed=True, state="sold" if reason != END_WITHDRAWN else "ended")
    _mark_detail(connection, external_id, state="live", ended_here=False)
    return EndResult(confirmed=False, state="live")


def read_listing(connection, external_id: str) -> ListingSeen | None:
    connection = vr_connection(connection)
    with _session(connection, product_id=external_id) as browser:
        row = _by_id(retry_transient(browser.export), external_id)
    return None if row is None else mappers.listing_seen(row, currency=_currency(connection))


def find_listing(connection, sku: str) -> ListingSeen | None:
    """The V&R item with this SKU (for sale first, then sold), the one publish would adopt."""
    connection = vr_connection(connection)
    with _session(connection, sku=sku) as browser:
        rows = retry_transient(browser.export)
    matching = [row for row in rows if _same_sku(row, sku)]
    if not matching:
        return None
    best = min(matching, key=lambda row: (mappers.is_sold(row), -_numeric(row["product id"])))
    return mappers.listing_seen(best, currency=_currency(connection))


def read_all_listings(connection) -> Iterator[ListingSeen]:
    connection = vr_connection(connection)
    with _session(connection) as browser:
        rows = retry_transient(browser.export)
    currency = _currency(connection)
    for row in rows:
        yield mappers.listing_seen(row, currency=currency)


# --- pull ----------------------------------------------------------------------------------


def pull(connection, since: datetime | None, *, full_scan: bool = False) -> PullResult:
    """Download the export (one request) and say what it shows.

    Sales: an item V&R now shows sold that this system did not mark sold itself becomes an
    order timed when a pull first saw it sold. Items already sold at the very first pull are
    history, not sales. Listings: every row, and the list is complete (`listings_complete`),
    so the engine imports the ones it does not know, records the sold ones, and marks ours
    that left the export (deleted on V&R) as missing. The watermark is the time of this pull.
    `full_scan` changes nothing: every pull reads everything V&R offers, in one download.
    """
    connection = vr_connection(connection)
    now = timezone.now()
    with _session(connection) as browser:
        rows = retry_transient(browser.export)
    currency = _currency(connection)
    result = PullResult(watermark=now, pages_read=1, listings_complete=True)
    # Every sale stamped since the watermark (with an overlap); at the first pull, every one stamped so far
    # (an end may have found one sold before any pull ran).
    report_from = (since - ORDER_OVERLAP) if since else None
    known = {d.product_id: d for d in VRListingDetail.objects.filter(connection=connection)}
    in_export = {row["product id"] for row in rows}
    vanished = [d for d in known.values() if d.product_id not in in_export and d.state == "live" and not d.ended_here]
    with transaction.atomic():
        _remember(connection, rows, first_pull=since is None, now=now)
        if vanished:
            VRListingDetail.objects.filter(pk__in=[d.pk for d in vanished]).update(state="deleted", last_seen_at=now)
    stamps = dict(
        VRListingDetail.objects.filter(connection=connection, ended_here=False, sold_seen_at__isnull=False).values_list(
            "product_id", "sold_seen_at"
        )
    )
    for row in rows:
        seen_at = stamps.get(row["product id"])
        if mappers.is_sold(row) and seen_at is not None and (report_from is None or seen_at >= report_from):
            result.orders.append(mappers.sale_seen(row, seen_at=seen_at, currency=currency))
    result.listings = [mappers.listing_seen(row, currency=currency) for row in rows]
    return result


# --- the connection check -----------------------------------------------------------------


def check(connection) -> ConnectionCheck:
    """Log in and read the export, in plain words. Reads only."""
    connection = vr_connection(connection)
    steps: list[CheckStep] = []
    try:
        with _session(connection) as browser:
            try:
                browser.login()
            except ChannelError as error:
                steps.append(CheckStep("Login", False, error.message))
                return ConnectionCheck(tuple(steps))
            steps.append(CheckStep("Login", True, f"Logged in to {connection.base_url} as {connection.username}."))
            try:
                rows = browser.export()
            except ChannelError as error:
                steps.append(CheckStep("Inventory export", False, error.message))
                return ConnectionCheck(tuple(steps))
    except ListingBusy as busy:
        steps.append(CheckStep("Browser", False, f"{busy.message}; try the check again in a minute."))
        return ConnectionCheck(tuple(steps))
    for_sale = sum(1 for row in rows if not mappers.is_sold(row))
    steps.append(CheckStep("Inventory export", True, f"The export lists {len(rows)} items ({for_sale} for sale)."))
    return ConnectionCheck(tuple(steps))


# --- webhooks: V&R has none -------------------------------------------------------------------


def parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen:
    raise WebhookRejected("Vintage & Rare sends no webhooks; nothing is stored.", http_status=404)


def webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]:
    return []


# --- mappings ---------------------------------------------------------------------------------


def vr_brand(connection: VRConnection, brand: str) -> str:
    """The brand name V&R knows for ours (the connection's brand mapping, else ours as is)."""
    mapped = connection.brand_mappings.filter(brand__iexact=brand.strip()).values_list("vr_brand", flat=True).first()
    return (mapped or brand).strip()


def category_levels(connection: VRConnection, category: str) -> tuple[str, ...]:
    mapping = connection.category_mappings.filter(category__iexact=(category or "").strip()).first()
    return mapping.levels if mapping is not None else ()


# --- helpers ------------------------------------------------------------------------------------


def _currency(connection: VRConnection) -> str:
    return connection.currency or getattr(connection.account, "default_currency", "") or "USD"


def _same_sku(row: Mapping[str, str], sku: str) -> bool:
    return row.get("external id", "").strip().casefold() == sku.strip().casefold()


def _numeric(value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _by_id(rows, product_id: str) -> dict | None:
    return next((row for row in rows if row["product id"] == str(product_id)), None)


def _row_to_adopt(rows, sku: str, external_id: str | None) -> dict | None:
    """The item to take over: ours by id when it still carries our SKU, else the newest one for sale with it.

    A sold item is not adopted: V&R keeps it sold, and listing the item again means a new one.
    """
    candidates = [row for row in rows if _same_sku(row, sku) and not mappers.is_sold(row)]
    if not candidates:
        return None
    for row in candidates:
        if external_id and row["product id"] == str(external_id):
            return row
    return max(candidates, key=lambda row: _numeric(row["product id"]))


def _find_after_submit(browser: VRBrowser, sku: str) -> dict | None:
    try:
        rows = retry_transient(browser.export)
    except TransientChannelError:
        return None
    return _row_to_adopt(rows, sku, None)


def _detail_fields(row: Mapping[str, str], now: datetime) -> dict:
    return {
        "sku": row.get("external id", "")[:100],
        "state": "sold" if mappers.is_sold(row) else "live",
        "price": mappers.row_price(row),
        "last_seen": dict(row),
        "last_seen_at": now,
    }


def _remember(connection: VRConnection, rows, *, first_pull: bool = False, now: datetime | None = None) -> None:
    """Keep what the export said of each item (one upsert), and stamp sales on V&R when first seen.

    A sale on V&R is an item now shown sold that was known for sale and that this system did
    not mark sold (`ended_here`); it is stamped with the time it was first seen, whichever
    read saw it (a pull, or an end finding it sold already). An item unknown until now that
    is already sold is a sale too, except at the connection's first pull (history).
    """
    now = now or timezone.now()
    rows = list(rows)
    if not rows:
        return
    sold_ids = [row["product id"] for row in rows if mappers.is_sold(row)]
    before = {
        d.product_id: d
        for d in VRListingDetail.objects.filter(connection=connection, product_id__in=sold_ids).only(
            "product_id", "state", "ended_here", "sold_seen_at"
        )
    }
    new_sales = []
    for product_id in sold_ids:
        detail = before.get(product_id)
        if detail is None:
            if not first_pull:
                new_sales.append(product_id)
        elif not detail.ended_here and detail.sold_seen_at is None and detail.state != "sold":
            new_sales.append(product_id)
    details = [
        VRListingDetail(
            account_id=connection.account_id,
            connection=connection,
            product_id=row["product id"],
            **_detail_fields(row, now),
        )
        for row in rows
    ]
    VRListingDetail.objects.bulk_create(
        details,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["connection", "product_id"],
        update_fields=["sku", "state", "price", "last_seen", "last_seen_at"],
    )
    if new_sales:
        VRListingDetail.objects.filter(
            connection=connection, product_id__in=new_sales, sold_seen_at__isnull=True, ended_here=False
        ).update(sold_seen_at=now)


def _mark_detail(
    connection: VRConnection, product_id: str, *, state: str, ended_here: bool | None, row: Mapping | None = None
) -> None:
    fields: dict = {"state": state, "last_seen_at": timezone.now()}
    if ended_here is not None:
        fields["ended_here"] = ended_here
    updated = VRListingDetail.objects.filter(connection=connection, product_id=str(product_id)).update(**fields)
    if not updated and row is not None:
        VRListingDetail.objects.create(
            account_id=connection.account_id,
            connection=connection,
            product_id=str(product_id),
            **{**_detail_fields(row, timezone.now()), **fields},
        )
