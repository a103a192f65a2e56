"""Shopify's side of the channel contract (see inventory/channels.py), over the Admin GraphQL API.

These functions receive a ShopifyConnection and plain data, talk to Shopify through
ShopifyClient, and return the contract's dataclasses. They never write inventory rows
(the one exception is the privacy topics, see services.privacy_request); they keep
ShopifyProductDetail (this app's record of what Shopify said) up to date.

A listing is a Shopify product with one variant carrying our SKU; its external id is the
product's gid. The quantity lives at the connection's location and is always changed with
`inventorySetQuantities` and a compare quantity, so a change made in Shopify meanwhile
(a sale at the till, a recount) is never overwritten blindly.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

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
from .client import ShopifyClient, describe_user_errors, raise_user_errors
from .mappers import seo_fields  # noqa: F401  (the contract's preview of the SEO title, description, tags)
from .models import SHOP_DOMAIN_PATTERN, ShopifyConnection, ShopifyProductDetail

logger = logging.getLogger(__name__)

NAME = "shopify"
LABEL = "Shopify"
CONNECTION_MODEL = "channels_shopify.ShopifyConnection"
CONNECTION_SERIALIZER = "channels_shopify.serializers.ShopifyConnectionSerializer"
DEFAULT_PRIORITY = 10  # first in the platform order: Shopify, Reverb, V&R, eBay

# Read from a little before the watermark: Shopify's search index trails writes by a few
# seconds, and the engine dedupes orders, so reading a few twice costs nothing.
OVERLAP = timedelta(minutes=2)
FIRST_PULL_LOOKBACK = timedelta(days=1)
# Shopify refuses a query whose requested cost passes 1,000 points: 10 orders (10 lines each) and
# 10 products keep the first page of a pull (both in one request) at about 750; the pages after it
# read one kind each, 15 orders (about 800) or 40 products (about 900).
PAGE_SIZE = 10
ORDER_PAGE_SIZE = 15
PRODUCT_PAGE_SIZE = 40
REFERENCE = "gid://gear-back-office/Listing/{sku}"

# API topic -> the delivery's X-Shopify-Topic. The privacy topics (customers/data_request,
# customers/redact, shop/redact) are set in the app's configuration, not by API.
WEBHOOK_TOPICS = {
    "ORDERS_CREATE": "orders/create",
    "ORDERS_PAID": "orders/paid",
    "ORDERS_CANCELLED": "orders/cancelled",
    "PRODUCTS_UPDATE": "products/update",
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
}

_clients = threading.local()


# --- connection and client ------------------------------------------------------------


def shopify_connection(connection) -> ShopifyConnection:
    if isinstance(connection, ShopifyConnection):
        return connection
    return ShopifyConnection.objects.select_related("account").get(pk=connection.pk)


def client_for(connection) -> ShopifyClient:
    """A client for this connection, kept per thread (keep-alive); its cost bucket is the shop's, shared."""
    connection = shopify_connection(connection)
    token_id = hashlib.sha256(connection.access_token.encode()).hexdigest()[:16]
    key = (connection.pk, connection.endpoint, token_id, connection.timeout_seconds)
    cached: dict = getattr(_clients, "by_connection", None) or {}
    _clients.by_connection = cached
    client = cached.get(key)
    if client is None:
        for stale in [k for k in cached if k[0] == connection.pk]:
            cached.pop(stale).session.close()
        client = ShopifyClient(
            connection.endpoint,
            connection.access_token,
            shop_key=f"{connection.shop_domain}|{connection.endpoint}",
            timeout=connection.timeout_seconds,
        )
        cached[key] = client
    return client


def _location(connection: ShopifyConnection) -> str:
    if not connection.location_id:
        raise PermanentChannelError(
            "This Shopify connection has no location: choose the one stock is kept at (the connection check lists them)."
        )
    return connection.location_id


# --- publish / revise / end / read ----------------------------------------------------


