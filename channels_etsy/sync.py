"""Etsy's side of the channel contract (see inventory/channels.py).

These functions receive an EtsyConnection and plain data, talk to Etsy through EtsyClient,
and return the contract's dataclasses. They never write inventory rows (an alert to staff
goes through inventory's alert service); they keep EtsyListingDetail, this app's record of
what Etsy said.

Publishing on Etsy is several calls: createDraftListing (form-encoded), updateListingInventory
(our SKU, the price and the quantity live on the listing's one product), the photos uploaded
in order, then updateListing state=active, and a read-back. Every step is resumable: a later
attempt finds the draft (by our record, by SKU, or by title for a draft whose answer was lost
before its SKU was set) and goes on from where the last one stopped, so nothing is created twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.utils import timezone

from inventory.channels import (
    ChannelError,
    CheckStep,
    ConnectionCheck,
    EndResult,
    ListingNotFound,
    ListingPayload,
    ListingSeen,
    OrderSeen,
    PermanentChannelError,
    PublishResult,
    PullResult,
    TransientChannelError,
    WebhookSeen,
    retry_transient,
)

from . import mappers, webhooks
from .client import CallBudget, EtsyClient
from .mappers import seo_fields  # noqa: F401  (the contract's preview of the SEO texts)
from .models import EtsyConnection, EtsyListingDetail
from .services import ConnectionTokens, budget_low_alert

logger = logging.getLogger(__name__)

NAME = "etsy"
LABEL = "Etsy"
CONNECTION_MODEL = "channels_etsy.EtsyConnection"
CONNECTION_SERIALIZER = "channels_etsy.serializers.EtsyConnectionSerializer"
DEFAULT_PRIORITY = 50
EDITS_SEEN = frozenset({"price", "quantity", "description"})  # the title is cleaned to Etsy's rules
WEBHOOK_SETUP = (
    "Etsy registers webhooks in its developer portal (Your Apps > the app > Webhooks), not by API: paste this URL "
    "there for the order events (order.paid; order.canceled), then paste the signing secret (whsec_...) into this "
    "connection's webhook secret. Deliveries without a valid signature are refused. Pulls read receipts on their "
    "own, so a missed delivery never loses a sale."
)
FEE_NOTICE = (
    "Etsy charges a listing fee (USD 0.20) for each listing it publishes and for each renewal; activating an "
    "expired or sold-out listing renews it."
)

ORDER_OVERLAP = timedelta(minutes=2)  # receipts are read from a little before the watermark (whole seconds)
FIRST_PULL_LOOKBACK = timedelta(days=1)
CREATING_MARK_TTL = 7 * 86_400  # a create whose answer may be lost: drafts are searched for a week
EMPTY_INVENTORY = {"products": []}
SKU_INDEX_TTL = 120  # seconds a scan of the shop's listings by SKU is reused for adoption lookups
_ADOPT_ORDER = ("active", "draft", "inactive", "expired")  # a sold-out one-of-a-kind listing is never adopted
OFF_SALE = frozenset({"inactive", "sold_out", "expired"})

_clients = threading.local()


# --- connection and client ------------------------------------------------------------


def etsy_connection(connection) -> EtsyConnection:
    if isinstance(connection, EtsyConnection):
        return connection
    return EtsyConnection.objects.select_related("account").get(pk=connection.pk)


def client_for(connection) -> EtsyClient:
    """A client for this connection, kept per thread (keep-alive), sharing the app's budget through the cache."""
    connection = etsy_connection(connection)
    key_id = hashlib.sha256(f"{connection.keystring}:{connection.shared_secret}".encode()).hexdigest()[:16]
    key = (connection.pk, connection.api_base_url, key_id, connection.timeout_seconds, connection.daily_reserve)
    cached: dict = getattr(_clients, "by_connection", None) or {}
    _clients.by_connection = cached
    client = cached.get(key)
    if client is None:
        for stale in [k for k in cached if k[0] == connection.pk]:
            cached.pop(stale).session.close()
        client = EtsyClient(
            connection.api_base_url,
            connection.keystring,
            connection.shared_secret,
            token=ConnectionTokens(connection.pk),
            budget=CallBudget(
                connection.keystring,
                reserve=connection.daily_reserve,
                on_low=lambda remaining, c=connection: budget_low_alert(c, remaining),
            ),
            timeout=connection.timeout_seconds,
        )
        cached[key] = client
    return client


