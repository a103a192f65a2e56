"""WooCommerce's side of the channel contract (see inventory/channels.py).

These functions receive a WooCommerceConnection and plain data, talk to the shop through
WooCommerceClient, and return the contract's dataclasses. They never write inventory rows;
they keep WooCommerceListingDetail (this app's record of what the shop said) up to date.

A listing is a simple product: published with managed stock while it is for sale, stock 0
and draft once ended (kept, so a relist publishes the same product again).

The app's other modules hold the parts the engine reaches through this one: access.py (the
connection's client), products.py (adoption by SKU, detail rows), checks.py (the connection
check, webhook registration), bulk.py (/products/batch).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from inventory.channels import (
    EndResult,
    ListingNotFound,
    ListingPayload,
    ListingSeen,
    OrderSeen,
    PermanentChannelError,
    PublishResult,
    PullResult,
    WebhookReply,
    WebhookSeen,
    retry_transient,
)

from . import mappers, webhooks
from .access import category_ids, check_payload, client_for, woo_connection
from .bulk import publish_many
from .checks import check, check_and_repair, disabled_webhooks, register_webhooks
from .client import WooCommerceClient, error_code
from .mappers import seo_fields  # noqa: F401  (the contract's preview of the SEO texts)
from .models import WooCommerceConnection
from .products import (
    SKU_TAKEN,
    adoptable,
    best_product_to_adopt,
    forget,
    read_product,
    remember,
    remember_error,
    remember_many,
)

# The rest of the contract lives in its own modules (connection check and webhook registration,
# bulk publishing); the engine finds every function here.
__all__ = ["check", "check_and_repair", "client_for", "disabled_webhooks", "publish_many", "register_webhooks"]

logger = logging.getLogger(__name__)

NAME = "woocommerce"
LABEL = "WooCommerce"
CONNECTION_MODEL = "channels_woocommerce.WooCommerceConnection"
CONNECTION_SERIALIZER = "channels_woocommerce.serializers.WooCommerceConnectionSerializer"
DEFAULT_PRIORITY = 60
WEBHOOK_TOPICS = webhooks.TOPICS
# WooCommerce's ping on creating a webhook is form-encoded (webhook_id=N); deliveries are JSON.
WEBHOOK_CONTENT_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded"})

# Orders are read from a little before the watermark: WooCommerce's times have whole seconds, and
# an order saved in the same second as the last one seen must not slip through. The engine dedupes.
ORDER_OVERLAP = timedelta(minutes=2)
FIRST_PULL_LOOKBACK = timedelta(days=1)


# --- publish / revise / end / read ----------------------------------------------------


def publish(connection, payload: ListingPayload, external_id: str | None) -> PublishResult:
    """Create the product, or adopt the one that already has this SKU (never a second one).

    Looks at `external_id` first (GET /products/{id}), then at every product with the SKU
    (GET /products?sku=&status=any). An adopted product gets the full body (status publish,
    the stock again: this is also the relist); only when none exists is one created. A create
    whose answer was lost is found by SKU on the next try, and the shop's unique-SKU rule
    refuses a second create anyway. Then the product is read back: it must be for sale.
    """
    connection = woo_connection(connection)
    client = client_for(connection)
    check_payload(connection, client, payload)
    body = mappers.product_body(payload, category_ids=category_ids(connection, payload.category))

    existing = None
    if external_id:
        current = retry_transient(read_product, client, external_id)
        if current is not None and adoptable(current, payload.sku):
            existing = current
    if existing is None:
        existing = best_product_to_adopt(retry_transient(client.products_by_sku, payload.sku), payload.sku)

    if existing is not None:
        written = client.update_product(existing["id"], body)
        adopted = str(existing["id"]) != str(external_id or "")
    else:
        try:
            written = client.create_product(body)
        except PermanentChannelError as error:
            if error_code(error.body) not in SKU_TAKEN:
                remember_error(connection, payload.sku, error.message)
                raise
            # Taken: an earlier attempt made it (its answer was lost). Adopt that one.
            existing = best_product_to_adopt(retry_transient(client.products_by_sku, payload.sku), payload.sku)
            if existing is None:
                remember_error(connection, payload.sku, error.message)
                raise
            written = client.update_product(existing["id"], body)
        adopted = existing is not None
    product_id = written.get("id") or (existing or {}).get("id")
    if not product_id:
        raise PermanentChannelError(f"The shop accepted {payload.sku} but returned no product id.", body=written)

    product = retry_transient(read_product, client, product_id) or written
    remember(connection, product)
    state = mappers.product_state(product)
    if state != "live":
        raise PermanentChannelError(
            f"The shop saved product {product_id} for {payload.sku} but it is not for sale "
            f"(status {product.get('status')!r}, stock {product.get('stock_quantity')!r}): "
            "the key's user may only submit products for review, or a plugin changed it.",
            body={"product_id": str(product_id)},
        )
    return PublishResult(external_id=str(product_id), url=str(product.get("permalink") or ""), adopted=adopted)


def revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None:
    """Push the changed fields only, under the shop's names. No call when the shop shows none of them."""
    connection = woo_connection(connection)
    client = client_for(connection)
    if fields & {"price", "currency"}:
        check_payload(connection, client, payload)
    body = mappers.revise_body(payload, fields, category_ids=category_ids(connection, payload.category))
    if not body:
        return
    remember(connection, client.update_product(external_id, body))