def publish(connection, payload: ListingPayload, external_id: str | None) -> PublishResult:
    """Create the product, or adopt the one that already carries this SKU (never a second one).

    Looks at `external_id` first, then searches variants by SKU. An adopted product is
    rewritten with productSet (its id and our variant's id, so nothing of ours is deleted)
    and its quantity set with a compare check; only when none exists is a product created,
    with its quantity at the location. A create that timed out but was applied is found by
    SKU on the next call and adopted.
    """
    connection = shopify_connection(connection)
    problems = mappers.listing_problems(payload)
    if problems:
        raise PermanentChannelError("Shopify cannot list this item: " + "; ".join(problems) + ".")
    client = client_for(connection)
    location = _location(connection)

    existing = None
    if external_id:
        current = retry_transient(_read_product, client, external_id, location)
        if current is not None and mappers.our_variant(current, payload.sku) is not None:
            existing = current
    if existing is None:
        existing = retry_transient(_find_by_sku, client, payload.sku, location)

    if existing is None:
        built = mappers.product_set_input(payload, location_id=location)
        product = _product_set(connection, client, built.input, location, what=f"the new product {payload.sku}")
        adopted = False
    else:
        variants = mappers.nodes(existing.get("variants"))
        if len(variants) > 1:
            raise PermanentChannelError(
                f"Shopify product {existing['id']} has {len(variants)} variants; the back office lists each item as a "
                f"product of one variant and will not delete the others. Give {payload.sku} its own product in Shopify, "
                "or remove the other variants."
            )
        variant = mappers.our_variant(existing, payload.sku)
        current_quantity = mappers.variant_quantity(variant)
        built = mappers.product_set_input(
            payload, location_id=location, product_id=str(existing["id"]), variant_id=str(variant["id"])
        )
        if current_quantity is None:  # not stocked at our location yet: nothing there to overwrite
            built.input["variants"][0]["inventoryQuantities"] = [
                {"locationId": location, "name": mappers.INVENTORY_NAME, "quantity": max(0, payload.quantity)}
            ]
        product = retry_transient(
            _product_set, connection, client, built.input, location, what=f"the product {payload.sku}"
        )
        if current_quantity is not None:
            _set_quantity(
                client,
                product,
                payload.sku,
                location,
                payload.quantity,
                current_quantity,
                last_pushed=_pushed_quantity(connection, str(product["id"])),
            )
            product = _read_product(client, str(product["id"]), location) or product
        adopted = str(existing["id"]) != str(external_id or "")

    _remember(connection, product, payload.sku, user_errors=[], notes=built.notes, pushed_quantity=payload.quantity)
    # The listing's link is the product in the store's admin: staff open it from the item's page.
    url = mappers.admin_url(connection.admin_root, str(product["id"]))
    return PublishResult(external_id=str(product["id"]), url=url, adopted=adopted)


def revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None:
    """Push the changed fields only: product texts with productUpdate, price and SKU on the variant,
    photos with productSet (files replaced, our variant kept by id), the quantity with a compare check."""
    connection = shopify_connection(connection)
    client = client_for(connection)
    location = _location(connection)
    product_update, variant_update, quantity_changed, photos_changed, notes = mappers.revise_parts(
        payload, fields, product_id=external_id, variant_id=""
    )
    if not (product_update or variant_update or quantity_changed or photos_changed):
        return
    product: Mapping[str, Any] | None = None
    if product_update:
        data = client.execute("ProductUpdate", {"product": product_update, "locationId": location})
        result = data.get("productUpdate") or {}
        _raise_and_keep(connection, external_id, result, f"the changes to {payload.sku}")
        product = result.get("product")
        if product is None:
            raise ListingNotFound(f"Shopify has no product {external_id}.")
    if variant_update or quantity_changed or photos_changed:
        product = product or _read_product(client, external_id, location)
        if product is None:
            raise ListingNotFound(f"Shopify has no product {external_id}.")
        variant = mappers.our_variant(product, payload.sku) or mappers.our_variant(product)
        if variant is None:
            raise PermanentChannelError(f"Shopify product {external_id} has no variant to carry {payload.sku}.")
        if photos_changed:
            data = client.execute(
                "ProductSet",
                {
                    "input": mappers.photos_input(payload, product_id=external_id, variant_id=str(variant["id"])),
                    "synchronous": True,
                    "locationId": location,
                },
            )
            result = data.get("productSet") or {}
            _raise_and_keep(connection, external_id, result, f"the photos of {payload.sku}")
            product = result.get("product") or product
        if variant_update:
            variant_update["id"] = str(variant["id"])
            data = client.execute("VariantsBulkUpdate", {"productId": external_id, "variants": [variant_update]})
            _raise_and_keep(
                connection, external_id, data.get("productVariantsBulkUpdate"), f"the price of {payload.sku}"
            )
        if quantity_changed:
            _set_quantity(
                client,
                product,
                payload.sku,
                location,
                payload.quantity,
                mappers.variant_quantity(variant),
                last_pushed=_pushed_quantity(connection, external_id),
            )
        if variant_update or quantity_changed:
            product = _read_product(client, external_id, location) or product
    _remember(
        connection,
        product,
        payload.sku,
        user_errors=[],
        notes=notes,
        pushed_quantity=payload.quantity if quantity_changed else None,
    )