def _shop(connection: EtsyConnection) -> int:
    if not connection.shop_id:
        raise PermanentChannelError("This Etsy connection has no shop id: Connect Etsy, or set the shop id.")
    return int(connection.shop_id)


def _taxonomy_id(connection: EtsyConnection, category: str) -> int | None:
    value = (connection.taxonomy_ids or {}).get(category) if category else None
    value = value or connection.default_taxonomy_id
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


def listing_problems(connection: EtsyConnection, payload: ListingPayload) -> list[str]:
    """Everything that keeps this item off Etsy, before any call (nothing half-written)."""
    problems = mappers.eligibility_problems(payload)
    if not _taxonomy_id(connection, payload.category):
        problems.append(
            f"no Etsy taxonomy id for the category {payload.category or '(none)'}: add it to the connection's "
            "taxonomy mapping or set a default"
        )
    if not connection.shop_id:
        problems.append("the connection has no shop id (Connect Etsy)")
    if not connection.connected:
        problems.append("the connection is not connected to Etsy (Connect Etsy)")
    return problems


# --- check ----------------------------------------------------------------------------


def check(connection) -> ConnectionCheck:
    """Reads only: the app key (openapi-ping), the token, the shop, the profiles and the mapping."""
    connection = etsy_connection(connection)
    steps: list[CheckStep] = []
    try:
        client = client_for(connection)
        pong = client.ping()
        steps.append(CheckStep("App key", True, f"The app key works (application {pong.get('application_id', '?')})."))
    except ChannelError as error:
        hint = (
            f" Check the API base URL ({connection.api_base_url}) or try again in a minute."
            if error.transient
            else " Check the keystring and shared secret (Etsy: Your Apps)."
        )
        return ConnectionCheck(steps=(CheckStep("App key", False, f"{error.message}{hint}"),))
    if not connection.connected:
        steps.append(CheckStep("Token", False, "Not connected yet: press Connect Etsy and grant access on Etsy."))
        return ConnectionCheck(steps=tuple(steps))
    try:
        me = client.me()
        steps.append(CheckStep("Token", True, f"The token works (Etsy user {me.get('user_id', '?')})."))
    except ChannelError as error:
        steps.append(CheckStep("Token", False, f"{error.message} Press Connect Etsy to grant access again."))
        return ConnectionCheck(steps=tuple(steps))
    if not connection.shop_id:
        steps.append(CheckStep("Shop", False, "No shop id: the Etsy user has no shop, or set it on the connection."))
        return ConnectionCheck(steps=tuple(steps))
    try:
        shop = client.shop(connection.shop_id)
        mine = str(me.get("shop_id") or "") in ("", str(connection.shop_id))
        steps.append(
            CheckStep(
                "Shop",
                mine,
                f"Shop {shop.get('shop_name', connection.shop_id)} ({shop.get('currency_code', '?')})."
                if mine
                else f"Shop {connection.shop_id} is not the token's shop ({me.get('shop_id')}): fix the shop id.",
            )
        )
    except ChannelError as error:
        steps.append(CheckStep("Shop", False, f"{error.message} Check the shop id."))
    for label, value, read in (
        ("Shipping profile", connection.shipping_profile_id, client.shipping_profile),
        ("Return policy", connection.return_policy_id, client.return_policy),
    ):
        if not value:
            ok = label == "Return policy"
            steps.append(
                CheckStep(label, ok, "Not set: Etsy needs one for physical listings; copy its id from Shop Manager.")
                if not ok
                else CheckStep(label, True, "Not set (optional): the shop's default applies.")
            )
            continue
        try:
            read(connection.shop_id, value)
            steps.append(CheckStep(label, True, f"{label} {value} exists in this shop."))
        except ChannelError as error:
            steps.append(CheckStep(label, False, f"{label} {value}: {error.message}"))
    bad = [name for name, value in (connection.taxonomy_ids or {}).items() if not str(value).isdigit()]
    if bad:
        steps.append(CheckStep("Categories", False, "Not Etsy taxonomy ids: " + ", ".join(bad) + "."))
    elif not connection.taxonomy_ids and not connection.default_taxonomy_id:
        steps.append(CheckStep("Categories", False, "No taxonomy mapping and no default taxonomy id: Etsy needs one."))
    if not connection.webhook_secret:
        steps.append(CheckStep("Webhooks", True, "No signing secret: sales are read by pulls only."))
    steps.append(CheckStep("Fees", True, FEE_NOTICE))
    return ConnectionCheck(steps=tuple(steps))


