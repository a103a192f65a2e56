"""WooCommerce's side of the channel contract (see inventory/channels.py).

These functions receive a WooCommerceConnection and plain data, talk to the shop through
WooCommerceClient, and return the contract's dataclasses. They never write inventory rows;
they keep WooCommerceListingDetail (this app's record of what the shop said) up to date.

A listing is a simple product: published with managed stock while it is for sale, stock 0
and draft once ended (kept, so a relist publishes the same product again).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from django.core.cache import cache
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
    WebhookReply,
    WebhookSeen,
    retry_transient,
)

from . import mappers, webhooks
from .client import BATCH_LIMIT, WooCommerceClient, error_code, object_error
from .models import WooCommerceConnection, WooCommerceListingDetail

logger = logging.getLogger(__name__)

NAME = "woocommerce"
LABEL = "WooCommerce"
CONNECTION_MODEL = "channels_woocommerce.WooCommerceConnection"
CONNECTION_SERIALIZER = "channels_woocommerce.serializers.WooCommerceConnectionSerializer"
DEFAULT_PRIORITY = 60
WEBHOOK_TOPICS = webhooks.TOPICS

# Orders are read from a little before the watermark: WooCommerce's times have whole seconds, and
# an order saved in the same second as the last one seen must not slip through. The engine dedupes.
ORDER_OVERLAP = timedelta(minutes=2)
FIRST_PULL_LOOKBACK = timedelta(days=1)
# Preference when several products carry our SKU (WooCommerce keeps SKUs unique, but a product in
# the trash or one made before the rule was on may share it): for sale first, then newest.
_ADOPT_ORDER = ("publish", "private", "pending", "draft", "future")
# WooCommerce's codes for "this SKU is taken" (a create that an earlier, lost answer already made).
SKU_TAKEN = frozenset({"product_invalid_sku", "woocommerce_rest_product_not_created"})

_clients = threading.local()


# --- connection and client ------------------------------------------------------------


def woo_connection(connection) -> WooCommerceConnection:
    if isinstance(connection, WooCommerceConnection):
        return connection
    return WooCommerceConnection.objects.select_related("account").get(pk=connection.pk)


def client_for(connection) -> WooCommerceClient:
    """A client for this connection, kept per thread so keep-alive saves a TLS handshake per call."""
    connection = woo_connection(connection)
    keys = hashlib.sha256(f"{connection.consumer_key}:{connection.consumer_secret}".encode()).hexdigest()[:16]
    key = (connection.pk, connection.store_url, keys, connection.auth_method, connection.timeout_seconds)
    cached: dict = getattr(_clients, "by_connection", None) or {}
    _clients.by_connection = cached
    client = cached.get(key)
    if client is None:
        for stale in [k for k in cached if k[0] == connection.pk]:
            cached.pop(stale).session.close()
        client = WooCommerceClient(
            connection.store_url,
            connection.consumer_key,
            connection.consumer_secret,
            auth_method=connection.auth_method,
            timeout=connection.timeout_seconds,
        )
        cached[key] = client
    return client


def store_currency(connection: WooCommerceConnection, client: WooCommerceClient) -> str:
    """The shop's currency, read once and kept on the connection (prices are sent in it, not converted)."""
    if not connection.store_currency:
        currency = retry_transient(client.currency)
        if currency:
            WooCommerceConnection.objects.filter(pk=connection.pk).update(store_currency=currency)
            connection.store_currency = currency
    return connection.store_currency


def _category_ids(connection: WooCommerceConnection, category: str) -> list[int]:
    if not category:
        return []
    value = (connection.category_ids or {}).get(category)
    if value in (None, "", []):
        return []
    values = value if isinstance(value, list) else [value]
    return [int(v) for v in values if str(v).strip().isdigit()]