def end(connection, external_id: str, reason: str) -> EndResult:
    """Take the product off sale: quantity 0 at the location (compare-checked) and status DRAFT
    (hidden from the storefront), then read it back. A product Shopify no longer has is off sale."""
    connection = shopify_connection(connection)
    client = client_for(connection)
    location = _location(connection)
    product = _read_product(client, external_id, location)
    if product is None:
        _forget(connection, external_id)
        return EndResult(confirmed=True, state="ended")
    variant = mappers.our_variant(product)
    quantity = mappers.variant_quantity(variant)
    if variant is not None and quantity not in (None, 0):
        _set_quantity(client, product, str(variant.get("sku") or ""), location, 0, quantity, always=True)
    if str(product.get("status") or "") == "ACTIVE":
        data = client.execute(
            "ProductUpdate", {"product": {"id": external_id, "status": "DRAFT"}, "locationId": location}
        )
        result = data.get("productUpdate") or {}
        if result.get("product") is None and not result.get("userErrors"):
            _forget(connection, external_id)
            return EndResult(confirmed=True, state="ended")
        _raise_and_keep(connection, external_id, result, "taking the product off sale")

    seen = _read_product(client, external_id, location)  # the read-back decides
    if seen is None:
        _forget(connection, external_id)
        return EndResult(confirmed=True, state="ended")
    _remember(connection, seen, "", pushed_quantity=0)
    quantity = mappers.variant_quantity(mappers.our_variant(seen))
    confirmed = str(seen.get("status") or "") != "ACTIVE" and not quantity
    return EndResult(confirmed=confirmed, state="ended" if confirmed else mappers.product_state(seen, quantity))


def read_listing(connection, external_id: str) -> ListingSeen | None:
    connection = shopify_connection(connection)
    product = _read_product(client_for(connection), external_id, _location(connection))
    if product is None:
        return None
    _remember(connection, product, "")
    return mappers.listing_seen(product, admin_root=connection.admin_root)


def find_listing(connection, sku: str) -> ListingSeen | None:
    """Our product with this SKU on Shopify (any status), the one publish would adopt, or None."""
    connection = shopify_connection(connection)
    product = _find_by_sku(client_for(connection), sku, _location(connection))
    if product is None:
        return None
    _remember(connection, product, sku)
    return mappers.listing_seen(product, sku, admin_root=connection.admin_root)


def read_all_listings(connection) -> Iterator[ListingSeen]:
    """Every product of the store, page by page (reads only; products without a variant are skipped)."""
    connection = shopify_connection(connection)
    client = client_for(connection)
    for product in _product_pages(client, None, _location(connection), first_page=None)[0]:
        if mappers.our_variant(product) is not None:
            yield mappers.listing_seen(product, admin_root=connection.admin_root)


# --- pull -----------------------------------------------------------------------------


