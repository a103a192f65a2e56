"""Amazon's side of the channel contract (see inventory/channels.py).

A listing on Amazon is identified by our SKU (seller id + SKU is Amazon's own key), so the
external id is the SKU and a publish can never make a second listing: putListingsItem is a
full replace of the one listing with that SKU. The offer goes on an existing catalogue page
(LISTING_OFFER_ONLY with the item's ASIN). Amazon accepts a submission before it processes
it: ACCEPTED is not live; a listing is live when Amazon shows it BUYABLE, and in error when a
submission is INVALID or the listing carries ERROR issues (shown in Amazon's words).

Ending is quantity 0 (Amazon's way to take an offer off sale without losing the listing);
relisting puts the quantity back. These functions never write inventory rows; they keep
AmazonListingDetail (what Amazon last said) up to date.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
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
    RateLimited,
    StillProcessing,
    WebhookSeen,
    retry_transient,
)

from . import mappers, notifications
from .client import LwaCredentials, SpApiClient
from .mappers import seo_fields  # noqa: F401  (the contract's preview of the SEO texts)
from .models import ORDER_SEARCH_INTERVAL, AmazonConnection, AmazonItemAttributes, AmazonListingDetail

logger = logging.getLogger(__name__)

NAME = "amazon"
LABEL = "Amazon"
CONNECTION_MODEL = "channels_amazon.AmazonConnection"
CONNECTION_SERIALIZER = "channels_amazon.serializers.AmazonConnectionSerializer"
DEFAULT_PRIORITY = 70
EDITS_SEEN = frozenset({"price", "quantity"})  # title and description are the catalogue page's
WEBHOOK_SETUP = (
    "Amazon does not post webhooks: notifications go to an SQS queue. Set the connection's SQS queue URL, region "
    "and AWS keys and run `manage.py amazon_notifications`; without a queue, orders are read by polling."
)

# Orders are read from a little before the watermark (an order updated in the same second as the
# last one seen must not slip through); the engine dedupes orders.
ORDER_OVERLAP = timedelta(minutes=2)
FIRST_PULL_LOOKBACK = timedelta(days=1)
# After an accepted submission, how many quick read-backs before the engine's backoff takes over.
READ_BACK_TRIES = 3

_clients = threading.local()


# --- connection and client ------------------------------------------------------------


def amazon_connection(connection) -> AmazonConnection:
    if isinstance(connection, AmazonConnection):
        return connection
    return AmazonConnection.objects.select_related("account").get(pk=connection.pk)


def client_for(connection) -> SpApiClient:
    """A client per thread and connection settings (keep-alive; the token itself is in the cache)."""
    connection = amazon_connection(connection)
    credentials = LwaCredentials(
        connection.lwa_client_id, connection.lwa_client_secret, connection.refresh_token, connection.token_url
    )
    key = (connection.pk, connection.api_host, connection.seller_id, connection.marketplace_id, credentials.cache_key)
    cached: dict = getattr(_clients, "by_connection", None) or {}
    _clients.by_connection = cached
    client = cached.get(key)
    if client is None:
        for stale in [k for k in cached if k[0] == connection.pk]:
            cached.pop(stale).session.close()
        client = SpApiClient(
            connection.api_host,
            connection.seller_id,
            connection.marketplace_id,
            credentials,
            timeout=connection.timeout_seconds,
        )
        cached[key] = client
    return client


def item_attributes(connection: AmazonConnection, sku: str) -> tuple[str, str, str]:
    """(ASIN, product type, condition note) of our item with this SKU."""
    row = (
        AmazonItemAttributes.objects.filter(item__account_id=connection.account_id, item__sku=sku)
        .only("asin", "product_type", "condition_note")
        .first()
    )
    if row is None:
        return "", connection.default_product_type, ""
    return row.asin, row.product_type or connection.default_product_type, row.condition_note


# --- check ----------------------------------------------------------------------------


def check(connection) -> ConnectionCheck:
    """Reads only: the LWA token, one page of the seller's listings, and how sales reach us."""
    connection = amazon_connection(connection)
    steps = []
    try:
        client = client_for(connection)
        client.access_token(fresh=True)
    except ChannelError as error:
        hint = " Check the LWA token URL, or try again in a minute." if error.transient else ""
        return ConnectionCheck(steps=(CheckStep("Login with Amazon", False, f"{error.message}{hint}"),))
    steps.append(CheckStep("Login with Amazon", True, "The refresh token gives an access token."))
    try:
        page = next(client.search_listings(page_size=1))
        count = page.get("numberOfResults", len(page.get("items") or []))
        steps.append(
            CheckStep(
                "Seller and marketplace",
                True,
                f"Seller {connection.seller_id} has {count} listing(s) in marketplace {connection.marketplace_id}.",
            )
        )
    except ChannelError as error:
        steps.append(
            CheckStep(
                "Seller and marketplace",
                False,
                f"Reading listings failed: {error.message}. Check the seller id (merchant token) and marketplace ids.",
            )
        )
    bad = sorted(
        f"{ours} -> {theirs}"
        for ours, theirs in (connection.condition_types or {}).items()
        if theirs not in mappers.AMAZON_CONDITION_TYPES
    )
    if bad:
        steps.append(CheckStep("Conditions", False, "Not Amazon condition types: " + ", ".join(bad) + "."))
    if not connection.sqs_queue_url and connection.pull_interval_seconds < ORDER_SEARCH_INTERVAL:
        steps.append(
            CheckStep(
                "Pull interval",
                False,
                f"Pulls every {connection.pull_interval_seconds} s spend Amazon's order-search burst of 20 in "
                f"{20 * connection.pull_interval_seconds // 60} minutes; after that most pulls wait for the rate "
                f"(one search every ~178 s). Set {ORDER_SEARCH_INTERVAL} s or more, or add an SQS queue.",
            )
        )
    steps.append(CheckStep("Sales", True, connection.notification_mode + "."))
    return ConnectionCheck(steps=tuple(steps))