def _check_payload(connection: WooCommerceConnection, client: WooCommerceClient, payload: ListingPayload) -> None:
    problems = mappers.listing_problems(payload, store_currency(connection, client))
    if problems:
        raise PermanentChannelError("The shop cannot list this item: " + "; ".join(problems) + ".")


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
    _check_payload(connection, client, payload)
    body = mappers.product_body(payload, category_ids=_category_ids(connection, payload.category))

    existing = None
    if external_id:
        current = retry_transient(_read, client, external_id)
        if current is not None and _adoptable(current, payload.sku):
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
                _remember_error(connection, payload.sku, error.message)
                raise
            # Taken: an earlier attempt made it (its answer was lost). Adopt that one.
            existing = best_product_to_adopt(retry_transient(client.products_by_sku, payload.sku), payload.sku)
            if existing is None:
                _remember_error(connection, payload.sku, error.message)
                raise
            written = client.update_product(existing["id"], body)
        adopted = existing is not None
    product_id = written.get("id") or (existing or {}).get("id")
    if not product_id:
        raise PermanentChannelError(f"The shop accepted {payload.sku} but returned no product id.", body=written)

    product = retry_transient(_read, client, product_id) or written
    _remember(connection, product)
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
        _check_payload(connection, client, payload)
    body = mappers.revise_body(payload, fields, category_ids=_category_ids(connection, payload.category))
    if not body:
        return
    _remember(connection, client.update_product(external_id, body))


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
        _forget(connection, external_id)
        return EndResult(confirmed=True, state="ended")
    product = retry_transient(_read, client, external_id)
    if product is None:
        _forget(connection, external_id)
        return EndResult(confirmed=True, state="ended")
    _remember(connection, product)
    state = mappers.product_state(product)
    return EndResult(confirmed=state in ("ended", "sold") and product.get("status") != "publish", state=state)


def read_listing(connection, external_id: str) -> ListingSeen | None:
    connection = woo_connection(connection)
    product = _read(client_for(connection), external_id)
    if product is None:
        return None
    _remember(connection, product)
    return mappers.listing_seen(product)


def find_listing(connection, sku: str) -> ListingSeen | None:
    """Our product with this SKU on the shop (any status), the one publish would adopt, or None."""
    connection = woo_connection(connection)
    product = best_product_to_adopt(client_for(connection).products_by_sku(sku), sku)
    if product is None:
        return None
    _remember(connection, product)
    return mappers.listing_seen(product)


def read_all_listings(connection) -> Iterator[ListingSeen]:
    """Every product of the shop, in any status, page by page (100 a page). Reads only."""
    connection = woo_connection(connection)
    for page in client_for(connection).products():
        for raw in page.items:
            if raw.get("id") not in (None, "") and raw.get("type", "simple") == "simple":
                yield mappers.listing_seen(raw)


# --- bulk -----------------------------------------------------------------------------


def publish_many(
    connection, listings: Sequence[tuple[ListingPayload, str | None]]
) -> list[PublishResult | ChannelError]:
    """Publish many products through /products/batch: one result per input, in order.

    The shop's products are read once (100 a page) to find the SKUs it already has; those are
    updated, the others created, BATCH_LIMIT objects a request. Each object's own refusal comes
    back as that item's error (kept on its WooCommerceListingDetail) while the rest go through.
    A batch whose answer is lost is not sent again blindly: its SKUs are looked up and only what
    is still missing is sent. Every product is read back (GET /products?include=) at the end.
    """
    connection = woo_connection(connection)
    client = client_for(connection)
    results: list[PublishResult | ChannelError | None] = [None] * len(listings)
    currency = store_currency(connection, client)
    by_sku: dict[str, dict] = {}
    for product in _all_products(client):
        sku = str(product.get("sku") or "").strip().casefold()
        if sku and _adoptable(product, sku) and (sku not in by_sku or _rank(product) < _rank(by_sku[sku])):
            by_sku[sku] = product

    pending: list[int] = []
    for index, (payload, _external_id) in enumerate(listings):
        problems = mappers.listing_problems(payload, currency)
        if problems:
            results[index] = PermanentChannelError("The shop cannot list this item: " + "; ".join(problems) + ".")
        else:
            pending.append(index)

    product_ids: dict[int, str] = {}
    adopted: set[int] = set()
    for start in range(0, len(pending), BATCH_LIMIT):
        chunk = pending[start : start + BATCH_LIMIT]
        for _attempt in range(5):
            if not chunk:
                break
            chunk = _send_batch(connection, client, listings, chunk, by_sku, product_ids, adopted, results)

    read_back = {str(p.get("id")): p for p in _retrying(client.products_by_id, list(product_ids.values()))}
    _remember_many(connection, list(read_back.values()))
    for index, product_id in product_ids.items():
        product = read_back.get(product_id)
        if product is None or mappers.product_state(product) != "live":
            results[index] = PermanentChannelError(
                f"Product {product_id} was saved but the shop does not show it for sale.",
                body={"product_id": product_id},
            )
        else:
            results[index] = PublishResult(
                external_id=product_id, url=str(product.get("permalink") or ""), adopted=index in adopted
            )
    for index, result in enumerate(results):
        if result is None:
            results[index] = TransientChannelError("The shop did not take this product in five tries.")
    return results  # type: ignore[return-value]