def pull(connection, since: datetime | None, *, full_scan: bool = False) -> PullResult:
    """What changed on Shopify since the watermark. Reads only.

    One request reads the first page of orders (updated_at after the watermark, less a small
    overlap, by UPDATED_AT) and of products changed since then; further pages follow the
    cursors. Nothing changed: one call. The first pull (and a full scan) reads every product,
    so products made in Shopify are imported for review.
    """
    connection = shopify_connection(connection)
    client = client_for(connection)
    location = _location(connection)
    result = PullResult(watermark=since)
    start = since - OVERLAP if since else timezone.now() - FIRST_PULL_LOOKBACK
    products_query = None if (since is None or full_scan) else mappers.updated_since_query(since - OVERLAP)
    orders_query = mappers.updated_since_query(start)
    data = client.execute(
        "Changes",
        {"first": PAGE_SIZE, "ordersQuery": orders_query, "productsQuery": products_query, "locationId": location},
    )
    result.pages_read = 1

    raw_orders = list(mappers.nodes(data.get("orders")))
    info = (data.get("orders") or {}).get("pageInfo") or {}
    while info.get("hasNextPage") and info.get("endCursor"):
        page = client.execute(
            "OrdersPage", {"first": ORDER_PAGE_SIZE, "after": info["endCursor"], "query": orders_query}
        )
        result.pages_read += 1
        raw_orders.extend(mappers.nodes(page.get("orders")))
        info = (page.get("orders") or {}).get("pageInfo") or {}
    products, pages = _product_pages(client, products_query, location, first_page=data.get("products"))
    result.pages_read += pages

    seen_orders: dict[str, OrderSeen] = {}
    for raw in raw_orders:
        result.pages_read += _complete_lines(client, raw)
        try:
            order = mappers.order_seen(raw)
        except ValueError:
            logger.warning("Skipped a Shopify order that could not be read: %s", raw.get("name") or raw.get("id"))
            continue
        seen_orders[order.external_id] = order  # a page shift can show one order twice
    result.orders = list(seen_orders.values())
    result.listings = [
        mappers.listing_seen(p, admin_root=connection.admin_root)
        for p in products
        if mappers.our_variant(p) is not None
    ]
    result.listings_complete = products_query is None  # every product was read: the engine may spot missing ones
    _remember_many(connection, products)
    newest = max(
        [o.updated_at for o in result.orders if o.updated_at] + [s.updated_at for s in result.listings if s.updated_at],
        default=None,
    )
    if newest and (result.watermark is None or newest > result.watermark):
        result.watermark = min(newest, timezone.now())
    return result


# --- webhooks -------------------------------------------------------------------------


def parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen:
    """Check the HMAC of the raw body (constant time) before anything else, then identify the event."""
    connection = shopify_connection(connection)
    webhooks.verify(connection.webhook_secrets(), headers, body)
    return webhooks.identify(headers, body, shop_domain=connection.shop_domain)


def webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]:
    """The order an orders/* delivery is about, read from Shopify as it is now (deliveries come out
    of order; the current order is the truth). Privacy topics are carried out here (see services)."""
    connection = shopify_connection(connection)
    if event.topic in webhooks.PRIVACY_TOPICS:
        from .services import privacy_request

        privacy_request(connection, event.topic, event.payload)
        return []
    if event.topic not in webhooks.ORDER_TOPICS:
        return []
    gid = webhooks.order_id(event.payload)
    if not gid:
        return []
    client = client_for(connection)
    order = client.execute("Order", {"id": gid}).get("order")
    if order is None:
        logger.warning("Shopify webhook for order %s, which the store does not have: ignored.", gid)
        return []
    _complete_lines(client, order)
    return [mappers.order_seen(order)]


def register_webhooks(connection, base_url: str) -> list[str]:
    """Subscribe this connection's webhook URL to the topics the back office uses (idempotent; a subscription
    of this connection at an old address of the site is moved, not doubled)."""
    connection = shopify_connection(connection)
    client = client_for(connection)
    url = base_url.rstrip("/") + connection.webhook_path
    data = client.execute("WebhookSubscriptions", {"first": 100})
    existing = {}
    for node in mappers.nodes(data.get("webhookSubscriptions")):
        callback = str((node.get("endpoint") or {}).get("callbackUrl") or "")
        existing[(str(node.get("topic")), callback)] = node
    lines = []
    for topic, wire in WEBHOOK_TOPICS.items():
        if (topic, url) in existing:
            lines.append(f"{wire}: already registered")
            continue
        moved = next(
            (
                node
                for (t, callback), node in existing.items()
                if t == topic and callback.endswith(connection.webhook_path)
            ),
            None,
        )
        if moved is not None:  # this connection's subscription at an old address of the site: point it here
            answer = (
                client.execute(
                    "WebhookSubscriptionUpdate", {"id": moved["id"], "webhookSubscription": {"callbackUrl": url}}
                ).get("webhookSubscriptionUpdate")
                or {}
            )
            if answer.get("userErrors"):
                lines.append(f"{wire}: refused by Shopify: {describe_user_errors(answer['userErrors'])}")
            else:
                lines.append(f"{wire}: moved to this address")
            continue
        answer = (
            client.execute(
                "WebhookSubscriptionCreate",
                {"topic": topic, "webhookSubscription": {"callbackUrl": url, "format": "JSON"}},
            ).get("webhookSubscriptionCreate")
            or {}
        )
        if answer.get("userErrors"):
            lines.append(f"{wire}: refused by Shopify: {describe_user_errors(answer['userErrors'])}")
        else:
            lines.append(f"{wire}: registered")
    lines.append(
        "customers/data_request, customers/redact, shop/redact: set these privacy webhooks to the same URL in the "
        "app's configuration (Shopify does not take them by API)"
    )
    return lines


