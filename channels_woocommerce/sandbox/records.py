"""What the loopback shop records and sends: requests received, deliveries made, faults, API keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any


def php_json(payload: Any) -> bytes:
    """JSON as WordPress's wp_json_encode writes it: compact, non-ASCII escaped, slashes escaped."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the sandbox received it (secrets never kept)."""

    method: str
    path: str  # under /wp-json/wc/v3, e.g. "/products/101"
    query: dict[str, str]
    body: Any
    status: int
    auth: str  # basic, query, oauth, none
    fault: str = ""
    problem: str = ""  # why the route index refused it

    @property
    def is_write(self) -> bool:
        return self.method != "GET"


@dataclass(frozen=True)
class Delivery:
    """One POST the shop made to a delivery URL: a ping or a signed delivery."""

    webhook_id: int
    url: str
    topic: str
    delivery_id: str
    body: bytes
    headers: dict[str, str]
    status: int | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status <= 302


@dataclass
class Faults:
    """Random faults from a seeded generator, so a run repeats exactly.

    error: 500 with a WordPress error body, nothing applied. rate_limit: 429, nothing applied.
    timeout: applied, the answer held back `timeout_delay` s. latency_ms: on every API request.
    webhook_retries: a failed delivery is sent again (new delivery id) up to this many times.
    duplicate_rate: share of deliveries sent twice, byte for byte (same delivery id).
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: float = 0.0
    timeout_delay: float = 2.0
    retry_after: int = 1
    webhook_retries: int = 0
    duplicate_rate: float = 0.0
    seed: int = 0


@dataclass
class ApiKey:
    secret: str
    permissions: str = "read_write"  # read, write, read_write
    user_id: int = 1
    nonces: set[str] = field(default_factory=set)