def _send_batch(connection, client, listings, chunk, by_sku, product_ids, adopted, results) -> list[int]:
    """One /products/batch for these inputs; returns the ones to send again."""
    creates: list[tuple[int, dict]] = []
    updates: list[tuple[int, dict]] = []
    for index in chunk:
        payload = listings[index][0]
        body = mappers.product_body(payload, category_ids=_category_ids(connection, payload.category))
        existing = by_sku.get(payload.sku.strip().casefold())
        if existing is not None:
            updates.append((index, {"id": existing["id"], **body}))
        else:
            creates.append((index, body))
    try:
        answer = client.batch_products(create=[b for _, b in creates], update=[b for _, b in updates])
    except TransientChannelError:
        # It may have been applied: find what exists now, and send the rest again.
        for index in chunk:
            sku = listings[index][0].sku
            found = best_product_to_adopt(_retrying(client.products_by_sku, sku), sku)
            if found is not None:
                by_sku[sku.strip().casefold()] = found
        return chunk
    again: list[int] = []
    pairs = [((index, "create"), obj) for (index, _), obj in zip(creates, answer.created, strict=False)]
    pairs += [((index, "update"), obj) for (index, _), obj in zip(updates, answer.updated, strict=False)]
    for (index, operation), obj in pairs:
        payload = listings[index][0]
        problem = object_error(obj)
        if not problem and obj.get("id"):
            product_ids[index] = str(obj["id"])
            if operation == "update":
                adopted.add(index)
            continue
        if operation == "create" and error_code(obj.get("error")) in SKU_TAKEN:
            found = best_product_to_adopt(_retrying(client.products_by_sku, payload.sku), payload.sku)
            if found is not None:  # made by an earlier batch whose answer was lost: update it next round
                by_sku[payload.sku.strip().casefold()] = found
                again.append(index)
                continue
        results[index] = PermanentChannelError(f"The shop refused {payload.sku}: {problem or 'no id returned'}")
        _remember_error(connection, payload.sku, problem or "no id returned")
    # A short answer (objects the shop did not answer for): look again, then send them again.
    again.extend(index for index, _ in creates[len(answer.created) :])
    again.extend(index for index, _ in updates[len(answer.updated) :])
    return again


def _retrying(step, *args):
    return retry_transient(step, *args, attempts=5)


def _all_products(client: WooCommerceClient) -> list[dict]:
    return _retrying(lambda: [product for page in client.products() for product in page.items])


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
        _remember_many(connection, simple)
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
        product = _read(client, product_id)
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


def register_webhooks(connection, base_url: str) -> list[str]:
    """Create (or repair) the four subscriptions to base_url + webhook_path with the connection's secret.

    Idempotent: a subscription already there for the topic and URL is updated (secret, active)
    instead of made again. WooCommerce pings the URL when one is created; it must answer 200.
    """
    connection = woo_connection(connection)
    client = client_for(connection)
    delivery_url = base_url.rstrip("/") + connection.webhook_path
    existing = {
        (str(hook.get("topic")), str(hook.get("delivery_url"))): hook for hook in retry_transient(client.webhooks)
    }
    lines = []
    for topic in WEBHOOK_TOPICS:
        hook = existing.get((topic, delivery_url))
        name = f"Back office: {topic} ({connection.name})"[:190]
        if hook is None:
            made = client.create_webhook(
                name=name, topic=topic, delivery_url=delivery_url, secret=connection.webhook_secret
            )
            lines.append(f"{topic}: subscribed (webhook {made.get('id')}) -> {delivery_url}")
        else:
            client.update_webhook(hook["id"], {"status": "active", "secret": connection.webhook_secret, "name": name})
            was = hook.get("status")
            lines.append(
                f"{topic}: already subscribed (webhook {hook['id']}), "
                + ("secret refreshed" if was == "active" else f"re-enabled (it was {was})")
            )
    return lines


# --- fulfilment ---------------------------------------------------------------------------------


