"""The loopback shop's webhooks: the creation ping, signed deliveries, retries, duplicates, disabling."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests

from .records import Delivery, php_json, sign
from .store import SandboxError

MAX_FAILURES = 5  # woocommerce_max_webhook_delivery_failures


class Deliveries:
    """Part of WooSandbox: what it POSTs to delivery URLs."""

    # --- webhooks -----------------------------------------------------------------------

    def subscribe(self, url: str, topic: str, secret: str) -> dict:
        """Create a webhook as the shop's admin would (the ping goes out first)."""
        code, hook = self.store.create_webhook({"topic": topic, "delivery_url": url, "secret": secret})
        if code != 201:
            raise SandboxError(f"Webhook refused: {hook}")
        self._ping(hook["id"])
        return hook

    def _ping(self, webhook_id: int) -> Delivery:
        with self.store.lock:
            hook = self.store.webhooks[webhook_id]
        body = f"webhook_id={webhook_id}".encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": self._user_agent()}
        return self._post(hook, "ping", "", body, headers, count=False)

    def deliver(self, topic: str, payload: Mapping[str, Any]) -> list[Delivery]:
        """POST the resource to every active webhook of this topic, signed, as WooCommerce does."""
        done = []
        for hook in self.store.webhooks_for(topic):
            body = php_json(payload)
            for attempt in range(1 + self.faults.webhook_retries):
                delivery_id = secrets.token_hex(16)
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": self._user_agent(),
                    "X-WC-Webhook-Source": self.site_url + "/",
                    "X-WC-Webhook-Topic": topic,
                    "X-WC-Webhook-Resource": topic.split(".")[0],
                    "X-WC-Webhook-Event": topic.split(".")[1],
                    "X-WC-Webhook-Signature": sign(hook["_secret"], body),
                    "X-WC-Webhook-ID": str(hook["id"]),
                    "X-WC-Webhook-Delivery-ID": delivery_id,
                }
                delivery = self._post(hook, topic, delivery_id, body, headers)
                done.append(delivery)
                twice = self._faults.chance(self.faults.duplicate_rate)
                if twice:
                    done.append(self._post(hook, topic, delivery_id, body, headers))
                if delivery.delivered or hook["status"] != "active" or attempt == self.faults.webhook_retries:
                    break
        return done

    def redeliver(self, index: int = -1) -> Delivery:
        """Send an earlier delivery again, byte for byte, same delivery id (a replay)."""
        earlier = self.deliveries[index]
        with self.store.lock:
            hook = self.store.webhooks[earlier.webhook_id]
        return self._post(hook, earlier.topic, earlier.delivery_id, earlier.body, earlier.headers)

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._async):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._async = [t for t in self._async if t.is_alive()]

    def _deliver_later(self, topic: str, payload: Mapping[str, Any]) -> None:
        if not self.deliver_on_api_writes or not self.store.webhooks_for(topic):
            return
        thread = threading.Thread(target=self.deliver, args=(topic, dict(payload)), daemon=True)
        self._async.append(thread)
        thread.start()

    def _post(
        self, hook: dict, topic: str, delivery_id: str, body: bytes, headers: dict[str, str], *, count: bool = True
    ) -> Delivery:
        try:
            response = requests.post(
                hook["delivery_url"], data=body, headers=headers, timeout=self.webhook_timeout, allow_redirects=False
            )
            status, failure = response.status_code, ""
        except requests.RequestException as problem:
            status, failure = None, problem.__class__.__name__
        delivery = Delivery(hook["id"], hook["delivery_url"], topic, delivery_id, body, dict(headers), status, failure)
        with self.store.lock:
            if delivery.delivered:
                hook["_failures"] = 0
            elif count or topic == "ping":
                hook["_failures"] += 1
                if hook["_failures"] > MAX_FAILURES:
                    hook["status"] = "disabled"
        with self._delivery_lock:
            self.deliveries.append(delivery)
        return delivery

    @staticmethod
    def _user_agent() -> str:
        return "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"
