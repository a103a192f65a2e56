"""The loopback eBay's notification side: signed deliveries, the public key, destinations and subscriptions.

A mixin of EbaySandbox (it uses the sandbox's store, signing key, webhook URLs and base URL).
Creating a destination sends the endpoint eBay's challenge first, as eBay does; a delivery goes
to the URLs given at start and to every enabled destination subscribed to its topic.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .store import error, iso


@dataclass(frozen=True)
class Delivery:
    url: str
    topic: str
    body: bytes
    headers: dict[str, str]
    status: int | None
    error: str = ""


class NotificationSide:
    """Deliveries and the Notification API of the loopback eBay."""

    def notification(self, topic: str, data: Mapping[str, Any], notification_id: str | None = None) -> dict:
        return {
            "metadata": {"topic": topic, "schemaVersion": "1.0", "deprecated": False},
            "notification": {
                "notificationId": notification_id or self.store.new_notification_id(),
                "eventDate": iso(self.store.clock()),
                "publishDate": iso(self.store.clock()),
                "publishAttemptCount": 1,
                "data": dict(data),
            },
        }

    def deliver_order_notification(self, order_id: str) -> list[Delivery]:
        return self.deliver(self.notification("ORDER_CONFIRMATION", {"orderId": order_id}))

    def deliver_account_deletion(self, username: str) -> list[Delivery]:
        data = {
            "username": username,
            "userId": f"u{abs(hash(username)) % 10**8}",
            "eiasToken": "nY+sHZ2PrBmdj6wVnY+sEZ2PrA2dj6w==",
        }
        return self.deliver(self.notification("MARKETPLACE_ACCOUNT_DELETION", data))

    def signed(self, payload: Mapping, *, kid: str | None = None) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of a notification as eBay sends it: compact JSON, X-EBAY-SIGNATURE."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = self._signing_key.sign(body, ec.ECDSA(hashes.SHA1()))
        header = {
            "alg": "ECDSA",
            "kid": kid or self.kid,
            "signature": base64.b64encode(signature).decode(),
            "digest": "SHA1",
        }
        return body, {
            "Content-Type": "application/json",
            "X-EBAY-SIGNATURE": base64.b64encode(json.dumps(header).encode()).decode(),
        }

    def deliver(self, payload: Mapping, urls: Iterable[str] | None = None) -> list[Delivery]:
        body, headers = self.signed(payload)
        topic = payload["metadata"]["topic"]
        if urls is None:  # the URLs given at start, and the destinations subscribed to this topic
            urls = list(dict.fromkeys([*self.webhook_urls, *self.subscribed_urls(topic)]))
        return [self._post(url, topic, body, headers) for url in urls]

    def redeliver(self, index: int = -1) -> Delivery:
        earlier = self.deliveries[index]
        return self._post(earlier.url, earlier.topic, earlier.body, earlier.headers)

    def _post(self, url: str, topic: str, body: bytes, headers: dict[str, str]) -> Delivery:
        try:
            response = requests.post(url, data=body, headers=headers, timeout=5)
            delivery = Delivery(url, topic, body, headers, response.status_code)
        except requests.RequestException as exc:
            delivery = Delivery(url, topic, body, headers, None, exc.__class__.__name__)
        self.deliveries.append(delivery)
        return delivery

    def public_key_pem(self) -> str:
        return (
            self._signing_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    # --- Notification API: destinations and subscriptions -----------------------------------------

    def _destinations(self) -> tuple[int, Any]:
        with self.store.lock:
            found = [dict(d) for d in self.destinations.values()]
        return 200, {"destinations": found, "total": len(found), "limit": 100}

    def _challenge_passes(self, config: Mapping[str, Any]) -> bool:
        """eBay GETs the endpoint with a challenge code before it accepts a destination."""
        endpoint, token = str(config.get("endpoint") or ""), str(config.get("verificationToken") or "")
        code = secrets.token_hex(16)
        try:
            answer = requests.get(endpoint, params={"challenge_code": code}, timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        expected = hashlib.sha256((code + token + endpoint).encode()).hexdigest()
        return isinstance(answer, dict) and answer.get("challengeResponse") == expected

    def _create_destination(self, body: Mapping[str, Any]) -> tuple[int, Any, dict]:
        config = dict(body.get("deliveryConfig") or {})
        if not 32 <= len(str(config.get("verificationToken") or "")) <= 80:
            return error(
                400,
                195007,
                "The verification token must be 32 to 80 characters.",
                field="verificationToken",
                domain="API_NOTIFICATION",
            )
        if not self._challenge_passes(config):
            return error(
                400,
                195016,
                "The endpoint did not answer the challenge correctly.",
                field="endpoint",
                domain="API_NOTIFICATION",
            )
        with self.store.lock:
            if any(d["deliveryConfig"]["endpoint"] == config["endpoint"] for d in self.destinations.values()):
                return error(
                    409, 195012, "A destination with this endpoint exists.", field="endpoint", domain="API_NOTIFICATION"
                )
            destination_id = secrets.token_hex(8)
            self.destinations[destination_id] = {
                "destinationId": destination_id,
                "name": str(body.get("name") or ""),
                "status": str(body.get("status") or "ENABLED"),
                "deliveryConfig": config,
            }
        return 201, {}, {"Location": f"{self.base_url}/commerce/notification/v1/destination/{destination_id}"}

    def _update_destination(self, destination_id: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            destination = self.destinations.get(destination_id)
            if destination is None:
                return error(404, 195004, "No such destination.", field="destination_id", domain="API_NOTIFICATION")
            destination.update(
                {"name": body.get("name") or destination["name"], "status": body.get("status") or "ENABLED"}
            )
            destination["deliveryConfig"] = dict(body.get("deliveryConfig") or destination["deliveryConfig"])
        return 204, None

    def _subscriptions(self) -> tuple[int, Any]:
        with self.store.lock:
            found = [dict(x) for x in self.subscriptions.values()]
        return 200, {"subscriptions": found, "total": len(found), "limit": 100}

    def _create_subscription(self, body: Mapping[str, Any]) -> tuple[int, Any, dict]:
        with self.store.lock:
            if body.get("destinationId") not in self.destinations:
                return error(400, 195004, "No such destination.", field="destinationId", domain="API_NOTIFICATION")
            if body.get("topicId") not in ("ORDER_CONFIRMATION", "MARKETPLACE_ACCOUNT_DELETION", "ITEM_SOLD"):
                return error(
                    400, 195005, f"Unknown topic {body.get('topicId')}.", field="topicId", domain="API_NOTIFICATION"
                )
            for existing in self.subscriptions.values():
                if (existing["topicId"], existing["destinationId"]) == (body["topicId"], body["destinationId"]):
                    return error(409, 195024, "This subscription exists.", field="topicId", domain="API_NOTIFICATION")
            subscription_id = secrets.token_hex(8)
            self.subscriptions[subscription_id] = {
                "subscriptionId": subscription_id,
                "topicId": body["topicId"],
                "status": str(body.get("status") or "ENABLED"),
                "destinationId": body["destinationId"],
                "creationDate": iso(self.store.clock()),
                "payload": dict(body.get("payload") or {}),
            }
        return 201, {}, {"Location": f"{self.base_url}/commerce/notification/v1/subscription/{subscription_id}"}

    def _enable_subscription(self, subscription_id: str) -> tuple[int, Any]:
        with self.store.lock:
            if subscription_id not in self.subscriptions:
                return error(404, 195025, "No such subscription.", field="subscription_id", domain="API_NOTIFICATION")
            self.subscriptions[subscription_id]["status"] = "ENABLED"
        return 204, None

    def subscribed_urls(self, topic: str) -> list[str]:
        with self.store.lock:
            return [
                self.destinations[x["destinationId"]]["deliveryConfig"]["endpoint"]
                for x in self.subscriptions.values()
                if x["topicId"] == topic
                and x["status"] == "ENABLED"
                and self.destinations[x["destinationId"]]["status"] == "ENABLED"
            ]

    def _public_key(self, kid: str) -> tuple[int, Any]:
        if kid != self.kid:
            return error(404, 195000, f"Public key {kid} not found.", domain="API_NOTIFICATION")
        return 200, {"algorithm": "ECDSA", "digest": "SHA1", "key": self.public_key_pem()}