def order_shipped(connection, order_id: str, *, carrier: str, tracking_number: str, tracking_url: str = "") -> str:
    """Tell the shop an order left: a note to the customer with the tracking, then status completed.

    Resumable: a note already carrying this tracking number is not added twice, and an order
    already completed is left as it is. Not called by the engine yet (it has no "mark shipped"
    service); ready for it. Returns the order's status as read back.
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


# --- connection check -----------------------------------------------------------------


def check(connection) -> ConnectionCheck:
    """Does the connection work, step by step in plain words, and what to fix where it does not.

    Reads the namespace index, a product page (the keys), the currency and the webhooks. The one
    write: a webhook of ours that the shop disabled after failed deliveries is re-enabled (and
    said so), since a disabled webhook silently delays every sale until the next pull.
    """
    return check_and_repair(connection)[0]


def check_and_repair(connection) -> tuple[ConnectionCheck, list[str]]:
    """The check, and the topics whose webhook it re-enabled (for the caller to alert staff)."""
    connection = woo_connection(connection)
    revived: list[str] = []
    steps: list[CheckStep] = []
    try:
        client = client_for(connection)
    except ChannelError as error:
        return ConnectionCheck(steps=(CheckStep("Keys", False, error.message),)), revived

    try:
        index = client.index()
        routes = index.get("routes") or {}
        if "/wc/v3/products" in routes and "/wc/v3/orders" in routes:
            steps.append(CheckStep("Shop", True, f"{connection.store_url} answers the WooCommerce REST API (wc/v3)."))
        else:
            steps.append(
                CheckStep(
                    "Shop",
                    False,
                    f"{connection.store_url}/wp-json/wc/v3 answers but lists no products or orders routes: "
                    "is WooCommerce 3.5 or newer active?",
                )
            )
    except ChannelError as error:
        message = _plain(error)
        if error.status == 404 and "permalinks" not in message:
            message += (
                " No WooCommerce REST API answers at this address: check the store URL (the site's home address), "
                "that WooCommerce is active, and that WordPress permalinks are not Plain (Settings > Permalinks)."
            )
        steps.append(CheckStep("Shop", False, message))
        return ConnectionCheck(steps=tuple(steps)), revived

    try:
        client.first_product_page()
        steps.append(CheckStep("Keys", True, f"The key {connection.key_hint} reads products ({client.auth_method})."))
    except ChannelError as error:
        steps.append(CheckStep("Keys", False, _plain(error)))
        return ConnectionCheck(steps=tuple(steps)), revived

    permissions = connection.key_permissions
    if permissions == "read":
        steps.append(
            CheckStep(
                "Permissions",
                False,
                "The key is read-only: products cannot be listed or ended. Edit the key in WooCommerce > Settings > "
                "Advanced > REST API and choose Read/Write.",
            )
        )
    elif permissions in ("write", "read_write"):
        steps.append(CheckStep("Permissions", True, f"The key may {permissions.replace('_', ' and ')}."))
    else:
        steps.append(
            CheckStep(
                "Permissions",
                True,
                "Pasted keys do not say whether they may write; make sure the key is Read/Write "
                "(a read-only key fails the first publish with a plain message).",
            )
        )

    try:
        currency = client.currency()
        if currency and currency != connection.store_currency:
            WooCommerceConnection.objects.filter(pk=connection.pk).update(store_currency=currency)
            connection.store_currency = currency
        default = getattr(connection.account, "default_currency", "") or ""
        if currency and default and currency != default.upper():
            steps.append(
                CheckStep(
                    "Currency",
                    False,
                    f"The shop sells in {currency}, the catalogue prices in {default}: prices are not converted, "
                    "so items priced in another currency are refused. Set the shop's currency in WooCommerce > "
                    "Settings > General, or price these items in " + currency + ".",
                )
            )
        else:
            steps.append(CheckStep("Currency", True, f"The shop sells in {currency or 'an unknown currency'}."))
    except ChannelError as error:
        steps.append(CheckStep("Currency", False, _plain(error)))

    steps.append(_webhook_step(connection, client, revived))
    return ConnectionCheck(steps=tuple(steps)), revived


def _webhook_step(connection: WooCommerceConnection, client: WooCommerceClient, revived_topics: list[str]) -> CheckStep:
    try:
        hooks = [h for h in client.webhooks() if str(h.get("delivery_url", "")).endswith(connection.webhook_path)]
    except ChannelError as error:
        return CheckStep("Webhooks", False, _plain(error) + " (the key's user must be allowed to manage WooCommerce)")
    by_topic = {str(h.get("topic")): h for h in hooks}
    missing = [topic for topic in WEBHOOK_TOPICS if topic not in by_topic]
    revived, failed = [], []
    for topic, hook in by_topic.items():
        if topic in WEBHOOK_TOPICS and hook.get("status") != "active":
            try:
                client.update_webhook(hook["id"], {"status": "active"})
                revived.append(f"{topic} (was {hook.get('status')})")
                revived_topics.append(topic)
            except ChannelError as error:
                failed.append(f"{topic}: {error.message}")
    if revived:
        logger.warning("WooCommerce connection %s: re-enabled webhooks %s", connection.pk, ", ".join(revived))
    if failed or missing:
        text = []
        if missing:
            text.append(f"not subscribed: {', '.join(missing)} (use the admin action Register webhooks)")
        if failed:
            text.append("could not re-enable " + "; ".join(failed))
        if revived:
            text.append("re-enabled " + ", ".join(revived))
        return CheckStep("Webhooks", False, "; ".join(text) + ".")
    if revived:
        return CheckStep(
            "Webhooks",
            True,
            "The shop had disabled " + ", ".join(revived) + " after failed deliveries; re-enabled now. "
            "Sales in between are read by the scheduled pull.",
        )
    return CheckStep("Webhooks", True, f"All {len(WEBHOOK_TOPICS)} subscriptions are active.")


def disabled_webhooks(connection) -> list[str]:
    """Topics of ours the shop has disabled or paused (reads only)."""
    connection = woo_connection(connection)
    return [
        str(h.get("topic"))
        for h in client_for(connection).webhooks()
        if str(h.get("delivery_url", "")).endswith(connection.webhook_path) and h.get("status") != "active"
    ]


def _plain(error: ChannelError) -> str:
    return error.message


# --- helpers --------------------------------------------------------------------------


def _rank(product: Mapping) -> tuple[int, int]:
    status = str(product.get("status") or "")
    order = _ADOPT_ORDER.index(status) if status in _ADOPT_ORDER else len(_ADOPT_ORDER)
    try:
        newest = -int(product["id"])
    except (TypeError, ValueError, KeyError):
        newest = 0
    return order, newest


def best_product_to_adopt(products: Iterable[Mapping], sku: str) -> Mapping | None:
    candidates = [p for p in products if _adoptable(p, sku)]
    return min(candidates, key=_rank) if candidates else None


def _adoptable(product: Mapping, sku: str) -> bool:
    if str(product.get("sku") or "").strip().casefold() != sku.strip().casefold():
        return False
    return product.get("status") != "trash" and product.get("type", "simple") == "simple"


def _read(client: WooCommerceClient, product_id: str | int) -> dict | None:
    try:
        return client.get_product(product_id)
    except ListingNotFound:
        return None


def _order_or_none(raw: Mapping) -> OrderSeen | None:
    if not mappers.is_order(raw):
        return None
    try:
        return mappers.order_seen(raw)
    except (ValueError, TypeError):
        logger.warning("Skipped a WooCommerce order that could not be read: %s", raw.get("id"))
        return None


def _detail_fields(product: Mapping) -> dict:
    quantity = product.get("stock_quantity")
    return {
        "product_id": str(product.get("id") or "")[:40],
        "status": str(product.get("status") or "")[:20],
        "stock_quantity": int(quantity) if isinstance(quantity, int | float) else None,
        "permalink": str(product.get("permalink") or "")[:500],
        "last_error": "",
        "last_seen": dict(product),
        "last_seen_at": timezone.now(),
    }


def _remember(connection: WooCommerceConnection, product: Mapping) -> None:
    _remember_many(connection, [product])


def _remember_many(connection: WooCommerceConnection, products: Iterable[Mapping]) -> None:
    """Keep what the shop said of each product with a SKU (one upsert for all)."""
    rows = {}
    for product in products:
        sku = str(product.get("sku") or "")[:100]
        if sku and product.get("id"):
            rows[sku] = WooCommerceListingDetail(
                account_id=connection.account_id, connection=connection, sku=sku, **_detail_fields(product)
            )
    if rows:
        WooCommerceListingDetail.objects.bulk_create(
            list(rows.values()),
            batch_size=500,
            update_conflicts=True,
            unique_fields=["connection", "sku"],
            update_fields=[
                "product_id",
                "status",
                "stock_quantity",
                "permalink",
                "last_error",
                "last_seen",
                "last_seen_at",
            ],
        )


def _remember_error(connection: WooCommerceConnection, sku: str, message: str) -> None:
    if not sku:
        return
    WooCommerceListingDetail.objects.update_or_create(
        connection=connection,
        sku=sku[:100],
        defaults={"account_id": connection.account_id, "last_error": message[:4000], "last_seen_at": timezone.now()},
    )


def _forget(connection: WooCommerceConnection, external_id: str) -> None:
    WooCommerceListingDetail.objects.filter(connection=connection, product_id=str(external_id)).update(
        status="deleted", last_seen_at=timezone.now()
    )
