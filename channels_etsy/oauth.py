"""Etsy's OAuth 2.0 over HTTP: authorization code with PKCE (S256) and state, and token refresh.

Pure HTTP and crypto, no ORM (channels_etsy.services keeps the tokens and the pending flows).
Etsy's token endpoint takes form fields: `grant_type=authorization_code` with `client_id`
(the keystring), `redirect_uri`, `code` and `code_verifier`; `grant_type=refresh_token` with
`client_id` and `refresh_token`. It answers `{access_token, token_type, expires_in,
refresh_token}`; an access token starts with the user's numeric id ("12345678.abc...").
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import requests

from inventory.channels import PermanentChannelError, TransientChannelError

VERIFIER_BYTES = 48  # 64 characters of base64url: RFC 7636 wants 43 to 128


class RefreshRefused(PermanentChannelError):
    """Etsy refused the refresh token (revoked, expired, or the app lost access): staff must reconnect Etsy."""


def new_code_verifier() -> str:
    """A PKCE code verifier: 64 characters from the unreserved set (RFC 7636 §4.1)."""
    return secrets.token_urlsafe(VERIFIER_BYTES)


def code_challenge(verifier: str) -> str:
    """The S256 challenge: base64url(sha256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    return secrets.token_urlsafe(32)


def authorize_url(base: str, *, client_id: str, redirect_uri: str, scopes: str, state: str, challenge: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes.split()),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{base}{'&' if '?' in base else '?'}{query}"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime
    user_id: int | None

    def __repr__(self) -> str:  # tokens stay out of reprs and logs
        return f"Tokens(expires_at={self.expires_at.isoformat()}, user_id={self.user_id})"


def user_id_of(access_token: str) -> int | None:
    head = access_token.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _token_call(token_url: str, form: dict[str, str], *, timeout: float, now: datetime, refreshing: bool) -> Tokens:
    try:
        response = requests.post(
            token_url,
            data=form,
            headers={"Accept": "application/json"},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise TransientChannelError(f"Could not reach Etsy's token endpoint: {error.__class__.__name__}.") from error
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientChannelError(
            f"Etsy's token endpoint failed ({response.status_code}).", status=response.status_code
        )
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 200 or not data.get("access_token"):
        reason = str(data.get("error_description") or data.get("error") or response.reason or "refused")
        if refreshing:
            raise RefreshRefused(
                f"Etsy refused the refresh token ({response.status_code}: {reason}). Reconnect Etsy from the "
                "connection's page (Connect Etsy).",
                status=response.status_code,
            )
        raise PermanentChannelError(
            f"Etsy refused the authorization code ({response.status_code}: {reason}). Start Connect Etsy again.",
            status=response.status_code,
        )
    access = str(data["access_token"])
    return Tokens(
        access_token=access,
        refresh_token=str(data.get("refresh_token") or form.get("refresh_token") or ""),
        expires_at=now + timedelta(seconds=int(data.get("expires_in") or 3600)),
        user_id=user_id_of(access),
    )


def exchange_code(
    token_url: str, *, client_id: str, redirect_uri: str, code: str, verifier: str, timeout: float, now: datetime
) -> Tokens:
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code": code,
        "code_verifier": verifier,
    }
    return _token_call(token_url, form, timeout=timeout, now=now, refreshing=False)


def refresh(token_url: str, *, client_id: str, refresh_token: str, timeout: float, now: datetime) -> Tokens:
    if not refresh_token:
        raise RefreshRefused("This Etsy connection has no refresh token. Connect Etsy from the connection's page.")
    form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    return _token_call(token_url, form, timeout=timeout, now=now, refreshing=True)