# --- publish / revise / end / read ----------------------------------------------------


def publish(connection, payload: ListingPayload, external_id: str | None) -> PublishResult:
    """Create the listing, or adopt ours with this SKU, and bring it live (see the module docstring)."""
    connection = etsy_connection(connection)
    problems = listing_problems(connection, payload)
    if problems:
        raise PermanentChannelError("Etsy cannot list this item: " + "; ".join(problems) + ".")
    client = client_for(connection)
    shop = _shop(connection)
    taxonomy_id = _taxonomy_id(connection, payload.category)

    listing = None
    if external_id:
        current = _read_raw(client, external_id)
        if current is not None and _adoptable(current, payload.sku, _detail_sku(connection, external_id)):
            listing = current
    if listing is None:
        listing = _find_by_sku(connection, client, payload.sku, title=payload.title)
    if listing is None:
        form = mappers.draft_form(
            payload,
            taxonomy_id=taxonomy_id,
            shipping_profile_id=connection.shipping_profile_id,
            return_policy_id=connection.return_policy_id,
            auto_renew=connection.auto_renew,
        )
        # Not retried here: a lost answer may hide a created draft. The mark set first tells the
        # next attempt to look among the drafts (where such a draft is) before creating again.
        cache.set(_creating_key(connection, payload.sku), "1", timeout=CREATING_MARK_TTL)
        listing = client.create_draft_listing(shop, form)
        adopted = False
        _remember(connection, listing, sku=payload.sku)
        cache.delete(_creating_key(connection, payload.sku))
        _index_add(connection, payload.sku, listing)
        fresh = True
    else:
        fresh = False
        adopted = str(listing["listing_id"]) != str(external_id or "")
        form = mappers.update_form(payload, mappers.LISTING_FORM_FIELDS, taxonomy_id=taxonomy_id)
        if connection.shipping_profile_id and not listing.get("shipping_profile_id"):
            form.append(("shipping_profile_id", str(connection.shipping_profile_id)))
        listing = retry_transient(client.update_listing, shop, listing["listing_id"], form) or listing
    listing_id = listing["listing_id"]
    _remember(connection, listing, sku=payload.sku)

    # A draft made just now has Etsy's defaults and no image: nothing to read before writing.
    _push_inventory(connection, client, listing_id, payload, current=EMPTY_INVENTORY if fresh else None)
    _push_photos(connection, client, shop, listing_id, payload, replace=False, images=[] if fresh else None)
    if listing.get("state") != "active":
        retry_transient(client.update_listing, shop, listing_id, [("state", "active")])

    final = retry_transient(client.get_listing, listing_id)
    _remember(connection, final, sku=payload.sku)
    if final.get("state") != "active":
        raise PermanentChannelError(
            f"Etsy kept listing {listing_id} as {final.get('state')} after activating it.",
            body={"listing_id": str(listing_id), "state": final.get("state")},
        )
    return PublishResult(external_id=str(listing_id), url=str(final.get("url") or ""), adopted=adopted)


def revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None:
    """Push the changed fields only: listing texts by updateListing, price / quantity / SKU by
    updateListingInventory, photos by replacing the images. No call when Etsy shows none of them."""
    connection = etsy_connection(connection)
    mappers.check_fields(fields)
    client = client_for(connection)
    shop = _shop(connection)
    if "year" in fields and mappers.eligibility_problems(payload):
        raise PermanentChannelError("Etsy cannot keep this item: " + "; ".join(mappers.eligibility_problems(payload)))
    form = mappers.update_form(payload, fields, taxonomy_id=_taxonomy_id(connection, payload.category))
    if form:
        listing = client.update_listing(shop, external_id, form)
        _remember(connection, listing, sku=payload.sku)
    if fields & mappers.INVENTORY_FIELDS:
        _push_inventory(connection, client, external_id, payload)
    if "photos" in fields and payload.photos:
        _push_photos(connection, client, shop, external_id, payload, replace=True)


def end(connection, external_id: str, reason: str) -> EndResult:
    """Deactivate (state=inactive), then read back. Inactive, sold out or expired is off sale; a
    listing Etsy no longer has is too; a draft (never on sale) is deleted."""
    connection = etsy_connection(connection)
    client = client_for(connection)
    shop = _shop(connection)
    refused: PermanentChannelError | None = None
    try:
        client.update_listing(shop, external_id, [("state", "inactive")], critical=True)
    except ListingNotFound:
        _forget(connection, external_id)
        return EndResult(confirmed=True, state="ended")
    except PermanentChannelError as error:
        if error.status in (401, 403):
            raise
        refused = error  # e.g. a sold-out or expired listing cannot be deactivated: the read-back decides
    listing = _read_raw(client, external_id)
    if listing is not None and listing.get("state") == "draft":
        with contextlib.suppress(ListingNotFound):
            client.delete_listing(external_id)
        listing = _read_raw(client, external_id)
    if listing is None:
        _forget(connection, external_id)
        return EndResult(confirmed=True, state="ended")
    _remember(connection, listing)
    state = mappers.listing_state(listing)
    if listing.get("state") in OFF_SALE:
        return EndResult(confirmed=True, state=state)
    if refused is not None:
        raise PermanentChannelError(
            f"{refused.message} (Etsy shows listing {external_id} as {listing.get('state')})",
            status=refused.status,
            body=refused.body,
        )
    return EndResult(confirmed=False, state=state)


def read_listing(connection, external_id: str) -> ListingSeen | None:
    connection = etsy_connection(connection)
    client = client_for(connection)
    listing = _read_raw(client, external_id)
    if listing is None:
        return None
    _remember(connection, listing)
    return _seen(client, listing)


def find_listing(connection, sku: str) -> ListingSeen | None:
    connection = etsy_connection(connection)
    client = client_for(connection)
    listing = _find_by_sku(connection, client, sku, title=None, fresh=True)
    return None if listing is None else _seen(client, listing)


def read_all_listings(connection) -> Iterator[ListingSeen]:
    """Every listing of the shop, in every state, page by page (getListingsByShop per state)."""
    connection = etsy_connection(connection)
    client = client_for(connection)
    for state in mappers.ALL_LISTING_STATES:
        for page in client.shop_listings(_shop(connection), state):
            for raw in page.results:
                if raw.get("listing_id"):
                    yield mappers.listing_seen(raw)


def push_tracking(connection, order_external_id: str, *, tracking_code: str, carrier_name: str) -> dict:
    """createReceiptShipment for an Etsy receipt (called through ship_order when staff mark the order shipped)."""
    connection = etsy_connection(connection)
    return client_for(connection).create_receipt_shipment(
        _shop(connection), order_external_id, tracking_code=tracking_code, carrier_name=carrier_name
    )


# --- pull -----------------------------------------------------------------------------