# --- connection check -----------------------------------------------------------------


def check(connection) -> ConnectionCheck:
    """Reads only: store address, token, location, webhook secret and API version, in plain words."""
    connection = shopify_connection(connection)
    steps: list[CheckStep] = []
    if not re.match(SHOP_DOMAIN_PATTERN, connection.shop_domain or ""):
        steps.append(
            CheckStep("Store address", False, "Enter the store's myshopify.com address, e.g. example.myshopify.com.")
        )
        return ConnectionCheck(tuple(steps))
    try:
        data = client_for(connection).execute(
            "ShopCheck",
            {
                "locationId": connection.location_id or "gid://shopify/Location/0",
                "withLocation": bool(connection.location_id),
            },
        )
    except ChannelError as error:
        steps.append(CheckStep("Access token", False, error.message))
        steps.append(_version_step(connection.api_version))
        return ConnectionCheck(tuple(steps))
    shop = data.get("shop") or {}
    steps.append(CheckStep("Access token", True, f"The token works for {shop.get('name') or 'the store'}."))
    domain = str(shop.get("myshopifyDomain") or "")
    if domain and domain.lower() != connection.shop_domain:
        steps.append(
            CheckStep("Store", False, f"The token belongs to {domain}, not {connection.shop_domain}: fix one of them.")
        )
    else:
        steps.append(
            CheckStep("Store", True, f"{connection.shop_domain} (prices in {shop.get('currencyCode') or '?'}).")
        )
    choices = ", ".join(
        f"{node.get('name')} ({node.get('id')})"
        for node in mappers.nodes(data.get("locations"))
        if node.get("isActive")
    )
    location = data.get("location")
    if not connection.location_id:
        steps.append(CheckStep("Location", False, f"Choose the location stock is kept at: {choices or 'none found'}."))
    elif not location:
        steps.append(
            CheckStep(
                "Location", False, f"{connection.location_id} is not a location of this store. Choose: {choices}."
            )
        )
    elif not location.get("isActive"):
        steps.append(
            CheckStep("Location", False, f"{location.get('name')} is deactivated in Shopify. Choose: {choices}.")
        )
    else:
        steps.append(CheckStep("Location", True, f"Stock is kept at {location.get('name')}."))
    if connection.webhook_secret:
        steps.append(CheckStep("Webhook secret", True, "Set: deliveries are checked against it."))
    else:
        steps.append(
            CheckStep(
                "Webhook secret",
                False,
                "Paste the app's client secret, or every webhook is refused (sales then arrive with the next pull).",
            )
        )
    steps.append(_version_step(connection.api_version))
    return ConnectionCheck(tuple(steps))


def _version_step(version: str) -> CheckStep:
    if version >= "2026-04":
        return CheckStep(
            "API version",
            False,
            f"{version} makes changeFromQuantity and an idempotency key mandatory on stock changes, which this "
            "back office does not send yet: pin the connection to 2025-01.",
        )
    if version != "2025-01":
        return CheckStep(
            "API version", True, f"Pinned to {version} (the requests are checked against 2025-01's schema)."
        )
    return CheckStep("API version", True, f"Pinned to {version}.")


# --- helpers --------------------------------------------------------------------------


def _read_product(client: ShopifyClient, product_id: str, location: str) -> dict | None:
    if not str(product_id).startswith("gid://shopify/Product/"):
        return None
    return client.execute("Product", {"id": product_id, "locationId": location}).get("product")


def _find_by_sku(client: ShopifyClient, sku: str, location: str) -> dict | None:
    """The product to adopt for this SKU: of the products whose variant carries it exactly, the one
    for sale first, then the newest. Shopify's search is fuzzy, so only an exact SKU counts."""
    data = client.execute("VariantsBySku", {"query": mappers.sku_query(sku)})
    wanted = sku.strip().casefold()
    candidates = [
        variant["product"]
        for variant in mappers.nodes(data.get("productVariants"))
        if str(variant.get("sku") or "").strip().casefold() == wanted and (variant.get("product") or {}).get("id")
    ]
    if not candidates:
        return None
    order = {"ACTIVE": 0, "DRAFT": 1, "ARCHIVED": 2}
    best = min(candidates, key=lambda p: (order.get(str(p.get("status")), 3), -int(mappers.numeric_id(p["id"]) or 0)))
    return _read_product(client, str(best["id"]), location)


