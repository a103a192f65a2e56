"""Alerts for staff: one open alert per cause, counted when seen again, resolved when the cause
goes away (or by staff with a note), mailed to the people who want them.

Severity comes from the kind (DEFAULT_SEVERITY), overridden per account
(`Account.alert_severities`). Critical alerts are mailed at once, after the transaction that
raised them commits; the others go out in a daily digest (`alerts_digest_send`). Each person
can mute severities (`User.alert_emails_muted`). Mail goes only to the account's own staff.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Account

from ..models import Alert, AlertKind, AlertSeverity, Conflict, ConflictStatus, Item
from ..selectors import URGENT_SEVERITIES, urgent_alert_count_forget

log = logging.getLogger(__name__)

DEFAULT_SEVERITY = {
    AlertKind.CONFLICT: AlertSeverity.CRITICAL,
    AlertKind.NOT_ENDED: AlertSeverity.CRITICAL,
    AlertKind.SYNC_ERROR: AlertSeverity.HIGH,
    AlertKind.LISTING_MISSING: AlertSeverity.HIGH,
    AlertKind.LISTING_MISMATCH: AlertSeverity.HIGH,
    AlertKind.CONNECTION: AlertSeverity.HIGH,
    AlertKind.WEBHOOKS_STOPPED: AlertSeverity.MEDIUM,
    AlertKind.CHANNEL_EDIT: AlertSeverity.MEDIUM,
    AlertKind.PRICE_DRIFT: AlertSeverity.MEDIUM,
    AlertKind.OUT_OF_STOCK: AlertSeverity.MEDIUM,
    AlertKind.LOW_STOCK: AlertSeverity.LOW,
    AlertKind.REVIEW: AlertSeverity.LOW,
}
SEVERITY_ORDER = [AlertSeverity.CRITICAL, AlertSeverity.HIGH, AlertSeverity.MEDIUM, AlertSeverity.LOW]


def severity_for(account: Account, kind: str) -> str:
    chosen = (account.alert_severities or {}).get(kind)
    if chosen in AlertSeverity.values:
        return chosen
    return DEFAULT_SEVERITY.get(kind, AlertSeverity.MEDIUM)


def alert_raise(*, account_id: int, kind: str, dedupe_key: str, title: str, message: str = "", **refs) -> Alert:
    """Raise an alert for a cause, or count it again on the one open for that cause."""
    now = timezone.now()
    seen_again = Alert.objects.filter(account_id=account_id, dedupe_key=dedupe_key, resolved_at__isnull=True)
    if seen_again.update(count=F("count") + 1, last_seen_at=now):
        return seen_again.first()
    account = Account.objects.get(pk=account_id)
    try:
        with transaction.atomic():
            item = refs.get("item")
            if item is not None:
                # Take the item before the insert's foreign-key checks take the account: the order
                # every other writer uses (item, then account in billing's limit check). Inserting
                # first took the account, then waited for an item whose holder waited for the
                # account (a deadlock found by tests/test_stock_concurrency.py).
                list(Item.objects.select_for_update(no_key=True).filter(pk=item.pk).values_list("pk"))
            alert = Alert.objects.create(
                account_id=account_id,
                kind=kind,
                severity=severity_for(account, kind),
                dedupe_key=dedupe_key,
                title=title[:200],
                message=message,
                last_seen_at=now,
                **refs,
            )
    except IntegrityError:  # raised by another worker a moment ago
        seen_again.update(count=F("count") + 1, last_seen_at=now)
        return seen_again.first()
    if alert.severity in URGENT_SEVERITIES:
        transaction.on_commit(lambda: urgent_alert_count_forget([account_id]))
    if alert.severity == AlertSeverity.CRITICAL:
        transaction.on_commit(lambda: alert_mail_now(alert.pk))
    return alert


def alerts_resolve_cause(*, account_id: int | None = None, resolution: str, **cause) -> int:
    """The cause went away: close its open alerts (e.g. `listing_id=…, kind__in=[…]` or
    `dedupe_key=…`). Returns how many were closed."""
    qs = Alert.objects.filter(resolved_at__isnull=True, **cause)
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    closed = qs.update(resolved_at=timezone.now(), resolution=resolution)
    if closed and account_id is not None:
        # Without an account, the badge catches up within its few seconds of cache.
        transaction.on_commit(lambda: urgent_alert_count_forget([account_id]))
    return closed


def alerts_acknowledge(*, alert_ids: Iterable[int], user) -> int:
    """Staff have seen these alerts (they stay open until resolved). Returns how many were new to them."""
    return Alert.objects.filter(pk__in=list(alert_ids), acknowledged_at__isnull=True, resolved_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user
    )


def alerts_resolve(*, alert_ids: Iterable[int], user, note: str = "") -> int:
    """Staff closed these alerts, with a note of what they did. Returns how many were open."""
    now = timezone.now()
    ids = list(alert_ids)
    accounts = set(Alert.objects.filter(pk__in=ids).order_by().values_list("account_id", flat=True).distinct())
    closed = Alert.objects.filter(pk__in=ids, resolved_at__isnull=True).update(
        resolved_at=now,
        resolved_by=user,
        resolution=note or "Resolved by staff.",
        acknowledged_at=now,
        acknowledged_by=user,
    )
    transaction.on_commit(lambda: urgent_alert_count_forget(accounts))
    return closed


def conflicts_resolve(*, conflict_ids: list[int], user, note: str = "") -> int:
    """Staff settled these double sales (one order cancelled and refunded on its channel).

    Their alerts are resolved with them. Returns how many were open.
    """
    with transaction.atomic():
        open_ids = list(
            Conflict.objects.select_for_update()
            .filter(pk__in=conflict_ids, status=ConflictStatus.OPEN)
            .values_list("pk", flat=True)
        )
        fields = {"status": ConflictStatus.RESOLVED, "resolved_at": timezone.now(), "resolved_by": user}
        if note:
            fields["note"] = note
        Conflict.objects.filter(pk__in=open_ids).update(**fields)
        alerts_resolve(
            alert_ids=Alert.objects.filter(conflict_id__in=open_ids).values_list("pk", flat=True),
            user=user,
            note=note or "The double sale was settled.",
        )
    return len(open_ids)


# --- E-mail ---------------------------------------------------------------------------------


def _recipients(account_id: int, severity: str) -> list[str]:
    people = get_user_model().objects.filter(account_id=account_id, is_active=True).exclude(email="")
    return sorted({person.email for person in people if severity not in (person.alert_emails_muted or [])})


def _link(alert: Alert) -> str:
    base = (settings.SITE_URL or "").rstrip("/")
    return f"{base}/admin/inventory/alert/{alert.pk}/change/" if base else ""


def alert_mail_now(alert_id: int) -> bool:
    """Mail a critical alert to the account's staff at once (each once). Returns whether it was sent."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_id, emailed_at__isnull=True).first()
        if alert is None:
            return False
        recipients = _recipients(alert.account_id, alert.severity)
        alert.emailed_at = timezone.now()
        alert.save(update_fields=["emailed_at"])
    if not recipients:
        return False
    body = f"{alert.message}\n\n{_link(alert)}".strip()
    try:
        send_mail(f"[{alert.get_severity_display()}] {alert.title}", body, None, recipients)
    except Exception:  # mail must never break a sale; the daily digest lists it again
        log.exception("could not mail alert %s", alert_id)
        Alert.objects.filter(pk=alert_id).update(emailed_at=None)
        return False
    return True


