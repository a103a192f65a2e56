"""Channel connections as a managed resource: connect, edit, test, pause, disconnect, sync now.

The admin and the API call these; every channel's connection model (a ChannelConnection
subclass named by the channel's sync module) goes through the same rules:
- billing's connect gate before a connection is added or enabled;
- the beat schedule follows every change at once (no `declare_schedules` needed);
- pause stops new listings only; disconnect ends every listing, reads each back, and only
  then disables the connection, so a disabled connection never leaves a live listing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.apps import apps
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from billing.gates import check_channel_connect

from ..channels import (
    END_WITHDRAWN,
    ChannelError,
    CheckStep,
    ConnectionCheck,
    channel,
    specific_connection,
)
from ..errors import InventoryError
from ..models import ChannelConnection, ChannelListing, DesiredState, ListingState, SyncKind, SyncRun, SyncStatus
from .listings import ENDED_STATES, _enqueue, listings_want_ended
from .schedules import connection_schedule_sync


class ConnectionRefused(InventoryError):
    code = "connection_refused"
    status = 409


# Lower wins ties between equally timed sales and is listed first (Shopify, Reverb, V&R, eBay...).
FALLBACK_PRIORITY = 100


def default_priority(channel_name: str) -> int:
    return int(getattr(channel(channel_name), "DEFAULT_PRIORITY", FALLBACK_PRIORITY))


def connection_model(channel_name: str):
    """The channel's own connection model (a ChannelConnection subclass)."""
    return apps.get_model(channel(channel_name).CONNECTION_MODEL)


def _on_commit_schedule(connection_id: int) -> None:
    transaction.on_commit(lambda: connection_schedule_sync(connection_id))


def _not_ended(connection: ChannelConnection):
    """Listings of the connection that may be for sale on the channel (or get there)."""
    return ChannelListing.objects.filter(connection=connection).exclude(actual_state__in=ENDED_STATES)


def connection_create(*, account: Account, channel_name: str, fields: Mapping) -> ChannelConnection:
    """Add a shop on a channel. Refused (402) when the plan's channels are used up."""
    model = connection_model(channel_name)
    fields = dict(fields)
    fields.setdefault("priority", default_priority(channel_name))
    connection = model(account=account, **fields)
    connection.channel = channel_name
    with transaction.atomic():
        if connection.enabled:
            check_channel_connect(account, channel_name)
        connection.full_clean()
        connection.save()
        _on_commit_schedule(connection.pk)
    return connection


def connection_update(*, connection: ChannelConnection, fields: Mapping) -> ChannelConnection:
    """Change a connection's settings or credentials; the schedule follows at once.

    Turning `enabled` off is refused while listings may be live there: that would strand
    them (nothing would end them when the item sells elsewhere). Pause or disconnect instead.
    """
    with transaction.atomic():
        locked = type(connection).objects.select_for_update().get(pk=connection.pk)
        enabling = fields.get("enabled") is True and not locked.enabled
        disabling = fields.get("enabled") is False and locked.enabled
        for name, value in fields.items():
            setattr(locked, name, value)
        if enabling:
            check_channel_connect(locked.account_id, locked.channel)
            locked.disconnect_requested_at = None
        if disabling:
            live = _not_ended(locked).count()
            if live:
                raise ConnectionRefused(
                    f"{live} listing(s) may still be for sale on {locked.name}. Pause the connection to stop new "
                    "listings (its listings are still ended when they sell elsewhere), or disconnect it to end "
                    "them all first.",
                    live_listings=live,
                )
        locked.full_clean()
        locked.save()
        _on_commit_schedule(locked.pk)
    return locked


def connection_delete(*, connection: ChannelConnection) -> None:
    """Remove a connection that was never used. One with listings or orders is kept as history."""
    with transaction.atomic():
        locked = ChannelConnection.objects.select_for_update().get(pk=connection.pk)
        listings = ChannelListing.objects.filter(connection=locked).count()
        orders = locked.orders.count()
        if listings or orders:
            raise ConnectionRefused(
                f"{locked.name} has {listings} listing(s) and {orders} order(s), kept as history. Disconnect it "
                "instead: its listings are ended and it stops syncing, but the history stays.",
                listings=listings,
                orders=orders,
            )
        connection_id = locked.pk
        specific_connection(locked).delete()
        _on_commit_schedule(connection_id)


