"""Sync health per connection and the time from a sale to ended everywhere."""

from __future__ import annotations

from django.db.models import (
    Avg,
    Count,
    Max,
    Q,
    Sum,
)

from ...models import (
    Alert,
    ChannelConnection,
    ChannelListing,
    DesiredState,
    Item,
    ListingState,
    Order,
    SyncKind,
    SyncRun,
    SyncStatus,
)
from .base import MANUAL, AnalyticsFilter, PercentileCont, Seconds, interval, ratio, seconds_of

# --- Sync health -------------------------------------------------------------------------


def sync_health(*, user, f: AnalyticsFilter) -> list[dict]:
    """Per connection: push success rate in the period, how fast its listings were ended after
    a sale elsewhere (mean and p95 seconds from recording the sale to the confirmed end), the
    share of its orders that came by webhook rather than by a pull, its last successful pull
    and its open errors (listings in error, open alerts).

    One grouped query per figure (seven in all, whatever the number of connections).
    """
    connections = ChannelConnection.objects.for_user(user).order_by("priority", "pk")
    if f.channel == MANUAL:
        return []
    if f.channel:
        connections = connections.filter(channel=f.channel)
    ids = list(connections.values_list("pk", "name", "channel", "enabled"))
    if not ids:
        return []
    pks = [pk for pk, *_rest in ids]
    in_period = Q(started_at__gte=f.start, started_at__lt=f.end)
    runs = SyncRun.objects.filter(connection_id__in=pks).filter(in_period).order_by()
    pushes = {
        row["connection_id"]: row
        for row in runs.filter(kind=SyncKind.PUSH)
        .values("connection_id")
        .annotate(
            pushes=Count("*"),
            ok=Count("pk", filter=Q(status=SyncStatus.OK)),
            failed=Count("pk", filter=Q(status__in=[SyncStatus.FAILED, SyncStatus.PARTIAL])),
        )
    }
    pulled = dict(
        runs.filter(kind=SyncKind.PULL)
        .values("connection_id")
        .annotate(n=Sum("created"))
        .values_list("connection_id", "n")
    )
    last_pull = dict(
        SyncRun.objects.filter(connection_id__in=pks, kind=SyncKind.PULL, status=SyncStatus.OK)
        .order_by()
        .values("connection_id")
        .annotate(at=Max("finished_at"))
        .values_list("connection_id", "at")
    )
    recorded = dict(
        Order.objects.filter(connection_id__in=pks, created_at__gte=f.start, created_at__lt=f.end)
        .order_by()
        .values("connection_id")
        .annotate(n=Count("*"))
        .values_list("connection_id", "n")
    )
    seconds = Seconds(interval("ended_at", "item__sold_recorded_at"))
    ends = {
        row["connection_id"]: row
        for row in ChannelListing.objects.filter(
            connection_id__in=pks,
            end_reason="sold_elsewhere",
            ended_at__isnull=False,
            item__sold_recorded_at__gte=f.start,
            item__sold_recorded_at__lt=f.end,
        )
        .order_by()
        .values("connection_id")
        .annotate(ended=Count("*"), mean=Avg(seconds), p95=PercentileCont(seconds, 0.95))
    }
    in_error = dict(
        ChannelListing.objects.filter(connection_id__in=pks, actual_state=ListingState.ERROR)
        .order_by()
        .values("connection_id")
        .annotate(n=Count("*"))
        .values_list("connection_id", "n")
    )
    alerts = dict(
        Alert.objects.filter(connection_id__in=pks, resolved_at__isnull=True)
        .order_by()
        .values("connection_id")
        .annotate(n=Count("*"))
        .values_list("connection_id", "n")
    )
    rows = []
    for pk, name, channel_name, enabled in ids:
        push = pushes.get(pk, {"pushes": 0, "ok": 0, "failed": 0})
        total_orders, by_pull = recorded.get(pk, 0), min(pulled.get(pk) or 0, recorded.get(pk, 0))
        end = ends.get(pk, {"ended": 0, "mean": None, "p95": None})
        rows.append(
            {
                "connection_id": pk,
                "shop": name,
                "channel": channel_name,
                "enabled": enabled,
                "pushes": push["pushes"],
                "pushes_failed": push["failed"],
                "push_success_rate": ratio(push["ok"], push["pushes"]),
                "ends_after_sale": end["ended"],
                "end_seconds_mean": seconds_of(end["mean"]),
                "end_seconds_p95": seconds_of(end["p95"]),
                "orders_recorded": total_orders,
                "orders_by_webhook": total_orders - by_pull,
                "orders_by_pull": by_pull,
                "webhook_share": ratio(total_orders - by_pull, total_orders),
                "last_successful_pull": last_pull.get(pk),
                "listings_in_error": in_error.get(pk, 0),
                "open_alerts": alerts.get(pk, 0),
            }
        )
    return rows


def sale_end_everywhere(*, user, f: AnalyticsFilter) -> dict:
    """Over the sales recorded in the period whose other listings are all confirmed ended:
    how many, and mean / p95 seconds from recording the sale to the last confirmed end."""
    elsewhere = Q(listings__end_reason="sold_elsewhere", listings__desired_state=DesiredState.ENDED)
    items = Item.objects.for_user(user).filter(sold_recorded_at__gte=f.start, sold_recorded_at__lt=f.end)
    if f.channel:
        items = items.filter(sold_on__channel=f.channel) if f.channel != MANUAL else items.filter(sold_on=None)
    per_sale = (
        items.order_by()
        .annotate(
            last_end=Max("listings__ended_at", filter=elsewhere),
            not_ended=Count(
                "listings",
                filter=elsewhere & ~Q(listings__actual_state__in=[ListingState.ENDED, ListingState.SOLD]),
            ),
        )
        .filter(last_end__isnull=False, not_ended=0)
        .annotate(took=Seconds(interval("last_end", "sold_recorded_at")))
    )
    figures = per_sale.aggregate(sales=Count("pk"), mean=Avg("took"), p95=PercentileCont("took", 0.95))
    return {
        "sales": figures["sales"],
        "end_seconds_mean": seconds_of(figures["mean"]),
        "end_seconds_p95": seconds_of(figures["p95"]),
    }