def end(connection, external_id: str, reason: str) -> EndResult:
    """Take the product off sale (stock 0, status draft), then read it back.

    The product is kept as a draft, not deleted: its page, images and reviews stay for a relist,
    and an order that arrives late still names a product we know. A product the shop no longer
    has is off sale.
    """
    connection = woo_connection(connection)
    client = client_for(connection)
    try:
        client.update_product(external_id, mappers.end_body())
    except ListingNotFound:
        forget(connection, external_id)
        return EndResult(confirmed=True, state="ended")
    product = retry_transient(read_product, client, external_id)
    if product is None:
        forget(connection, external_id)
        return EndResult(confirmed=True, state="ended")
    remember(connection, product)
    state = mappers.product_state(product)
    return EndResult(confirmed=state in ("ended", "sold") and product.get("status") != "publish", state=state)


def read_listing(connection, external_id: str) -> ListingSeen | None:
    connection = woo_connection(connection)
    product = read_product(client_for(connection), external_id)
    if product is None:
        return None
    remember(connection, product)
    return mappers.listing_seen(product)


def find_listing(connection, sku: str) -> ListingSeen | None:
    """Our product with this SKU on the shop (any status), the one publish would adopt, or None."""
    connection = woo_connection(connection)
    product = best_product_to_adopt(client_for(connection).products_by_sku(sku), sku)
    if product is None:
        return None
    remember(connection, product)
    return mappers.listing_seen(product)


def read_all_listings(connection) -> Iterator[ListingSeen]:
    """Every product of the shop, in any status, page by page (100 a page). Reads only."""
    connection = woo_connection(connection)
    for page in client_for(connection).products():
        for raw in page.items:
            if raw.get("id") not in (None, "") and raw.get("type", "simple") == "simple":
                yield mappers.listing_seen(raw)


# --- pull -----------------------------------------------------------------------------


def pull(connection, since: datetime | None, *, full_scan: bool = False) -> PullResult:
    """What changed on the shop since the watermark. Reads only.

    Orders: GET /orders?modified_after=&dates_are_gmt=true from `since` minus a small overlap,
    paged by X-WP-TotalPages; one page when nothing changed. Products: the ones modified since
    the last product read, at most once per `listing_scan_interval_seconds` (a product webhook
    or `full_scan` makes the next pull read them at once; the first pull and a full scan read
    every product). The watermark is the newest order change seen, or `since` (the first pull: its start).
    """
    connection = woo_connection(connection)
    client = client_for(connection)
    # A first pull's watermark is its own start (when no order is newer): the next pull then reads
    # from here, instead of being a "first pull" again for a shop that has had no order yet.
    result = PullResult(watermark=since or timezone.now())

    start = since - ORDER_OVERLAP if since else timezone.now() - FIRST_PULL_LOOKBACK
    seen_orders: dict[str, OrderSeen] = {}
    for page in client.orders_modified_after(start):
        result.pages_read += 1
        for raw in page.items:
            order = _order_or_none(raw)
            if order is not None:
                seen_orders[order.external_id] = order  # a page shift can show one order twice
    result.orders = list(seen_orders.values())
    newest = max((o.updated_at for o in result.orders if o.updated_at), default=None)
    if newest and (result.watermark is None or newest > result.watermark):
        result.watermark = newest

    deleted = _deleted_seen(connection, client)
    result.pages_read += len(deleted)
    result.listings.extend(deleted)

    scan_from = _product_scan_due(connection, every=full_scan or since is None)
    if scan_from is not False:
        started = timezone.now()
        params = {}
        if scan_from is not None:
            params = {"modified_after": mappers.format_gmt(scan_from - ORDER_OVERLAP), "dates_are_gmt": True}
        try:
            raw_products = []
            for page in client.products(**params):
                result.pages_read += 1
                raw_products.extend(page.items)
        except Exception:
            cache.delete(_scan_due_key(connection))  # the next pull tries again
            raise
        cache.set(_scan_from_key(connection), started.isoformat(), timeout=None)
        result.listings_complete = scan_from is None  # every product was read: the engine may mark missing ones
        simple = [p for p in raw_products if p.get("id") not in (None, "") and p.get("type", "simple") == "simple"]
        result.listings.extend(mappers.listing_seen(p) for p in simple)
        remember_many(connection, simple)
    return result


def _scan_due_key(connection) -> str:
    return f"channels_woocommerce:product-scan-due:{connection.pk}"