# --- publish / revise / end / read ----------------------------------------------------


def publish(connection, payload: ListingPayload, external_id: str | None) -> PublishResult:
    """Offer the item on its ASIN, or adopt the listing that already has this SKU.

    The listing is read first (getListingsItem by SKU): one that already says what we want is
    adopted as it is; one that differs gets only the differing attributes by patch; only when
    Amazon has none is it created by put. Every write is checked with mode=VALIDATION_PREVIEW
    first; an INVALID answer is raised with Amazon's issues. Then the listing is read back:
    live only when Amazon shows it BUYABLE.
    """
    connection = amazon_connection(connection)
    asin, product_type, note = item_attributes(connection, payload.sku)
    condition = mappers.condition_type(payload.condition, connection.condition_types)
    problems = mappers.listing_problems(payload, asin=asin, product_type=product_type, condition=condition)
    if problems:
        raise PermanentChannelError("Amazon cannot list this item: " + "; ".join(problems) + ".")
    client = client_for(connection)
    marketplace, code = connection.marketplace_id, connection.fulfillment_channel_code
    attributes = mappers.offer_attributes(
        payload, asin=asin, condition=condition, marketplace_id=marketplace, channel_code=code, condition_note=note
    )

    existing = _read(client, payload.sku, retry=True)
    if existing is not None:
        differ = mappers.offer_matches(existing, attributes, marketplace, code)
        head = mappers.summary(existing, marketplace)
        existing_asin = str(head.get("asin") or "")
        if existing_asin and existing_asin != asin:
            raise PermanentChannelError(
                f"Amazon already has SKU {payload.sku} on ASIN {existing_asin}, not {asin}: "
                "fix the item's ASIN, or delete that listing in Seller Central first."
            )
        if differ:
            body = mappers.patch_body(str(head.get("productType") or product_type), differ)
            _submit(connection, client.patch_listing, payload.sku, body)
    else:
        _submit(connection, client.put_listing, payload.sku, mappers.put_body(product_type, attributes))

    listing = retry_transient(_buyable, connection, client, payload.sku, attempts=READ_BACK_TRIES, delay=0.2)
    return PublishResult(
        external_id=payload.sku,
        url=mappers.listing_url(str(mappers.summary(listing, marketplace).get("asin") or asin), marketplace),
        adopted=existing is not None,
    )


def _submit(connection: AmazonConnection, write, sku: str, body: Mapping) -> dict:
    """Validate (mode=VALIDATION_PREVIEW), then write for real. INVALID -> PermanentChannelError."""
    preview = retry_transient(write, sku, body, preview=True)
    _refuse_invalid(connection, sku, preview, "validation")
    # A write is keyed by SKU: repeating one after a lost answer changes nothing twice.
    answer = retry_transient(write, sku, body)
    _refuse_invalid(connection, sku, answer, "submission")
    _remember_submission(connection, sku, answer)
    return answer


