"""Etsy connection services: connecting by OAuth (PKCE), and the token every worker shares.

Pending authorizations live in Django's cache for ten minutes under their `state` (one use);
tokens live on the EtsyConnection row. A refresh is done by one worker at a time across
processes (a lock in the cache, `cache.add`); the others wait for the row to show the new
token. When Etsy refuses the refresh token, staff get one "Reconnect Etsy" alert.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from inventory.channels import PermanentChannelError, TransientChannelError
from inventory.models import AlertKind
from inventory.services.alerts import alert_raise, alerts_resolve_cause

from . import oauth
from .models import EtsyConnection

logger = logging.getLogger(__name__)

PENDING_TTL = 600
REFRESH_AHEAD = timedelta(minutes=5)
LOCK_TTL = 30
WAIT_FOR_OTHER_REFRESH = 15.0


class OAuthRefused(PermanentChannelError):
    """A callback that cannot complete a connection (unknown or used state, another account's connection)."""


def _pending_key(state: str) -> str:
    return f"channels_etsy:oauth:{hashlib.sha256(state.encode()).hexdigest()}"


def etsy_oauth_start(*, connection: EtsyConnection, redirect_uri: str) -> str:
    """The URL that sends staff to Etsy to grant this connection access (PKCE S256 + state)."""
    if not connection.keystring:
        raise OAuthRefused("Set the app's keystring and shared secret first, then Connect Etsy.")
    verifier = oauth.new_code_verifier()
    state = oauth.new_state()
    cache.set(
        _pending_key(state),
        {"connection_id": connection.pk, "verifier": verifier, "redirect_uri": redirect_uri},
        timeout=PENDING_TTL,
    )
    return oauth.authorize_url(
        connection.authorize_url,
        client_id=connection.keystring,
        redirect_uri=redirect_uri,
        scopes=connection.scopes,
        state=state,
        challenge=oauth.code_challenge(verifier),
    )


def etsy_oauth_complete(*, state: str, code: str, account_id: int | None = None) -> EtsyConnection:
    """Exchange the code Etsy sent back for tokens; the state must be one we issued, unused and fresh.

    `account_id` (the signed-in user's shop) must own the connection. Fills in the shop id
    from the token's user when it is empty.
    """
    key = _pending_key(state or "")
    pending = cache.get(key) if state else None
    if not pending or not cache.delete(key):  # delete: one use, even with two callbacks racing
        raise OAuthRefused("This Etsy authorization is unknown, used or older than ten minutes: Connect Etsy again.")
    # Under row-level security another shop's connection is not even visible: the same refusal.
    connection = EtsyConnection.objects.filter(pk=pending["connection_id"]).first()
    if connection is None:
        raise OAuthRefused(
            "This Etsy authorization was started for another shop's connection, or that connection "
            "was deleted: Connect Etsy again from your own connection."
        )
    if account_id is not None and connection.account_id != account_id:
        raise OAuthRefused("This Etsy authorization was started for another shop's connection.")
    if not code:
        raise OAuthRefused("Etsy sent no authorization code back (was access denied?). Connect Etsy again.")
    tokens = oauth.exchange_code(
        connection.token_url,
        client_id=connection.keystring,
        redirect_uri=pending["redirect_uri"],
        code=code,
        verifier=pending["verifier"],
        timeout=connection.timeout_seconds,
        now=timezone.now(),
    )
    _store(connection, tokens)
    connection.refresh_from_db()
    if not connection.shop_id:
        from .sync import client_for  # the client needs the stored token

        me = client_for(connection).me()
        if me.get("shop_id"):
            EtsyConnection.objects.filter(pk=connection.pk).update(shop_id=int(me["shop_id"]))
            connection.refresh_from_db()
    cache.delete(_refused_key(connection.pk))
    alerts_resolve_cause(
        account_id=connection.account_id, dedupe_key=f"etsy-reconnect:{connection.pk}", resolution="Etsy reconnected."
    )
    return connection


def _store(connection: EtsyConnection, tokens: oauth.Tokens) -> None:
    EtsyConnection.objects.filter(pk=connection.pk).update(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.expires_at,
        etsy_user_id=tokens.user_id,
    )


def _lock_key(connection_id: int) -> str:
    return f"channels_etsy:refresh-lock:{connection_id}"


def _refused_key(connection_id: int) -> str:
    return f"channels_etsy:refresh-refused:{connection_id}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class ConnectionTokens:
    """The access token of one connection for the client, refreshed ahead of expiry and on a 401.

    One refresh at a time per connection across all workers; the others pick the new token up
    from the row. Counts the refreshes this process made (`refreshes`).
    """

    def __init__(self, connection_id: int, *, sleep=time.sleep) -> None:
        self.connection_id = connection_id
        self.sleep = sleep
        self.refreshes = 0
        self._token = ""
        self._expires_at = None

    def __repr__(self) -> str:
        return f"ConnectionTokens(connection_id={self.connection_id})"

    def _row(self) -> EtsyConnection:
        return EtsyConnection.objects.only(
            "id",
            "account_id",
            "name",
            "keystring",
            "token_url",
            "timeout_seconds",
            "access_token",
            "refresh_token",
            "token_expires_at",
        ).get(pk=self.connection_id)

    def _fresh(self, expires_at) -> bool:
        return expires_at is None or expires_at - REFRESH_AHEAD > timezone.now()

    def token(self) -> str:
        if self._token and self._fresh(self._expires_at):
            return self._token
        row = self._row()
        if not row.access_token:
            raise PermanentChannelError("This Etsy connection is not connected: use Connect Etsy.", status=401)
        if self._fresh(row.token_expires_at):
            self._token, self._expires_at = row.access_token, row.token_expires_at
            return self._token
        return self.refreshed(row.access_token)

    def refreshed(self, rejected: str) -> str:
        """A token other than `rejected` (refreshing it, or taking the one another worker just got)."""
        deadline = time.monotonic() + WAIT_FOR_OTHER_REFRESH
        while True:
            row = self._row()
            if row.access_token and row.access_token != rejected and self._fresh(row.token_expires_at):
                self._token, self._expires_at = row.access_token, row.token_expires_at
                return self._token
            if cache.get(_refused_key(self.connection_id)) == _digest(row.refresh_token):
                raise oauth.RefreshRefused(
                    f"Etsy refused the refresh token of {row.name}: reconnect Etsy (Connect Etsy on the connection)."
                )
            if cache.add(_lock_key(self.connection_id), "1", timeout=LOCK_TTL):
                try:
                    return self._refresh(rejected)
                finally:
                    cache.delete(_lock_key(self.connection_id))
            if time.monotonic() > deadline:
                raise TransientChannelError("Another worker is refreshing the Etsy token; try again in a moment.")
            self.sleep(0.05)

    def _refresh(self, rejected: str) -> str:
        row = self._row()  # under the lock: another worker may have refreshed just before
        if row.access_token and row.access_token != rejected and self._fresh(row.token_expires_at):
            self._token, self._expires_at = row.access_token, row.token_expires_at
            return self._token
        try:
            tokens = oauth.refresh(
                row.token_url,
                client_id=row.keystring,
                refresh_token=row.refresh_token,
                timeout=row.timeout_seconds,
                now=timezone.now(),
            )
        except oauth.RefreshRefused as refusal:
            cache.set(_refused_key(row.pk), _digest(row.refresh_token), timeout=86_400)
            alert_raise(
                account_id=row.account_id,
                kind=AlertKind.CONNECTION,
                dedupe_key=f"etsy-reconnect:{row.pk}",
                title=f"Reconnect Etsy: {row.name}",
                message=(
                    f"{refusal.message} Until then nothing is listed, revised or ended on Etsy and Etsy sales are "
                    "not read: open the connection and press Connect Etsy."
                ),
            )
            raise
        _store(row, tokens)
        self.refreshes += 1
        logger.info("etsy token of connection %s refreshed", row.pk)
        self._token, self._expires_at = tokens.access_token, tokens.expires_at
        return self._token


def budget_low_alert(connection: EtsyConnection, remaining: int) -> None:
    """Tell staff once (per ten minutes at most) that publishing waits for Etsy's daily budget."""
    if not cache.add(f"channels_etsy:budget-alerted:{connection.pk}", "1", timeout=600):
        return
    alert_raise(
        account_id=connection.account_id,
        kind=AlertKind.CONNECTION,
        dedupe_key=f"etsy-budget:{connection.pk}",
        title=f"Etsy's daily call budget is low: {connection.name}",
        message=(
            f"Etsy allows {remaining} more calls in the rolling day, the reserve kept for sales "
            f"({connection.daily_reserve}). Ends, read-backs and receipts go first; publishing and revising wait "
            "until the budget recovers."
        ),
    )