def _complete_lines(client: ShopifyClient, order: dict) -> int:
    """Read an order's lines past the first page into it (no line may be missed: each is a sale). Pages read."""
    lines = order.get("lineItems") or {}
    info = lines.get("pageInfo") or {}
    pages = 0
    while info.get("hasNextPage") and info.get("endCursor"):
        page = (client.execute("OrderLines", {"id": order["id"], "after": info["endCursor"]}).get("order") or {}).get(
            "lineItems"
        ) or {}
        pages += 1
        lines.setdefault("nodes", []).extend(mappers.nodes(page))
        info = page.get("pageInfo") or {}
    return pages


def _product_pages(
    client: ShopifyClient, query: str | None, location: str, *, first_page: Mapping | None
) -> tuple[list[dict], int]:
    """Products of a search, every page (the first may already be in hand). Returns (products, pages read)."""
    products: list[dict] = []
    pages = 0
    page = first_page
    if page is None:
        page = client.execute("ProductsPage", {"first": PRODUCT_PAGE_SIZE, "query": query, "locationId": location}).get(
            "products"
        )
        pages += 1
    seen_cursors: set[str] = set()
    while True:
        products.extend(mappers.nodes(page))
        info = (page or {}).get("pageInfo") or {}
        cursor = info.get("endCursor")
        if not info.get("hasNextPage") or not cursor or cursor in seen_cursors:
            break
        seen_cursors.add(cursor)
        page = client.execute(
            "ProductsPage", {"first": PRODUCT_PAGE_SIZE, "after": cursor, "query": query, "locationId": location}
        ).get("products")
        pages += 1
    return products, pages


def _product_set(connection, client: ShopifyClient, product_input: dict, location: str, *, what: str) -> dict:
    data = client.execute("ProductSet", {"input": product_input, "synchronous": True, "locationId": location})
    result = data.get("productSet") or {}
    _raise_and_keep(connection, str(product_input.get("id") or ""), result, what)
    product = result.get("product")
    if not product or not product.get("id"):
        raise TransientChannelError(
            f"Shopify accepted {what} but returned no product; it is looked up by SKU next time."
        )
    return product


def _set_quantity(
    client: ShopifyClient,
    product: Mapping[str, Any],
    sku: str,
    location: str,
    target: int,
    current: int | None,
    *,
    always: bool = False,
    last_pushed: int | None = None,
) -> None:
    """Set the available quantity with a compare check; on a stale compare, read again and decide.

    First, against what we last pushed: Shopify's figure lower than that, while we want more
    than it shows, means units went in Shopify since (a sale whose order is not recorded here
    yet, most likely), and putting them back on sale would oversell. Sold out: a permanent
    refusal (the engine then sees the product sold and reads its orders); some left: a
    transient one, tried again once the orders are in.

    Shopify's figure moved since we read it. If it now equals ours, nothing to do. If it went
    down while we want more (a sale in Shopify we have not recorded yet, most likely), it is
    not overwritten: a transient error makes the engine try again once that order is in. If
    it went up (a restock or a cancelled order there), ours is set over the fresh figure.
    `always` (ending: 0 is always right) sets it over whatever the fresh figure is.
    """
    variant = mappers.our_variant(product, sku) or mappers.our_variant(product)
    inventory_item = str(((variant or {}).get("inventoryItem") or {}).get("id") or "")
    if not inventory_item:
        raise PermanentChannelError(f"Shopify product {product.get('id')} has no inventory item for {sku}.")
    reference = REFERENCE.format(sku=re.sub(r"[^A-Za-z0-9_.-]", "-", sku or "item"))
    if not always and last_pushed is not None and current is not None and current < last_pushed:
        if target > current and current <= 0:
            raise PermanentChannelError(
                f"{sku} sold out on Shopify ({last_pushed} -> 0 since the last push) and its order is not recorded "
                "here yet: not put back on sale."
            )
        if target > current:
            raise TransientChannelError(
                f"Shopify's stock of {sku} went from {last_pushed} to {current} since the last push (a sale there?): "
                f"not overwritten with {target}; tried again once its orders are read."
            )
    compared = current
    for _attempt in range(3):
        if compared == target:
            return
        data = client.execute(
            "InventorySet", {"input": mappers.inventory_input(inventory_item, location, target, compared, reference)}
        )
        result = data.get("inventorySetQuantities") or {}
        codes = {str(e.get("code") or "") for e in result.get("userErrors") or []}
        if not codes:
            return
        if "COMPARE_QUANTITY_STALE" not in codes:
            raise_user_errors(result, f"the stock of {sku}")
        fresh_product = _read_product(client, str(product["id"]), location) or product
        fresh = mappers.variant_quantity(mappers.our_variant(fresh_product, sku) or mappers.our_variant(fresh_product))
        logger.info("shopify stock of %s moved from %s to %s meanwhile (we set %s)", sku, compared, fresh, target)
        if not always and fresh is not None and compared is not None and fresh < compared and target > fresh:
            raise TransientChannelError(
                f"Shopify's stock of {sku} went from {compared} to {fresh} meanwhile (a sale there?): not overwritten "
                f"with {target}; tried again once its orders are read."
            )
        compared = fresh
    raise TransientChannelError(f"Shopify's stock of {sku} kept changing while it was being set.")