def pull(connection, since: datetime | None, *, full_scan: bool = False) -> PullResult:
    """Receipts changed since the watermark (getShopReceipts min_last_modified, offset paging; one
    page when nothing changed), and every listing once per scan interval or on demand."""
    connection = etsy_connection(connection)
    client = client_for(connection)
    shop = _shop(connection)
    result = PullResult(watermark=since)
    start = since - ORDER_OVERLAP if since else timezone.now() - FIRST_PULL_LOOKBACK
    orders: dict[str, OrderSeen] = {}
    for page in client.receipts_modified_since(shop, mappers.to_timestamp(start)):
        result.pages_read += 1
        for raw in page.results:
            try:
                order = mappers.order_seen(raw)
            except ValueError:
                logger.warning("Skipped an Etsy receipt that could not be read: %s", raw.get("receipt_id"))
                continue
            orders[order.external_id] = order
    result.orders = list(orders.values())
    newest = max((o.updated_at for o in result.orders if o.updated_at), default=None)
    if newest and (result.watermark is None or newest > result.watermark):
        result.watermark = newest

    if full_scan or _listing_scan_due(connection, first_pull=since is None):
        raws: list[dict] = []
        try:
            for state in mappers.ALL_LISTING_STATES:
                for page in client.shop_listings(shop, state):
                    result.pages_read += 1
                    raws.extend(page.results)
        except Exception:
            cache.delete(_scan_key(connection))
            raise
        result.listings = [mappers.listing_seen(raw) for raw in raws if raw.get("listing_id")]
        result.listings_complete = True
        _index_store(connection, raws)
    return result


# --- webhooks -------------------------------------------------------------------------


def parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen:
    """Verify (Standard Webhooks signature) and identify a delivery; WebhookRejected(401) when it fails."""
    connection = etsy_connection(connection)
    return webhooks.verify(connection.webhook_secret, headers, body)


def webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]:
    """The receipt a delivery is about, read fresh from Etsy (deliveries may come twice or out of order)."""
    if not webhooks.is_order_topic(event.topic):
        return []
    connection = etsy_connection(connection)
    shop_id, receipt_id = webhooks.receipt_ref(event.payload)
    if not receipt_id.isdigit():
        return []
    if shop_id and str(connection.shop_id) != shop_id:
        logger.warning("Etsy delivery for shop %s on the connection of shop %s: ignored.", shop_id, connection.shop_id)
        return []
    receipt = client_for(connection).receipt(_shop(connection), receipt_id)
    return [] if receipt is None else [mappers.order_seen(receipt)]


# --- helpers --------------------------------------------------------------------------


def _read_raw(client: EtsyClient, listing_id: str | int) -> dict | None:
    try:
        listing = client.get_listing(listing_id)
    except ListingNotFound:
        return None
    if "skus" not in listing:  # some answers leave skus out: the inventory has the SKU
        try:
            listing["skus"] = [mappers.listing_sku({}, client.get_inventory(listing_id))]
        except ListingNotFound:
            return None
    return listing


def _seen(client: EtsyClient, listing: Mapping) -> ListingSeen:
    return mappers.listing_seen(listing)


def _detail_sku(connection: EtsyConnection, listing_id: str | int) -> str:
    return (
        EtsyListingDetail.objects.filter(connection=connection, listing_id=int(listing_id))
        .values_list("sku", flat=True)
        .first()
        or ""
    )


def _adoptable(listing: Mapping, sku: str, recorded_sku: str = "", title: str | None = None) -> bool:
    state = listing.get("state")
    if state not in _ADOPT_ORDER:
        return False
    theirs = mappers.listing_sku(listing)
    if theirs:
        return theirs.strip().casefold() == sku.strip().casefold()
    # No SKU on Etsy yet: a draft we created (our record says so), or one whose answer was lost (same title).
    if state != "draft":
        return False
    if recorded_sku:
        return recorded_sku.strip().casefold() == sku.strip().casefold()
    return title is not None and str(listing.get("title") or "") == mappers.clean_title(title)


