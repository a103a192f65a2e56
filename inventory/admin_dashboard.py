"""The admin index as a working view: what needs attention today, and today's sales per shop."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.urls import reverse

from .selectors import attention_today, sales_today


def dashboard_context(request) -> dict:
    user = request.user
    if not user.is_authenticated or (user.account_id is None and not user.is_superuser):
        return {}
    counts = attention_today(user=user)
    items = reverse("admin:inventory_item_changelist")
    tiles = [
        (
            "Double sales",
            counts.double_sales,
            reverse("admin:inventory_conflict_changelist") + "?status__exact=open",
            "Settle them first: one buyer must be cancelled and refunded.",
        ),
        (
            "Listings in error",
            counts.listings_in_error,
            reverse("admin:inventory_channellisting_changelist") + "?state=error",
            "A shop refused or could not be reached: open one to see why, then retry.",
        ),
        (
            "Orders to ship",
            counts.orders_to_ship,
            reverse("admin:inventory_order_changelist") + "?progress=to_ship",
            "Paid and not shipped yet.",
        ),
        (
            "Items to review",
            counts.items_to_review,
            items + "?needs_review__exact=1",
            "Imported from a shop: check them, then mark them reviewed.",
        ),
        ("Low stock", counts.low_stock, items + "?stock=low", "Multi-unit stock with 2 or fewer left."),
        (
            "Open alerts",
            counts.open_alerts,
            reverse("admin:inventory_alert_changelist") + "?state=open",
            "Everything the sync raised that nobody has acknowledged.",
        ),
    ]
    sales = [
        {
            "shop": row["connection__name"] or ("In the shop" if row["channel"] == "manual" else row["channel"]),
            "orders": row["orders"],
            "total": _money(row["total"], row["currency"]),
        }
        for row in sales_today(user=user)
    ]
    return {
        "dashboard_tiles": [
            {"label": label, "count": n, "url": url, "help": help_text, "slug": label.lower().replace(" ", "-")}
            for label, n, url, help_text in tiles
        ],
        "sales_today": sales,
        "orders_url": reverse("admin:inventory_order_changelist"),
    }


def _money(amount, currency: str) -> str:
    """Money with two decimals and thousands separators, whatever the database hands back
    (SQLite sums decimals as floats)."""
    value = Decimal(str(amount or 0)).quantize(Decimal("0.01"))
    return f"{intcomma(f'{value:.2f}')}\N{NO-BREAK SPACE}{currency}"
