"""Long-poll the SQS queues of Amazon connections and store each notification in the webhook inbox."""

import signal
import threading

from django.core.management.base import BaseCommand

from channels_amazon.sqs import LONG_POLL_SECONDS, consume


class Command(BaseCommand):
    help = (
        "Read Amazon notifications (ORDER_CHANGE, listing status and issues) from each Amazon connection's SQS "
        "queue, store them in the webhook inbox (deduped by NotificationId) and delete each from the queue once "
        "stored. Runs until stopped; one process is enough."
    )

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, action="append", help="Only these connection ids.")
        parser.add_argument("--wait", type=int, default=LONG_POLL_SECONDS, help="Long-poll seconds (1-20).")

    def handle(self, *args, connection=None, wait: int, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        self.stdout.write("Reading Amazon notifications from SQS. Ctrl-C stops.")
        try:
            consume(connection, stop=stop, wait_seconds=max(1, min(wait, 20)))
        except KeyboardInterrupt:
            stop.set()
