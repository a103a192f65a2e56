"""Amazon notifications from the connection's SQS queue into the webhook inbox.

SP-API delivers ORDER_CHANGE and listing notifications to an SQS queue (no HTTP webhook, no
signature: the queue policy decides who may write to it). A consumer long-polls the queue
with boto3, stores each message through the engine's webhook service (deduped by
NotificationId, so a redelivery is one event) and deletes it from the queue only once it is
stored: a crash in between means SQS delivers it again, and the inbox ignores the repeat. A
message that is not a valid notification is left on the queue for its redrive policy (a
dead-letter queue) and logged; it is never stored. Polling stays the backstop.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from inventory.channels import ChannelError
from inventory.services.sync import webhook_receive

from .models import AmazonConnection

logger = logging.getLogger(__name__)

LONG_POLL_SECONDS = 20  # SQS's maximum wait per receive


@dataclass
class ReceiveReport:
    stored: int = 0
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)

    @property
    def received(self) -> int:
        return self.stored + self.duplicates + len(self.refused)


def sqs_client(connection: AmazonConnection):
    import boto3

    kwargs = {"region_name": connection.sqs_region or "us-east-1"}
    if connection.sqs_endpoint_url:
        kwargs["endpoint_url"] = connection.sqs_endpoint_url
    if connection.aws_access_key_id:
        kwargs["aws_access_key_id"] = connection.aws_access_key_id
        kwargs["aws_secret_access_key"] = connection.aws_secret_access_key
    return boto3.client("sqs", **kwargs)


def receive_once(connection: AmazonConnection, *, wait_seconds: int = LONG_POLL_SECONDS, client=None) -> ReceiveReport:
    """One long poll of the queue: store what arrived, then delete exactly what was stored."""
    if not connection.sqs_queue_url:
        raise ChannelError(f"{connection.name} has no SQS queue URL: its sales are read by polling only.")
    client = client or sqs_client(connection)
    answer = client.receive_message(
        QueueUrl=connection.sqs_queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["ApproximateReceiveCount"],
    )
    report = ReceiveReport()
    for message in answer.get("Messages") or []:
        try:
            _event, created = webhook_receive(
                connection=connection,
                headers={"x-amz-sqs-message-id": message.get("MessageId", "")},
                body=message["Body"].encode(),
            )
        except ChannelError as error:
            logger.warning(
                "Amazon SQS message %s refused (left for the dead-letter queue): %s", message.get("MessageId"), error
            )
            report.refused.append(str(error))
            continue
        # Stored (or already stored): only now may it leave the queue.
        client.delete_message(QueueUrl=connection.sqs_queue_url, ReceiptHandle=message["ReceiptHandle"])
        if created:
            report.stored += 1
        else:
            report.duplicates += 1
    return report


def consume(
    connection_ids: list[int] | None = None,
    *,
    stop: threading.Event | None = None,
    wait_seconds: int = LONG_POLL_SECONDS,
) -> None:
    """Long-poll every Amazon connection with a queue until `stop` is set (one loop per process)."""
    stop = stop or threading.Event()
    clients: dict[int, object] = {}
    while not stop.is_set():
        rows = AmazonConnection.objects.exclude(sqs_queue_url="")
        if connection_ids is not None:
            rows = rows.filter(pk__in=connection_ids)
        rows = list(rows)
        if not rows:
            stop.wait(wait_seconds)
            continue
        # Several connections share the loop: each waits its share of the long poll.
        share = max(1, wait_seconds // len(rows))
        for connection in rows:
            if stop.is_set():
                return
            try:
                client = clients.get(connection.pk)
                if client is None:
                    client = clients[connection.pk] = sqs_client(connection)
                receive_once(connection, wait_seconds=share, client=client)
            except Exception as error:  # the loop must outlive one bad queue or a network blip
                clients.pop(connection.pk, None)
                logger.warning("Amazon SQS poll of %s failed: %s", connection.name, error.__class__.__name__)
                stop.wait(1.0)