def alerts_digest_send(*, now=None) -> int:
    """The daily digest: every open alert not mailed yet, per account, to each person who wants
    its severities. Returns how many e-mails were sent."""
    now = now or timezone.now()
    sent = 0
    pending = Alert.objects.filter(resolved_at__isnull=True, emailed_at__isnull=True, created_at__lte=now)
    for account_id in pending.values_list("account_id", flat=True).distinct():
        alerts = list(pending.filter(account_id=account_id).order_by("created_at"))
        alerts.sort(key=lambda a: SEVERITY_ORDER.index(a.severity))
        people = get_user_model().objects.filter(account_id=account_id, is_active=True).exclude(email="")
        for person in people:
            theirs = [a for a in alerts if a.severity not in (person.alert_emails_muted or [])]
            if not theirs:
                continue
            lines = [f"- [{a.get_severity_display()}] {a.title} (seen {a.count}x) {_link(a)}".rstrip() for a in theirs]
            send_mail(
                f"{len(theirs)} open alert{'' if len(theirs) == 1 else 's'} for {alerts[0].account}",
                "Open alerts that need a look:\n\n" + "\n".join(lines),
                None,
                [person.email],
            )
            sent += 1
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(emailed_at=now)
    return sent


# --- Detectors run on a schedule -------------------------------------------------------------