def _scan_from_key(connection) -> str:
    return f"channels_woocommerce:product-scan-from:{connection.pk}"


def _product_scan_due(connection: WooCommerceConnection, *, every: bool) -> datetime | bool | None:
    """False: no product read this pull. None: read every product. A time: read those modified after it.

    At most one read per interval per connection across workers (cache.add is atomic)."""
    interval = connection.listing_scan_interval_seconds
    if every:
        cache.set(_scan_due_key(connection), "1", timeout=interval or 1)
        return None
    if interval and not cache.add(_scan_due_key(connection), "1", timeout=interval):
        return False
    last = cache.get(_scan_from_key(connection))
    return datetime.fromisoformat(last) if last else None


def _deleted_key(connection) -> str:
    return f"channels_woocommerce:deleted-products:{connection.pk}"


def _note_deleted(connection, product_id: str) -> None:
    """A product.deleted delivery: the next pull reports that product (a deleted product is in no list)."""
    pending = set(cache.get(_deleted_key(connection)) or ())
    pending.add(product_id)
    cache.set(_deleted_key(connection), sorted(pending), timeout=7 * 86_400)


def _deleted_seen(connection, client: WooCommerceClient) -> list[ListingSeen]:
    """The products deleted on the shop since the last pull, read back: gone is ended; one that is
    back (restored from the trash) is reported as it is."""
    pending = list(cache.get(_deleted_key(connection)) or ())
    seen = []
    for product_id in pending:
        product = read_product(client, product_id)
        seen.append(
            ListingSeen(external_id=product_id, sku="", state="ended", quantity=0)
            if product is None
            else mappers.listing_seen(product)
        )
    if pending:
        cache.delete(_deleted_key(connection))
    return seen


def request_product_scan(connection) -> None:
    """Make the next pull read the products changed since the last read (a product webhook arrived)."""
    cache.delete(_scan_due_key(connection))


# --- webhooks -------------------------------------------------------------------------


def parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen | WebhookReply:
    """Check the signature over the raw body and identify the delivery; a ping is answered, not stored."""
    connection = woo_connection(connection)
    return webhooks.identify(connection.webhook_secret, headers, body)


def webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]:
    """The order a signed delivery carries (its body is the order itself: no read-back needed).

    Product events carry no order: the engine pulls, and the pull is told to read products now.
    """
    if event.topic in webhooks.ORDER_TOPICS:
        if not event.payload.get("line_items") and event.payload.get("id"):
            fresh = client_for(connection).get_order(event.payload["id"])  # a trimmed payload
            return [mappers.order_seen(fresh)] if fresh and mappers.is_order(fresh) else []
        if not event.payload.get("id") or not mappers.is_order(event.payload):
            return []
        return [mappers.order_seen(event.payload)]
    if event.topic == "product.deleted" and str(event.payload.get("id") or "").isdigit():
        _note_deleted(connection, str(event.payload["id"]))
    if event.topic.startswith("product."):
        request_product_scan(connection)
    return []


# --- fulfilment ---------------------------------------------------------------------------------


def order_shipped(connection, order_id: str, *, carrier: str, tracking_number: str, tracking_url: str = "") -> str:
    """Tell the shop an order left: a note to the customer with the tracking, then status completed.

    Resumable: a note already carrying this tracking number is not added twice, and an order
    already completed is left as it is. Called through `ship_order` when staff mark the order
    shipped. Returns the order's status as read back.
    """
    connection = woo_connection(connection)
    client = client_for(connection)
    tracking_number = tracking_number.strip()
    if not tracking_number:
        raise PermanentChannelError("A tracking number is needed to tell the shop the order shipped.")
    notes = retry_transient(client.order_notes, order_id)
    if not any(tracking_number in str(note.get("note") or "") for note in notes):
        text = f"Shipped with {carrier or 'the carrier'}: tracking number {tracking_number}."
        if tracking_url:
            text += f" Track it at {tracking_url}"
        client.add_order_note(order_id, text, customer_note=True)
    order = retry_transient(client.get_order, order_id)
    if order is None:
        raise ListingNotFound(f"The shop has no order {order_id}.")
    if order.get("status") != "completed":
        order = client.update_order(order_id, {"status": "completed"})
    return str(order.get("status") or "")


# --- helpers --------------------------------------------------------------------------


def _order_or_none(raw: Mapping) -> OrderSeen | None:
    if not mappers.is_order(raw):
        return None
    try:
        return mappers.order_seen(raw)
    except (ValueError, TypeError):
        logger.warning("Skipped a WooCommerce order that could not be read: %s", raw.get("id"))
        return None


def ship_order(connection, external_id: str, carrier: str, tracking_number: str) -> None:
    """The contract's shipment step (staff marked the order shipped): a customer note with the
    tracking, then status completed (resumable, see order_shipped)."""
    order_shipped(connection, external_id, carrier=carrier, tracking_number=tracking_number)
