"""The client's address, the same for every part that keys on it, behind a known number of proxies.

Login throttling (django-axes), the API's per-address rate limit (DRF) and the audit log
(django-auditlog) each read the caller's address their own way: axes `REMOTE_ADDR`, DRF and
auditlog the left-most `X-Forwarded-For` entry when there is one. Behind a proxy `REMOTE_ADDR`
is the proxy's (so one attacker's wrong passwords would lock every shop employee's username),
and the left-most `X-Forwarded-For` entry is whatever the caller wrote (so an attacker could
rotate it to escape the rate limit, or write any address into the audit log).

This middleware settles it once, first in the chain: with `DJANGO_TRUSTED_PROXY_COUNT=N`
(the proxies in front of the app that each append the address they received from), the client
is the N-th entry from the right of `X-Forwarded-For`, the last one a trusted proxy wrote;
everything left of it is the caller's to invent and is dropped. With 0 (the default: the app
is reached directly), `REMOTE_ADDR` stands. Afterwards `REMOTE_ADDR` holds that one address and
`X-Forwarded-For` is gone, so axes, DRF and auditlog all key on the same, unforgeable address.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings

log = logging.getLogger(__name__)

HEADER = "HTTP_X_FORWARDED_FOR"


def client_address(meta: dict, trusted_proxies: int) -> str | None:
    """The address the last trusted proxy received the request from (see the module's docstring)."""
    peer = meta.get("REMOTE_ADDR")
    if trusted_proxies <= 0:
        return peer
    entries = [entry.strip() for entry in meta.get(HEADER, "").split(",") if entry.strip()]
    if not entries:
        return peer  # reached the app without passing the proxy (e.g. a health check on the host)
    # Fewer entries than proxies: the request skipped some of them; the left-most entry is then
    # still one a trusted proxy wrote (nothing untrusted is in front of it).
    candidate = entries[-min(trusted_proxies, len(entries))]
    try:
        return str(ipaddress.ip_address(_without_port(candidate)))
    except ValueError:
        log.warning("X-Forwarded-For entry %r from a trusted proxy is not an address; using the peer", candidate)
        return peer


def _without_port(entry: str) -> str:
    if entry.startswith("["):  # [v6]:port
        return entry[1:].split("]", 1)[0]
    if entry.count(":") == 1:  # v4:port
        return entry.split(":", 1)[0]
    return entry


class ClientAddressMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted_proxies = settings.TRUSTED_PROXY_COUNT

    def __call__(self, request):
        address = client_address(request.META, self.trusted_proxies)
        request.META.pop(HEADER, None)
        request.__dict__.pop("headers", None)  # read (and cached) from META before this, e.g. for the request id
        if address:
            request.META["REMOTE_ADDR"] = address
        return self.get_response(request)
