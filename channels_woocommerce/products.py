"""Which of the shop's products is ours (adoption by SKU), and what the shop last said of each (detail rows)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.utils import timezone

from inventory.channels import ListingNotFound

from .client import WooCommerceClient
from .models import WooCommerceConnection, WooCommerceListingDetail

# Preference when several products carry our SKU (WooCommerce keeps SKUs unique, but a product in
# the trash or one made before the rule was on may share it): for sale first, then newest.
ADOPT_ORDER = ("publish", "private", "pending", "draft", "future")
# WooCommerce's codes for "this SKU is taken" (a create that an earlier, lost answer already made).
SKU_TAKEN = frozenset({"product_invalid_sku", "woocommerce_rest_product_not_created"})


def rank(product: Mapping) -> tuple[int, int]:
    """Sort key among products with our SKU: lower is the better one to adopt."""
    status = str(product.get("status") or "")
    order = ADOPT_ORDER.index(status) if status in ADOPT_ORDER else len(ADOPT_ORDER)
    try:
        newest = -int(product["id"])
    except (TypeError, ValueError, KeyError):
        newest = 0
    return order, newest


def best_product_to_adopt(products: Iterable[Mapping], sku: str) -> Mapping | None:
    candidates = [p for p in products if adoptable(p, sku)]
    return min(candidates, key=rank) if candidates else None


def adoptable(product: Mapping, sku: str) -> bool:
    if str(product.get("sku") or "").strip().casefold() != sku.strip().casefold():
        return False
    return product.get("status") != "trash" and product.get("type", "simple") == "simple"


def read_product(client: WooCommerceClient, product_id: str | int) -> dict | None:
    try:
        return client.get_product(product_id)
    except ListingNotFound:
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


def remember(connection: WooCommerceConnection, product: Mapping) -> None:
    remember_many(connection, [product])


def remember_many(connection: WooCommerceConnection, products: Iterable[Mapping]) -> None:
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


def remember_error(connection: WooCommerceConnection, sku: str, message: str) -> None:
    if not sku:
        return
    WooCommerceListingDetail.objects.update_or_create(
        connection=connection,
        sku=sku[:100],
        defaults={"account_id": connection.account_id, "last_error": message[:4000], "last_seen_at": timezone.now()},
    )


def forget(connection: WooCommerceConnection, external_id: str) -> None:
    WooCommerceListingDetail.objects.filter(connection=connection, product_id=str(external_id)).update(
        status="deleted", last_seen_at=timezone.now()
    )