def _raise_and_keep(connection: ShopifyConnection, product_id: str, result: Mapping | None, what: str) -> None:
    """userErrors: kept on the product's detail row (for the admin), then raised in staff's words."""
    errors = list((result or {}).get("userErrors") or [])
    if errors and product_id:
        ShopifyProductDetail.objects.filter(connection=connection, product_id=product_id).update(
            user_errors=errors, last_seen_at=timezone.now()
        )
    raise_user_errors(result, what)


def _detail_fields(product: Mapping[str, Any], sku: str) -> dict:
    variant = mappers.our_variant(product, sku) or mappers.our_variant(product) or {}
    return {
        "variant_id": str(variant.get("id") or "")[:100],
        "inventory_item_id": str((variant.get("inventoryItem") or {}).get("id") or "")[:100],
        "sku": str(variant.get("sku") or "")[:100],
        "title": str(product.get("title") or "")[:255],
        "handle": str(product.get("handle") or "")[:255],
        "status": str(product.get("status") or "")[:20],
        "quantity": mappers.variant_quantity(variant) if variant else None,
        "storefront_url": str(product.get("onlineStoreUrl") or "")[:500],
        "last_seen": dict(product),
        "last_seen_at": timezone.now(),
    }


def _remember(
    connection: ShopifyConnection,
    product: Mapping[str, Any] | None,
    sku: str,
    *,
    user_errors: list | None = None,
    notes: list[str] | None = None,
    pushed_quantity: int | None = None,
) -> None:
    """Keep what Shopify said about this product (one upsert statement)."""
    if not product or not product.get("id"):
        return
    fields = _detail_fields(product, sku)
    if pushed_quantity is not None:
        fields["pushed_quantity"] = max(0, pushed_quantity)
    if user_errors is not None:
        fields["user_errors"] = list(user_errors)
    if notes is not None:
        fields["notes"] = list(notes)
    ShopifyProductDetail.objects.bulk_create(
        [
            ShopifyProductDetail(
                account_id=connection.account_id, connection=connection, product_id=str(product["id"]), **fields
            )
        ],
        update_conflicts=True,
        unique_fields=["connection", "product_id"],
        update_fields=list(fields),
    )


def _remember_many(connection: ShopifyConnection, products: Iterable[Mapping[str, Any]]) -> None:
    rows = [
        ShopifyProductDetail(
            account_id=connection.account_id, connection=connection, product_id=str(p["id"]), **_detail_fields(p, "")
        )
        for p in products
        if p.get("id")
    ]
    if rows:
        ShopifyProductDetail.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["connection", "product_id"],
            update_fields=[name for name in _detail_fields({}, "")],
        )


def _pushed_quantity(connection: ShopifyConnection, product_id: str) -> int | None:
    return (
        ShopifyProductDetail.objects.filter(connection=connection, product_id=product_id)
        .values_list("pushed_quantity", flat=True)
        .first()
    )


def _forget(connection: ShopifyConnection, product_id: str) -> None:
    ShopifyProductDetail.objects.filter(connection=connection, product_id=str(product_id)).update(
        status="DELETED", quantity=None, last_seen_at=timezone.now()
    )
