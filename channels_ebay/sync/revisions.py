"""eBay's 250 revisions per listing per calendar day: counted per SKU, refused here before a call."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inventory.channels import PermanentChannelError

from ..models import EbayConnection, EbayListingDetail

REVISIONS_PER_DAY = 250
EBAY_DAY = ZoneInfo("America/Los_Angeles")  # eBay's calendar day


# --- revision budget -----------------------------------------------------------------------------


def ebay_today() -> date:
    return timezone.now().astimezone(EBAY_DAY).date()


def revisions_left(connection: EbayConnection, sku: str) -> int:
    row = EbayListingDetail.objects.filter(connection=connection, sku=sku).values("revision_day", "revisions_today")
    row = row.first()
    if not row or row["revision_day"] != ebay_today():
        return REVISIONS_PER_DAY
    return max(REVISIONS_PER_DAY - row["revisions_today"], 0)


class RevisionBudgetSpent(PermanentChannelError):
    """eBay's 250 revisions per listing per day are used up for this listing."""


def budget_refusal(sku: str) -> RevisionBudgetSpent:
    return RevisionBudgetSpent(
        f"eBay allows {REVISIONS_PER_DAY} revisions per listing per day and {sku} has used them all today: "
        "the change is kept and sent after midnight Pacific time (retry the listing then)."
    )


def spend_revision(connection: EbayConnection, sku: str, n: int = 1) -> None:
    """Count `n` revisions of this listing today, or refuse when that would pass eBay's daily limit."""
    today = ebay_today()
    with transaction.atomic():
        row, _ = EbayListingDetail.objects.select_for_update().get_or_create(
            connection=connection, sku=sku, defaults={"account_id": connection.account_id}
        )
        spent = row.revisions_today if row.revision_day == today else 0
        if spent + n > REVISIONS_PER_DAY:
            raise budget_refusal(sku)
        EbayListingDetail.objects.filter(pk=row.pk).update(revision_day=today, revisions_today=spent + n)


def spend_revisions(connection: EbayConnection, skus: list[str]) -> set[str]:
    """One revision for each SKU in a few statements (a bulk sweep); returns the SKUs out of budget."""
    today = ebay_today()
    with transaction.atomic():
        EbayListingDetail.objects.bulk_create(
            [EbayListingDetail(account_id=connection.account_id, connection=connection, sku=sku) for sku in skus],
            ignore_conflicts=True,
        )
        rows = list(
            EbayListingDetail.objects.select_for_update()
            .filter(connection=connection, sku__in=skus)
            .order_by("pk")
            .only("pk", "sku", "revision_day", "revisions_today")
        )
        spent_out = set()
        for row in rows:
            spent = row.revisions_today if row.revision_day == today else 0
            if spent + 1 > REVISIONS_PER_DAY:
                spent_out.add(row.sku)
                continue
            row.revision_day, row.revisions_today = today, spent + 1
        EbayListingDetail.objects.bulk_update(
            [row for row in rows if row.sku not in spent_out], ["revision_day", "revisions_today"], batch_size=500
        )
    return spent_out


def refund_revision(connection: EbayConnection, sku: str) -> None:
    EbayListingDetail.objects.filter(
        connection=connection, sku=sku, revision_day=ebay_today(), revisions_today__gt=0
    ).update(revisions_today=F("revisions_today") - 1)