def _refuse_invalid(connection: AmazonConnection, sku: str, answer: Mapping, what: str) -> None:
    if answer.get("status") != "INVALID":
        return
    issues = list(answer.get("issues") or [])
    _remember_submission(connection, sku, answer)
    raise PermanentChannelError(
        f"Amazon refused the listing {sku} ({what} INVALID): {mappers.issues_text(mappers.errors_of(issues) or issues)}",
        body={"sku": sku, "issues": issues},
    )


def _buyable(connection: AmazonConnection, client: SpApiClient, sku: str) -> dict:
    listing = _read(client, sku)
    if listing is None:
        raise StillProcessing(f"Amazon accepted {sku} but does not show it yet.")
    _remember(connection, listing)
    marketplace = connection.marketplace_id
    errors = mappers.errors_of(listing.get("issues") or [])
    if mappers.is_buyable(listing, marketplace):
        return listing
    if errors:
        raise PermanentChannelError(
            f"Amazon holds listing {sku} back: {mappers.issues_text(errors)}", body={"sku": sku, "issues": errors}
        )
    raise StillProcessing(f"Amazon accepted {sku} but it is not buyable yet (still processing).")


def revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None:
    """Patch only the offer attributes the changed fields touch (price, quantity, condition).

    Title, description and photos belong to Amazon's catalogue page, not to our offer: a change
    of those alone makes no call.
    """
    connection = amazon_connection(connection)
    condition = mappers.condition_type(payload.condition, connection.condition_types)
    attributes = mappers.changed_attributes(
        payload,
        fields,
        condition=condition,
        marketplace_id=connection.marketplace_id,
        channel_code=connection.fulfillment_channel_code,
    )
    if not attributes:
        return
    client = client_for(connection)
    _asin, product_type, _note = item_attributes(connection, payload.sku)
    answer = client.patch_listing(external_id, mappers.patch_body(product_type, attributes))
    if answer.get("status") == "INVALID":
        if _read(client, external_id) is None:
            raise ListingNotFound(f"Amazon has no listing {external_id} any more.")
        _refuse_invalid(connection, external_id, answer, "patch")
    _remember_submission(connection, external_id, answer)


def end(connection, external_id: str, reason: str) -> EndResult:
    """Quantity 0 by patch, then read back: ended when Amazon shows quantity 0 (or no listing)."""
    connection = amazon_connection(connection)
    client = client_for(connection)
    code = connection.fulfillment_channel_code
    listing = _read(client, external_id, retry=True)
    if listing is None:
        return EndResult(confirmed=True, state="ended")
    if mappers.listing_quantity(listing, code) != 0:
        product_type = str(mappers.summary(listing, connection.marketplace_id).get("productType") or "")
        if not product_type:
            product_type = item_attributes(connection, external_id)[1]
        body = mappers.patch_body(product_type, {"fulfillment_availability": mappers.fulfillment_availability(0, code)})
        # Quantity 0 twice is quantity 0; an end may use the tokens revises leave in reserve.
        answer = retry_transient(client.patch_listing, external_id, body, critical=True)
        _refuse_invalid(connection, external_id, answer, "end")
        listing = _read(client, external_id, retry=True)
        if listing is None:
            return EndResult(confirmed=True, state="ended")
    _remember(connection, listing)
    state = mappers.listing_state(listing, connection.marketplace_id, code)
    return EndResult(confirmed=state == "ended", state=state)


def read_listing(connection, external_id: str) -> ListingSeen | None:
    connection = amazon_connection(connection)
    listing = _read(client_for(connection), external_id)
    if listing is None:
        return None
    _remember(connection, listing)
    return mappers.listing_seen(listing, connection.marketplace_id, connection.fulfillment_channel_code)


def find_listing(connection, sku: str) -> ListingSeen | None:
    """Our listing with this SKU on Amazon: the SKU is Amazon's key, so it is one read."""
    return read_listing(connection, sku)


def read_all_listings(connection) -> Iterator[ListingSeen]:
    connection = amazon_connection(connection)
    for page in client_for(connection).search_listings():
        for raw in page.get("items") or []:
            if raw.get("sku"):
                yield mappers.listing_seen(raw, connection.marketplace_id, connection.fulfillment_channel_code)


# --- pull -----------------------------------------------------------------------------


