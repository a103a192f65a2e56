"""Run the loopback SP-API and LWA token endpoint in the foreground (the demo's stand-in for Amazon)."""

import signal
import threading

from django.core.management.base import BaseCommand

from channels_amazon.sandbox import DEFAULT_CLIENT_ID, DEFAULT_REFRESH_TOKEN, DEFAULT_SELLER_ID, AmazonSandbox


class Command(BaseCommand):
    help = (
        "Serve a loopback Selling Partner API on 127.0.0.1 until stopped. Point an Amazon connection's SP-API host "
        "at http://127.0.0.1:<port> and its LWA token URL at http://127.0.0.1:<port>/auth/o2/token; sell with "
        "amazon_simulate_sale (POST /_sandbox/sale). State is kept in memory only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8771)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--error-rate", type=float, default=0.0)
        parser.add_argument("--rate-limit-rate", type=float, default=0.0)
        parser.add_argument("--timeout-rate", type=float, default=0.0)
        parser.add_argument("--processing-seconds", type=float, default=2.0, help="ACCEPTED until BUYABLE.")
        parser.add_argument("--rate-scale", type=float, default=1.0, help="Multiply every documented rate.")
        parser.add_argument("--sqs-queue-url", default="", help="Publish ORDER_CHANGE notifications to this queue.")
        parser.add_argument("--sqs-endpoint-url", default="", help="A local SQS (e.g. moto_server on 127.0.0.1).")
        parser.add_argument("--sqs-region", default="us-east-1")

    @staticmethod
    def _publisher(options):
        """Each notification as an SQS message, the way SP-API delivers to a destination queue."""
        if not options["sqs_queue_url"]:
            return None
        import json

        import boto3

        kwargs = {"region_name": options["sqs_region"]}
        if options["sqs_endpoint_url"]:
            kwargs["endpoint_url"] = options["sqs_endpoint_url"]
        client = boto3.client("sqs", **kwargs)
        queue = options["sqs_queue_url"]
        return lambda notification: client.send_message(QueueUrl=queue, MessageBody=json.dumps(notification))

    def handle(self, *args, **options):
        sandbox = AmazonSandbox(
            port=options["port"],
            seed=options["seed"],
            error_rate=options["error_rate"],
            rate_limit_rate=options["rate_limit_rate"],
            timeout_rate=options["timeout_rate"],
            processing_seconds=options["processing_seconds"],
            rate_scale=options["rate_scale"],
            notify=self._publisher(options),
        )
        sandbox.start()
        self.stdout.write(
            f"Amazon sandbox on {sandbox.base_url} (seller {DEFAULT_SELLER_ID}, client id {DEFAULT_CLIENT_ID}, "
            f"refresh token {DEFAULT_REFRESH_TOKEN!r}; state: {sandbox.base_url}/_sandbox/state). Ctrl-C stops it."
        )
        self.stdout.flush()
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.stop()