def _rank(listing: Mapping) -> tuple[int, int]:
    return _ADOPT_ORDER.index(listing.get("state")), -int(listing.get("listing_id") or 0)


def _find_by_sku(
    connection: EtsyConnection, client: EtsyClient, sku: str, *, title: str | None, fresh: bool = False
) -> dict | None:
    """Our listing with this SKU: our own record first, then the shop's drafts when a create of ours
    may have lost its answer (such a draft has no SKU yet: it is matched by title) or when `fresh`,
    then an index of the shop's other listings by SKU (reused for two minutes)."""
    candidates: list[dict] = []
    recorded = EtsyListingDetail.objects.filter(connection=connection, sku__iexact=sku).order_by("-listing_id")
    for detail in recorded[:5]:
        listing = _read_raw(client, detail.listing_id)
        if listing is not None and _adoptable(listing, sku, detail.sku):
            candidates.append(listing)
    if candidates:
        return min(candidates, key=_rank)
    shop = _shop(connection)
    if fresh or cache.get(_creating_key(connection, sku)):
        for page in retry_transient(lambda: list(client.shop_listings(shop, "draft"))):
            candidates += [raw for raw in page.results if _adoptable(raw, sku, title=title)]
    index = None if fresh else cache.get(_index_key(connection))
    if index is None:
        raws = []
        for state in ("active", "inactive", "expired"):
            for page in retry_transient(lambda s=state: list(client.shop_listings(shop, s))):
                raws.extend(page.results)
        index = _index_store(connection, raws)
    for listing_id in index.get(sku.strip().casefold(), []):
        listing = _read_raw(client, listing_id)
        if listing is not None and _adoptable(listing, sku):
            candidates.append(listing)
    return min(candidates, key=_rank) if candidates else None


def _creating_key(connection: EtsyConnection, sku: str) -> str:
    return f"channels_etsy:creating:{connection.pk}:{hashlib.sha256(sku.casefold().encode()).hexdigest()[:24]}"


def _index_key(connection: EtsyConnection) -> str:
    return f"channels_etsy:sku-index:{connection.pk}"


