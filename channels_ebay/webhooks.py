"""eBay notifications: the endpoint challenge, X-EBAY-SIGNATURE verification, and identification.

The header is base64 of JSON {alg, kid, signature, digest}. The signature is ECDSA (SHA-1 digest)
over the payload re-serialised as compact JSON, as eBay's SDKs do (JSON.stringify / Jackson); the
raw body is tried too. The public key comes from the Notification API by kid (`key_for(kid)`, cached
by the caller). Anything that does not verify is rejected with 412 and nothing is stored.
No database here; the key lookup is the only call out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inventory.channels import ChannelError, WebhookRejected, WebhookReply, WebhookSeen

SIGNATURE_HEADER = "x-ebay-signature"
ACCOUNT_DELETION = "MARKETPLACE_ACCOUNT_DELETION"
ORDER_TOPICS = frozenset({"ORDER_CONFIRMATION", "ITEM_SOLD", "FIXED_PRICE_TRANSACTION", "AUTHORIZATION_EVENT"})
MAX_KEY = 200


def challenge_response(code: str, verification_token: str, endpoint: str) -> str:
    return hashlib.sha256((code + verification_token + endpoint).encode()).hexdigest()


def challenge_reply(query: Mapping[str, str], verification_token: str, endpoint: str) -> WebhookReply:
    code = str(query.get("challenge_code") or "")
    if not code:
        return WebhookReply(status=400, body={"detail": "A GET here must carry challenge_code."})
    if not verification_token or not endpoint:
        return WebhookReply(
            status=500, body={"detail": "The eBay connection has no verification token or endpoint URL set."}
        )
    return WebhookReply(status=200, body={"challengeResponse": challenge_response(code, verification_token, endpoint)})


def decode_signature_header(value: str) -> dict:
    try:
        decoded = json.loads(base64.b64decode(value, validate=False))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise WebhookRejected("X-EBAY-SIGNATURE is not base64 JSON.", http_status=412) from None
    if not isinstance(decoded, dict) or not decoded.get("kid") or not decoded.get("signature"):
        raise WebhookRejected("X-EBAY-SIGNATURE lacks kid or signature.", http_status=412)
    return decoded


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def verify(payload: Any, body: bytes, signature_b64: str, pem: str) -> bool:
    """ECDSA-SHA1 over the compact JSON of the payload, or over the raw body."""
    try:
        key = serialization.load_pem_public_key(_pem(pem).encode())
        signature = base64.b64decode(signature_b64)
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    for message in (compact(payload), body):
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA1()))
            return True
        except InvalidSignature:
            continue
    return False


def _pem(key: str) -> str:
    """eBay returns the PEM on one line sometimes; put the line breaks back."""
    key = key.strip()
    if "\n" in key:
        return key
    begin, end = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
    inner = key.replace(begin, "").replace(end, "").strip()
    return f"{begin}\n{inner}\n{end}\n"


def verify_and_identify(
    headers: Mapping[str, str], body: bytes, key_for: Callable[[str], Mapping | None]
) -> WebhookSeen:
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    header = lowered.get(SIGNATURE_HEADER, "")
    if not header:
        raise WebhookRejected("An eBay notification without X-EBAY-SIGNATURE.", http_status=412)
    signed = decode_signature_header(header)
    try:
        payload = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("An eBay notification whose body is not JSON.", http_status=412) from None
    if not isinstance(payload, dict):
        raise WebhookRejected("An eBay notification whose body is not a JSON object.", http_status=412)
    try:
        key = key_for(str(signed["kid"]))
    except ChannelError as error:
        if error.transient:
            raise  # eBay's key service is down: the delivery is answered 5xx and eBay sends it again
        key = None
    if not key or not key.get("key"):
        raise WebhookRejected(f"eBay has no public key {signed['kid']!r}.", http_status=412)
    if str(key.get("algorithm") or "ECDSA").upper() != "ECDSA" or not verify(
        payload, body, str(signed["signature"]), str(key["key"])
    ):
        raise WebhookRejected("X-EBAY-SIGNATURE does not verify.", http_status=412)
    return identify(payload, body)


def identify(payload: Mapping, body: bytes) -> WebhookSeen:
    topic = str((payload.get("metadata") or {}).get("topic") or "unknown")
    notification = payload.get("notification") or {}
    notification_id = str(notification.get("notificationId") or "")
    key = f"{topic[:60]}:{notification_id}" if notification_id else f"{topic[:60]}:{hashlib.sha256(body).hexdigest()}"
    if len(key) > MAX_KEY:
        key = f"{topic[:60]}:{hashlib.sha256(key.encode()).hexdigest()}"
    return WebhookSeen(topic=topic, dedupe_key=key, payload=payload)


def order_id(payload: Mapping) -> str:
    data = (payload.get("notification") or {}).get("data") or {}
    return str(data.get("orderId") or data.get("order_id") or "")
