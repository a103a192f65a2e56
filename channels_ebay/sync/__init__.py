"""eBay's side of the channel contract (see inventory/channels.py).

A listing here is an offer of the Inventory API: `external_id` is the offerId (stable for the
SKU on the marketplace: a withdrawn offer is published again, not recreated). Publishing is
three resumable steps, each wrapped in `retry_transient`: the inventory item (GET, merge,
PUT: createOrReplace is a full replace), the offer (adopted by SKU when it exists; looked up
again before every create, so a create that timed out but was applied is found, never
duplicated), then publishOffer.

Revisions of a published listing are counted per SKU per day (eBay allows 250): a write whose
merged body equals what eBay holds is not sent, and a write past the budget is refused here
with a message staff can act on. These functions never write inventory rows; they keep
EbayListingDetail (this app's record of what eBay said, and of the revisions spent). One
exception, on purpose: a marketplace account deletion notice blanks that buyer's name and
address on their orders (services.buyer_data_erase), which eBay requires of every app that
keeps eBay user data, and which the engine has no service for yet.
"""

from ..client import BULK_LIMIT
from ..mappers import seo_fields
from .base import client_for, ebay_connection
from .check import check
from .listings import (
    PRICE_QUANTITY_FIELDS,
    BulkPublishOutcome,
    PriceQuantityChange,
    PriceQuantityOutcome,
    best_offer,
    bulk_publish,
    bulk_revise_price_quantity,
    end,
    find_listing,
    publish,
    read_all_listings,
    read_listing,
    revise,
    revise_many,
)
from .notifications import ORDER_TOPIC, parse_webhook, public_key, register_webhooks, webhook_challenge, webhook_orders
from .orders import legacy_listings_note, listing_scan_due_now, pull
from .revisions import REVISIONS_PER_DAY, RevisionBudgetSpent, ebay_today, revisions_left

NAME = "ebay"
LABEL = "eBay"
CONNECTION_MODEL = "channels_ebay.EbayConnection"
CONNECTION_SERIALIZER = "channels_ebay.serializers.EbayConnectionSerializer"
DEFAULT_PRIORITY = 40
# The engine batches price and quantity changes of many listings into bulkUpdatePriceQuantity calls.
REVISE_MANY_FIELDS = PRICE_QUANTITY_FIELDS
REVISE_MANY_LIMIT = BULK_LIMIT
# Title and description are cut to eBay's limits (80 / 4000 characters): what eBay shows is not ours as pushed.
EDITS_SEEN = frozenset({"price", "quantity"})

__all__ = [
    "CONNECTION_MODEL",
    "CONNECTION_SERIALIZER",
    "DEFAULT_PRIORITY",
    "LABEL",
    "NAME",
    "ORDER_TOPIC",
    "REVISE_MANY_FIELDS",
    "REVISE_MANY_LIMIT",
    "REVISIONS_PER_DAY",
    "BulkPublishOutcome",
    "PriceQuantityChange",
    "PriceQuantityOutcome",
    "RevisionBudgetSpent",
    "best_offer",
    "bulk_publish",
    "bulk_revise_price_quantity",
    "check",
    "client_for",
    "ebay_connection",
    "ebay_today",
    "end",
    "find_listing",
    "legacy_listings_note",
    "listing_scan_due_now",
    "parse_webhook",
    "public_key",
    "publish",
    "pull",
    "read_all_listings",
    "read_listing",
    "register_webhooks",
    "revise",
    "revise_many",
    "revisions_left",
    "seo_fields",
    "webhook_challenge",
    "webhook_orders",
]