def pull(connection, since: datetime | None, *, full_scan: bool = False) -> PullResult:
    """Orders updated since the watermark (searchOrders, paginationToken), and every listing once
    per scan interval (searchListingsItems). Reads only; one page when nothing changed.

    searchOrders allows a burst of 20 then one call every 3 minutes: a page that would wait
    longer than a moment is raised as RateLimited, the watermark stays, and the next pull reads
    from it again.
    """
    connection = amazon_connection(connection)
    client = client_for(connection)
    result = PullResult(watermark=since)
    start = since - ORDER_OVERLAP if since else timezone.now() - FIRST_PULL_LOOKBACK
    orders: dict[str, OrderSeen] = {}
    complete = False
    try:
        for page in client.search_orders(mappers.format_time(start)):
            result.pages_read += 1
            for raw in page.get("orders") or []:
                try:
                    order = mappers.order_seen(raw)
                except ValueError:
                    logger.warning("Skipped an Amazon order that could not be read: %s", raw.get("orderId"))
                    continue
                orders[order.external_id] = order
        complete = True
        cache.set(_orders_read_key(connection), time.time(), timeout=24 * 3600)
    except RateLimited:
        # Every listing notification asks the engine for a pull, and searchOrders refills one call
        # every ~178 s: when the bucket is spent and orders were read moments ago, this pull reads
        # no more (sales still arrive by ORDER_CHANGE, and the watermark stays for the next pull).
        # A connection whose orders have not been read for a while is told so.
        last = cache.get(_orders_read_key(connection))
        if not last or time.time() - float(last) > 2 * ORDER_SEARCH_INTERVAL:
            raise
        logger.info("Amazon order search of %s deferred: its rate is spent and orders were just read.", connection)
    result.orders = list(orders.values())
    newest = max((o.updated_at for o in result.orders if o.updated_at), default=None)
    if complete and newest and (result.watermark is None or newest > result.watermark):
        result.watermark = newest  # never past pages not read yet

    if full_scan or _listing_scan_due(connection, first_pull=since is None):
        try:
            raws = []
            for page in client.search_listings():
                result.pages_read += 1
                raws.extend(raw for raw in page.get("items") or [] if raw.get("sku"))
        except Exception:
            cache.delete(_scan_key(connection))
            raise
        result.listings = [
            mappers.listing_seen(raw, connection.marketplace_id, connection.fulfillment_channel_code) for raw in raws
        ]
        result.listings_complete = True
    return result


# --- notifications (stored in the webhook inbox by the SQS consumer) -----------------------


def parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen:
    """A notification (from the SQS queue), checked against Amazon's schema, keyed by NotificationId."""
    return notifications.identify(body)


def webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]:
    """The order an ORDER_CHANGE notification is about, read from Amazon (getOrder) before anything acts on it."""
    order_id = notifications.order_id(event)
    if not order_id:
        return []
    fresh = client_for(connection).get_order(order_id)
    if fresh is None:
        logger.warning("Amazon notification for order %s, which Amazon does not have for this seller.", order_id)
        return []
    return [mappers.order_seen(fresh)]


def order_with_address(connection, order_id: str) -> OrderSeen | None:
    """The order with the buyer's name and shipping address, for a packing slip or a shipment only:
    read with a Restricted Data Token asked for that one call. Pulls never read them."""
    fresh = client_for(connection).get_order_with_buyer(order_id)
    return None if fresh is None else mappers.order_seen(fresh)


def confirm_shipment(
    connection, order_id: str, *, carrier_code: str, tracking_number: str, shipped_at: datetime, carrier_name: str = ""
) -> None:
    """Tell Amazon the order shipped, with carrier and tracking (every line of the order in one package).

    Called through `ship_order` when staff mark the order shipped (inventory.services.orders.order_ship).
    """
    connection = amazon_connection(connection)
    client = client_for(connection)
    order = client.get_order(order_id)
    if order is None:
        raise PermanentChannelError(f"Amazon has no order {order_id} for this seller.")
    package = {
        "packageReferenceId": "1",
        "carrierCode": carrier_code,
        "trackingNumber": tracking_number,
        "shipDate": mappers.format_time(shipped_at),
        "orderItems": [
            {"orderItemId": line["orderItemId"], "quantity": int(line["quantityOrdered"])}
            for line in order.get("orderItems") or []
        ],
    }
    if carrier_name:
        package["carrierName"] = carrier_name
    client.confirm_shipment(order_id, {"marketplaceId": connection.marketplace_id, "packageDetail": package})