def alerts_not_ended_check(*, minutes: int | None = None) -> int:
    """A listing still for sale N minutes after its item sold elsewhere: an oversell waiting to
    happen (critical). Resolved when the end is confirmed. Returns how many are open."""
    from ..models import ChannelListing, DesiredState, ListingState

    minutes = minutes if minutes is not None else settings.ALERT_NOT_ENDED_MINUTES
    cutoff = timezone.now() - timezone.timedelta(minutes=minutes)
    late = (
        ChannelListing.objects.filter(
            desired_state=DesiredState.ENDED, end_reason="sold_elsewhere", desired_changed_at__lt=cutoff
        )
        .exclude(actual_state__in=[ListingState.ENDED, ListingState.SOLD])
        .select_related("item", "connection")
    )
    n = 0
    for listing in late:
        n += 1
        alert_raise(
            account_id=listing.account_id,
            kind=AlertKind.NOT_ENDED,
            dedupe_key=f"not-ended:{listing.pk}",
            title=f"{listing.item.sku} sold, but is not confirmed ended on {listing.connection.name}",
            message=(
                f"Sold {minutes}+ minutes ago and still not ended there"
                + (f": {listing.last_error}" if listing.last_error else "")
                + ". End it on the channel by hand if the engine cannot."
            ),
            item=listing.item,
            listing=listing,
            connection=listing.connection,
        )
    return n


def alerts_webhooks_stopped_check(*, quiet_hours: int | None = None) -> int:
    """A connection that normally sends webhooks has sent none for `quiet_hours` while its
    pulls still found orders: deliveries are failing somewhere (URL changed, subscription
    dropped). Resolved by the next delivery. Returns how many are open."""
    from ..models import ChannelConnection, SyncKind, SyncRun, WebhookEvent

    quiet_hours = quiet_hours if quiet_hours is not None else settings.ALERT_WEBHOOKS_QUIET_HOURS
    now = timezone.now()
    quiet_since = now - timezone.timedelta(hours=quiet_hours)
    n = 0
    for connection in ChannelConnection.objects.filter(enabled=True):
        events = WebhookEvent.objects.filter(connection=connection)
        sends_webhooks = events.filter(received_at__gte=now - timezone.timedelta(days=7)).exists()
        if not sends_webhooks or events.filter(received_at__gte=quiet_since).exists():
            continue
        pulled_orders = SyncRun.objects.filter(
            connection=connection, kind=SyncKind.PULL, started_at__gte=quiet_since, created__gt=0
        ).exists()
        if not pulled_orders:
            continue
        n += 1
        alert_raise(
            account_id=connection.account_id,
            kind=AlertKind.WEBHOOKS_STOPPED,
            dedupe_key=f"webhooks-stopped:{connection.pk}",
            title=f"{connection.name} sent no webhook for {quiet_hours} h while its orders keep coming",
            message=(
                "Sales are still found by the scheduled pull, but later than a webhook would bring them. Check the "
                "webhook URL registered on the channel (Channel connections > Webhooks)."
            ),
            connection=connection,
        )
    return n


def price_drift_beyond_tolerance(connection, ours, theirs) -> bool:
    """Whether a channel price differs from ours by more than the connection tolerates (in % and in money)."""
    from decimal import Decimal

    diff = abs(Decimal(str(theirs)) - Decimal(str(ours)))
    if not diff:
        return False
    if connection.price_drift_amount and diff <= connection.price_drift_amount:
        return False
    return not (connection.price_drift_percent and diff <= Decimal(str(ours)) * connection.price_drift_percent / 100)


def conflict_settle(*, conflict_id: int, cancel: str, actor, note: str = "") -> Conflict:
    """Settle a double sale by cancelling one of its orders, and record how it was settled.

    cancel="loser": the usual end, the later buyer is cancelled (refund them on their channel).
    cancel="winner": the first sale fell through; its order is cancelled, the item goes back
    on sale and is listed again (order_cancel), and the later buyer can be offered it.
    Both in one transaction with the conflict's resolution and its alert.
    """
    from .orders import order_cancel

    if cancel not in ("loser", "winner"):
        raise ValueError(f"cancel must be 'loser' or 'winner', not {cancel!r}")
    with transaction.atomic():
        conflict = (
            Conflict.objects.select_for_update(of=("self",))
            .select_related("winning_order__connection", "losing_order__connection")
            .get(pk=conflict_id)
        )
        if conflict.status != ConflictStatus.OPEN:
            return conflict
        order = conflict.losing_order if cancel == "loser" else conflict.winning_order
        why = "double sale: the other order was first" if cancel == "loser" else "double sale: this sale fell through"
        order_cancel(order_id=order.pk, actor=actor, reason=why)
        shop = order.connection.name if order.connection else order.channel
        record = f"Cancelled the {'losing' if cancel == 'loser' else 'winning'} order {order} ({shop})."
        if cancel == "winner":
            record += " The item is back on sale."
        conflicts_resolve(conflict_ids=[conflict.pk], user=actor.user, note=f"{record} {note}".strip())
        conflict.refresh_from_db()
    return conflict