def connection_pause(*, connection: ChannelConnection, paused: bool) -> ChannelConnection:
    """Pause (no new listings here; sales, revisions and ends go on) or resume a connection."""
    with transaction.atomic():
        locked = ChannelConnection.objects.select_for_update().get(pk=connection.pk)
        if not locked.enabled:
            raise ConnectionRefused(f"{locked.name} is disconnected; enable it again to pause or resume it.")
        locked.paused = paused
        locked.save(update_fields=["paused"])
        if not paused:
            # Listings that waited while paused: publish them now.
            waiting = ChannelListing.objects.filter(connection=locked, desired_state=DesiredState.LIVE).exclude(
                actual_state=ListingState.LIVE
            )
            _enqueue(waiting.values_list("pk", flat=True))
    return locked


@dataclass
class DisconnectReport:
    """What a disconnect ends (dry run) or has started ending."""

    connection: str
    live: int = 0
    pending: int = 0
    errors: int = 0
    skus: list[str] = field(default_factory=list)
    applied: bool = False
    disabled: bool = False

    @property
    def text(self) -> str:
        total = self.live + self.pending + self.errors
        if not total:
            what = "Nothing is for sale there"
            return (
                f"{what}: {self.connection} is disconnected."
                if self.disabled
                else f"{what}; disconnecting ends nothing."
            )
        counts = f"{self.live} live, {self.pending} not yet published, {self.errors} in error"
        if self.applied:
            return (
                f"Ending {total} listing(s) on {self.connection} ({counts}); the connection is disabled once each "
                "end is confirmed by read-back."
            )
        return f"Disconnecting {self.connection} will end {total} listing(s) ({counts}). Nothing was changed yet."


def connection_disconnect(*, connection: ChannelConnection, dry_run: bool = True) -> DisconnectReport:
    """End every listing of the connection, then disable it (once every end is read back)."""
    with transaction.atomic():
        locked = ChannelConnection.objects.select_for_update().get(pk=connection.pk)
        listings = list(_not_ended(locked).select_related("item").select_for_update(of=("self",)).order_by("pk"))
        report = DisconnectReport(connection=locked.name, applied=not dry_run)
        for listing in listings:
            if listing.actual_state == ListingState.LIVE:
                report.live += 1
            elif listing.actual_state == ListingState.ERROR:
                report.errors += 1
            else:
                report.pending += 1
            report.skus.append(listing.item.sku)
        if dry_run:
            return report
        now = timezone.now()
        to_converge = listings_want_ended(listings, reason=END_WITHDRAWN, now=now)
        locked.disconnect_requested_at = now
        locked.paused = False
        locked.save(update_fields=["disconnect_requested_at", "paused"])
        _enqueue(to_converge)
    report.disabled = connection_disconnect_finish(connection_id=locked.pk)
    return report


def connection_disconnect_finish(*, connection_id: int) -> bool:
    """Disable a disconnecting connection once nothing of it is left on sale. Returns whether it did."""
    with transaction.atomic():
        locked = ChannelConnection.objects.select_for_update().filter(pk=connection_id).first()
        if locked is None or locked.disconnect_requested_at is None or not locked.enabled:
            return False
        if _not_ended(locked).exists():
            return False
        locked.enabled = False
        locked.save(update_fields=["enabled"])
        _on_commit_schedule(locked.pk)
    return True


def connections_disconnect_finish() -> int:
    """The sweeper's part: finish every disconnect whose ends are all confirmed."""
    pending = ChannelConnection.objects.filter(enabled=True, disconnect_requested_at__isnull=False)
    return sum(connection_disconnect_finish(connection_id=pk) for pk in pending.values_list("pk", flat=True))