def register_webhooks(connection, base_url: str) -> list[str]:
    """Subscribe ORDER_CHANGE and the listing notifications to the connection's SQS queue.

    Amazon posts no webhooks, so `base_url` is not used: the destination is the queue (its ARN
    read with boto3), created once by the grantless createDestination; each subscription is
    created once (createSubscription with the seller's token). Idempotent: what exists is kept.
    """
    connection = amazon_connection(connection)
    if not connection.sqs_queue_url:
        return [
            "No SQS queue is set: Amazon notifications need one (set its URL, region and AWS keys). "
            "Until then sales are read by polling only."
        ]
    from .sqs import sqs_client

    try:
        arn = sqs_client(connection).get_queue_attributes(
            QueueUrl=connection.sqs_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
    except Exception as error:  # boto3 raises its own error classes; say what to fix
        raise PermanentChannelError(
            f"Could not read the SQS queue {connection.sqs_queue_url} ({error.__class__.__name__}): "
            "check its URL, region and the AWS keys."
        ) from error
    client = client_for(connection)
    lines = []
    destination = next(
        (d for d in client.destinations() if ((d.get("resource") or {}).get("sqs") or {}).get("arn") == arn), None
    )
    if destination is None:
        destination = client.create_sqs_destination(f"back-office-{connection.pk}", arn)
        lines.append(f"Destination {destination['destinationId']} created for {arn}.")
    else:
        lines.append(f"Destination {destination['destinationId']} for {arn} kept.")
    for kind in notifications.SUBSCRIBED:
        current = client.subscription(kind)
        if current and current.get("destinationId") == destination["destinationId"]:
            lines.append(f"{kind}: subscribed (kept).")
        elif current:
            lines.append(
                f"{kind}: already subscribed to another destination ({current.get('destinationId')}); "
                "delete that subscription first to move it here."
            )
        else:
            client.create_subscription(kind, destination["destinationId"])
            lines.append(f"{kind}: subscribed.")
    return lines


# --- helpers --------------------------------------------------------------------------


def _read(client: SpApiClient, sku: str, *, retry: bool = False) -> dict | None:
    try:
        return retry_transient(client.get_listing, sku) if retry else client.get_listing(sku)
    except ListingNotFound:
        return None


def _orders_read_key(connection: AmazonConnection) -> str:
    return f"channels_amazon:orders-read:{connection.pk}"


def _scan_key(connection: AmazonConnection) -> str:
    return f"channels_amazon:listing-scan:{connection.pk}"


def _listing_scan_due(connection: AmazonConnection, *, first_pull: bool) -> bool:
    interval = connection.listing_scan_interval_seconds
    if interval == 0:
        return True
    if first_pull:
        cache.set(_scan_key(connection), timezone.now().isoformat(), timeout=interval)
        return True
    return cache.add(_scan_key(connection), timezone.now().isoformat(), timeout=interval)


def _upsert(connection: AmazonConnection, sku: str, fields: dict) -> None:
    fields = {**fields, "last_seen_at": timezone.now()}
    AmazonListingDetail.objects.bulk_create(
        [AmazonListingDetail(account_id=connection.account_id, connection=connection, sku=sku, **fields)],
        update_conflicts=True,
        unique_fields=["connection", "sku"],
        update_fields=list(fields),
    )


def _remember(connection: AmazonConnection, listing: Mapping) -> None:
    sku = str(listing.get("sku") or "")
    if not sku:
        return
    head = mappers.summary(listing, connection.marketplace_id)
    _upsert(
        connection,
        sku,
        {
            "asin": str(head.get("asin") or "")[:10],
            "product_type": str(head.get("productType") or "")[:100],
            "status": list(head.get("status") or []),
            "issues": list(listing.get("issues") or []),
            "last_seen": dict(listing),
        },
    )


def _remember_submission(connection: AmazonConnection, sku: str, answer: Mapping) -> None:
    _upsert(
        connection,
        sku,
        {
            "submission_status": str(answer.get("status") or "")[:20],
            "submission_id": str(answer.get("submissionId") or "")[:100],
            "issues": list(answer.get("issues") or []),
        },
    )


# Carrier codes Amazon knows by name; anything else goes as "Other" with the carrier's own name.
AMAZON_CARRIER_CODES = {"UPS": "UPS", "USPS": "USPS", "FEDEX": "FedEx", "DHL": "DHL", "DHL EXPRESS": "DHL"}


def ship_order(connection, external_id: str, carrier: str, tracking_number: str) -> None:
    """The contract's shipment step (staff marked the order shipped): confirmShipment with the tracking."""
    code = AMAZON_CARRIER_CODES.get(carrier.strip().upper(), "Other")
    confirm_shipment(
        connection,
        external_id,
        carrier_code=code,
        tracking_number=tracking_number,
        shipped_at=timezone.now(),
        carrier_name="" if code != "Other" else carrier,
    )
