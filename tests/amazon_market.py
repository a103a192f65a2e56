"""The loopback Amazon as a marketplace of the end-to-end harness (tests/test_sync_e2e_harness.py).

`AmazonMarket` has the methods of `LoopbackMarket` (sell, offered, seen, writes, requests,
calls, faults...) over the loopback SP-API, and optionally a real SQS queue (moto's server
mode) that the sandbox publishes ORDER_CHANGE notifications to and the product's boto3
consumer reads. Holds no tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from channels_amazon import mappers
from channels_amazon.models import AmazonConnection, AmazonItemAttributes
from channels_amazon.sandbox import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_SELLER_ID,
    AmazonSandbox,
)
from inventory.channels import ListingSeen
from tests.test_sync_e2e_harness import Write

US = "ATVPDKIKX0DER"
ASIN = "B07N4M94X4"


@dataclass
class LocalSqs:
    """A queue on moto's server (127.0.0.1), as the notification destination of one connection."""

    endpoint: str
    queue_url: str
    region: str = "us-east-1"

    def client(self):
        import boto3

        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def publish(self, notification: dict) -> None:
        self.client().send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(notification))

    def waiting(self) -> int:
        attributes = self.client().get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@contextmanager
def moto_sqs() -> Iterator[str]:
    """moto's server on 127.0.0.1, a free port; yields its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server._server.server_port}"
    finally:
        server.stop()


def new_queue(endpoint: str, name: str) -> LocalSqs:
    sqs = LocalSqs(endpoint=endpoint, queue_url="")
    sqs.queue_url = sqs.client().create_queue(QueueName=name)["QueueUrl"]
    return sqs


@contextmanager
def sqs_consumer(connection_ids: list[int]) -> Iterator[None]:
    """The product's consumer (channels_amazon.sqs.consume) in a thread, with short long-polls."""
    from django.db import connection as db

    from channels_amazon.sqs import consume

    stop = threading.Event()

    def run() -> None:
        try:
            consume(connection_ids, stop=stop, wait_seconds=1)
        finally:
            db.close()

    thread = threading.Thread(target=run, name="amazon-sqs-consumer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def give_asin(item, asin: str = ASIN, product_type: str = "GUITARS") -> None:
    AmazonItemAttributes.objects.update_or_create(
        item=item, defaults={"account_id": item.account_id, "asin": asin, "product_type": product_type}
    )


class AmazonMarket:
    """The loopback Amazon and this shop's connection to it (see LoopbackMarket for the methods)."""

    channel = "amazon"

    def __init__(
        self,
        account,
        name: str,
        *,
        priority: int = 100,
        timeout: float = 10.0,
        seed: int = 0,
        sqs: LocalSqs | None = None,
        rate_scale: float = 1.0,
        **faults: Any,
    ) -> None:
        self.account, self.name, self.priority, self.timeout = account, name, priority, timeout
        self.sqs = sqs
        self.sandbox = AmazonSandbox(seed=seed, rate_scale=rate_scale, notify=sqs.publish if sqs else None, **faults)
        self.connection: AmazonConnection | None = None

    def __enter__(self) -> AmazonMarket:
        self.sandbox.start()
        sqs = {}
        if self.sqs:
            sqs = {
                "sqs_queue_url": self.sqs.queue_url,
                "sqs_region": self.sqs.region,
                "sqs_endpoint_url": self.sqs.endpoint,
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
            }
        self.connection = AmazonConnection.objects.create(
            account=self.account,
            name=self.name,
            priority=self.priority,
            seller_id=DEFAULT_SELLER_ID,
            lwa_client_id=DEFAULT_CLIENT_ID,
            lwa_client_secret=DEFAULT_CLIENT_SECRET,
            refresh_token=DEFAULT_REFRESH_TOKEN,
            api_base_url=self.sandbox.base_url,
            token_url=self.sandbox.token_url,
            timeout_seconds=self.timeout,
            default_product_type="GUITARS",
            listing_scan_interval_seconds=0,
            **sqs,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.sandbox.stop()

    # --- the buyer's and the seller's side ------------------------------------------------

    def sell(self, sku: str, quantity: int = 1, *, webhook: bool = True) -> str:
        """A buyer orders on Amazon; with a queue, its ORDER_CHANGE notification goes to SQS."""
        return self.sandbox.simulate_sale(sku, quantity, notify=webhook)["orderId"]

    def list_directly(self, sku: str, *, title: str = "", price: str, quantity: int = 1) -> ListingSeen:
        return self._seen(self.sandbox.add_external_listing(sku, asin=ASIN, price=price, quantity=quantity))

    # --- what the marketplace holds --------------------------------------------------------

    def _seen(self, raw: dict) -> ListingSeen:
        return mappers.listing_seen(raw, US)

    def offered(self, sku: str) -> list[ListingSeen]:
        raw = self.sandbox.listing(sku)
        return [] if raw is None else [self._seen(raw)]

    def seen(self, external_id: str) -> ListingSeen | None:
        raw = self.sandbox.listing(external_id)
        return None if raw is None else self._seen(raw)

    def listing_count_by_sku(self) -> dict[str, int]:
        return {raw["sku"]: 1 for raw in self.sandbox.listings()}

    def order_ids(self) -> list[str]:
        return [order["orderId"] for order in self.sandbox.all_orders()]

    # --- what the marketplace was sent ---------------------------------------------------

    def writes(self, external_id: str | None = None) -> list[Write]:
        return [w for w in self.requests(external_id) if w.kind in ("create", "revise", "end", "delete")]

    def requests(self, external_id: str | None = None) -> list[Write]:
        """Listing calls in the harness's words: create (put), revise or end (a patch to quantity 0),
        delete, read; validation previews are not writes and are left out."""
        found = []
        for request in self.sandbox.requests():
            sku = request.path.split("?")[0].rstrip("/").split("/")[-1]
            if request.operation not in (
                "putListingsItem",
                "patchListingsItem",
                "deleteListingsItem",
                "getListingsItem",
            ):
                continue
            if request.query.get("mode") == "VALIDATION_PREVIEW":
                continue
            fields = _contract_fields(request.body)
            if request.operation == "putListingsItem":
                kind = "create"
            elif request.operation == "patchListingsItem":
                kind = "end" if fields == {"quantity": 0} else "revise"
            elif request.operation == "deleteListingsItem":
                kind = "delete"
            else:
                kind = "read"
            if external_id is None or sku == external_id:
                found.append(Write(kind, sku, fields, request.status))
        return found

    @property
    def calls(self) -> int:
        return len(self.sandbox.requests())

    def reset_log(self) -> None:
        self.sandbox.reset_log()

    def set_faults(self, **faults: Any) -> None:
        self.sandbox.set_faults(**faults)

    def go_down(self) -> None:
        self.sandbox.set_faults(error_rate=1.0, rate_limit_rate=0.0, timeout_rate=0.0)


def _contract_fields(body: Any) -> dict[str, Any]:
    """The contract fields a put or patch set (price, quantity, condition)."""
    if not isinstance(body, dict):
        return {}
    if "patches" in body:
        attributes = {p["path"].removeprefix("/attributes/"): p.get("value") for p in body["patches"]}
    else:
        attributes = body.get("attributes") or {}
    fields: dict[str, Any] = {}
    if attributes.get("purchasable_offer"):
        value = attributes["purchasable_offer"][0]["our_price"][0]["schedule"][0]["value_with_tax"]
        fields["price"] = Decimal(str(value)).quantize(Decimal("0.01"))
    if attributes.get("fulfillment_availability"):
        fields["quantity"] = attributes["fulfillment_availability"][0]["quantity"]
    if attributes.get("condition_type"):
        fields["condition"] = attributes["condition_type"][0]["value"]
    return fields