def connection_check(*, connection: ChannelConnection) -> ConnectionCheck:
    """Try the connection (reads only) and say in plain words what works and what to fix."""
    sync = channel(connection.channel)
    check = getattr(sync, "check", None)
    if check is None:
        return ConnectionCheck(
            steps=(CheckStep("Check", False, f"The {connection.channel} channel cannot test a connection yet."),)
        )
    try:
        return check(specific_connection(connection))
    except ChannelError as error:
        return ConnectionCheck(steps=(CheckStep("Connection", False, error.message),))


@dataclass
class WebhookSetup:
    """How deliveries reach this connection: registered by API, or a URL staff paste on the channel."""

    url: str
    by_api: bool
    instructions: str
    registered: list[str] = field(default_factory=list)


def webhook_url(connection: ChannelConnection, base_url: str) -> str:
    return base_url.rstrip("/") + connection.webhook_path


def connection_webhooks(*, connection: ChannelConnection, base_url: str, register: bool = False) -> WebhookSetup:
    """The webhook URL of a connection, and (when asked and the channel can) its registration by API."""
    sync = channel(connection.channel)
    url = webhook_url(connection, base_url)
    registrar = getattr(sync, "register_webhooks", None)
    if registrar is None:
        instructions = getattr(sync, "WEBHOOK_SETUP", "") or (
            f"{getattr(sync, 'LABEL', connection.channel)} cannot register webhooks by API: paste this URL in its "
            "settings. It is a secret: keep it private."
        )
        if register:
            raise ConnectionRefused(instructions, webhook_url=url)
        return WebhookSetup(url=url, by_api=False, instructions=instructions)
    setup = WebhookSetup(
        url=url, by_api=True, instructions="Registered by API: use 'register webhooks' after changing the site address."
    )
    if register:
        if not url.startswith("https://") and not _is_loopback(url):
            raise ConnectionRefused(
                f"The channel can only deliver to a public https address; {url} is not one. Set SITE_URL to this "
                "back office's https address first.",
                webhook_url=url,
            )
        setup.registered = list(registrar(specific_connection(connection), base_url.rstrip("/")))
    return setup


def _is_loopback(url: str) -> bool:
    return url.startswith(("http://127.", "http://localhost", "http://[::1]"))


# --- Syncs on demand -------------------------------------------------------------------

SYNC_KINDS = {
    "pull": SyncKind.PULL,
    "reconcile": SyncKind.RECONCILE,
    "audit": SyncKind.AUDIT,
    "import": SyncKind.IMPORT,
}


def connection_sync_request(*, connection: ChannelConnection, kind: str, user=None, apply: bool = False) -> SyncRun:
    """Queue a pull, reconcile, audit or import of listings made on the channel, now.

    Returns the queued SyncRun: the worker takes this very row over, so a REST client follows
    it by id. A pull asked for by hand reads every listing too (new listings show at once).
    `apply` (audit, import): fix what is found; without it they only report.
    """
    if kind not in SYNC_KINDS:
        raise InventoryError(f"Unknown sync {kind!r}: choose one of {', '.join(SYNC_KINDS)}.")
    if not connection.enabled:
        raise ConnectionRefused(f"{connection.name} is disconnected: enable it before syncing it.")
    # A queued one is on its way (sent again by the sweeper, given up after an hour); a running
    # one younger than ten minutes is still being carried out.
    busy = SyncRun.objects.filter(connection=connection, kind=SYNC_KINDS[kind]).filter(
        Q(status=SyncStatus.QUEUED)
        | Q(status=SyncStatus.RUNNING, started_at__gte=timezone.now() - timezone.timedelta(minutes=10))
    )
    existing = busy.first()
    if existing is not None:
        return existing  # one at a time: the caller follows the one already on its way
    run = SyncRun.objects.create(
        account_id=connection.account_id,
        connection=connection,
        kind=SYNC_KINDS[kind],
        status=SyncStatus.QUEUED,
        options={"apply": bool(apply), "full_scan": kind == "pull", "requested": kind},
        requested_by=user if getattr(user, "pk", None) else None,
    )

    def send() -> None:
        from ..tasks import enqueue_sync_request

        enqueue_sync_request(run.pk)

    transaction.on_commit(send)
    return run