def _index_store(connection: EtsyConnection, raws: Iterable[Mapping]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for raw in raws:
        sku = mappers.listing_sku(raw).strip().casefold()
        if sku and raw.get("state") != "sold_out":
            index.setdefault(sku, []).append(int(raw["listing_id"]))
    cache.set(_index_key(connection), index, timeout=SKU_INDEX_TTL)
    return index


def _index_add(connection: EtsyConnection, sku: str, listing: Mapping) -> None:
    index = cache.get(_index_key(connection))
    if index is not None:
        index.setdefault(sku.strip().casefold(), []).append(int(listing["listing_id"]))
        cache.set(_index_key(connection), index, timeout=SKU_INDEX_TTL)


def _push_inventory(
    connection: EtsyConnection, client: EtsyClient, listing_id, payload: ListingPayload, *, current=None
) -> None:
    """Our SKU, price and quantity on the listing's product, unless Etsy already has exactly them."""
    if current is None:
        current = retry_transient(client.get_inventory, listing_id)
    body = mappers.inventory_body(payload, readiness_state_id=connection.readiness_state_id, current=current)
    if _inventory_matches(current, body):
        return
    retry_transient(client.update_inventory, listing_id, body)  # a PUT of the whole inventory: safe to repeat


def _inventory_matches(current: Mapping, body: Mapping) -> bool:
    products = [p for p in current.get("products") or [] if not p.get("is_deleted")]
    if len(products) != 1:
        return False
    offerings = [o for o in products[0].get("offerings") or [] if not o.get("is_deleted")]
    wanted = body["products"][0]
    if products[0].get("sku") != wanted["sku"] or len(offerings) != 1:
        return False
    price, _ = mappers.money(offerings[0].get("price"))
    want = wanted["offerings"][0]
    return (
        price is not None
        and f"{price:.2f}" == f"{want['price']:.2f}"
        and offerings[0].get("quantity") == want["quantity"]
        and bool(offerings[0].get("is_enabled")) == want["is_enabled"]
    )


def photo_bytes(url: str, timeout: float = 15.0) -> tuple[bytes, str]:
    """A photo's bytes and file name: from this site's storage when it is ours, else fetched."""
    name = url.rsplit("/", 1)[-1].split("?")[0] or "photo.jpg"
    media = f"{settings.SITE_URL}{settings.MEDIA_URL}" if settings.SITE_URL else ""
    if media and url.startswith(media):
        path = url[len(media) :]
        if default_storage.exists(path):
            with default_storage.open(path, "rb") as handle:
                return handle.read(), name
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as error:
        raise TransientChannelError(f"Could not fetch the photo {url} for Etsy: {error.__class__.__name__}.") from error
    if response.status_code >= 500:
        raise TransientChannelError(f"Fetching the photo {url} failed ({response.status_code}).")
    if response.status_code != 200 or not response.content:
        raise PermanentChannelError(f"The photo {url} cannot be fetched ({response.status_code}): fix or remove it.")
    return response.content, name


def _push_photos(
    connection, client: EtsyClient, shop: int, listing_id, payload: ListingPayload, *, replace: bool, images=None
) -> None:
    """Upload the photos in order (rank 1 first) with alt text. Resumable: ranks Etsy already has
    are kept; `replace` (photos changed) removes the old images first."""
    if images is None:
        images = retry_transient(client.listing_images, listing_id)
    if replace:
        for image in images:
            retry_transient(client.delete_image, shop, listing_id, image["listing_image_id"])
        images = []
    have = {int(image.get("rank") or 0) for image in images}
    uploaded = [image["listing_image_id"] for image in images]
    for index, url in enumerate(payload.photos[:10]):
        rank = index + 1
        if rank in have:
            continue
        data, filename = photo_bytes(url)
        image = retry_transient(
            client.upload_image,
            shop,
            listing_id,
            image=data,
            filename=filename,
            rank=rank,
            alt_text=mappers.alt_text(payload, index),
        )
        uploaded.append(image.get("listing_image_id"))
    EtsyListingDetail.objects.filter(connection=connection, listing_id=int(listing_id)).update(image_ids=uploaded)


def _scan_key(connection: EtsyConnection) -> str:
    return f"channels_etsy:listing-scan:{connection.pk}"


def _listing_scan_due(connection: EtsyConnection, *, first_pull: bool) -> bool:
    interval = connection.listing_scan_interval_seconds
    if interval == 0:
        return True
    if first_pull:
        cache.set(_scan_key(connection), "1", timeout=interval)
        return True
    return cache.add(_scan_key(connection), "1", timeout=interval)


def _remember(connection: EtsyConnection, listing: Mapping[str, Any], *, sku: str | None = None) -> None:
    listing_id = listing.get("listing_id")
    if not listing_id:
        return
    fields = {
        "state": str(listing.get("state") or "")[:20],
        "url": str(listing.get("url") or "")[:500],
        "last_seen": dict(listing),
        "last_seen_at": timezone.now(),
    }
    seen_sku = mappers.listing_sku(listing) or sku
    if seen_sku:
        fields["sku"] = seen_sku[:100]
    EtsyListingDetail.objects.bulk_create(
        [
            EtsyListingDetail(
                account_id=connection.account_id, connection=connection, listing_id=int(listing_id), **fields
            )
        ],
        update_conflicts=True,
        unique_fields=["connection", "listing_id"],
        update_fields=list(fields),
    )


def _forget(connection: EtsyConnection, listing_id) -> None:
    EtsyListingDetail.objects.filter(connection=connection, listing_id=int(listing_id)).update(
        state="deleted", last_seen_at=timezone.now()
    )


def ship_order(connection, external_id: str, carrier: str, tracking_number: str) -> None:
    """The contract's shipment step (staff marked the order shipped): the tracking on the Etsy receipt."""
    push_tracking(connection, external_id, tracking_code=tracking_number, carrier_name=carrier)
