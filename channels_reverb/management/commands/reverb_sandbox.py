"""Run the loopback Reverb in the foreground (the demo's stand-in for api.reverb.com)."""

import signal

from django.core.management.base import BaseCommand

from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox


class Command(BaseCommand):
    help = (
        "Serve a loopback Reverb API on 127.0.0.1 until stopped. Point a Reverb connection's base URL at "
        "http://127.0.0.1:<port>/api with the sandbox token; drive it with reverb_simulate_sale or /_sandbox/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--token", default=DEFAULT_TOKEN, help="The Bearer token it accepts.")
        parser.add_argument(
            "--webhook-url",
            action="append",
            default=[],
            help="Receives orders/create and orders/update deliveries (repeatable).",
        )
        parser.add_argument(
            "--topic-header", default=None, help='Send the topic in this header, e.g. "X-Reverb-Topic".'
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--error-rate", type=float, default=0.0)
        parser.add_argument("--rate-limit-rate", type=float, default=0.0)
        parser.add_argument("--timeout-rate", type=float, default=0.0)
        parser.add_argument("--latency-ms", type=float, default=0.0)

    def handle(self, *args, **options):
        sandbox = ReverbSandbox(
            host=options["host"],
            port=options["port"],
            token=options["token"],
            webhook_urls=options["webhook_url"],
            topic_header=options["topic_header"],
            seed=options["seed"],
            error_rate=options["error_rate"],
            rate_limit_rate=options["rate_limit_rate"],
            timeout_rate=options["timeout_rate"],
            latency_ms=options["latency_ms"],
        )

        def stop(signum, frame):
            raise KeyboardInterrupt

        def ready(base_url: str) -> None:
            self.stdout.write(
                f"Reverb sandbox on {base_url} (token {options['token']!r}; control: {sandbox.root_url}/_sandbox/state). "
                "Ctrl-C stops it."
            )
            self.stdout.flush()

        signal.signal(signal.SIGTERM, stop)
        try:
            sandbox.serve_forever(ready=ready)
        except KeyboardInterrupt:
            self.stdout.write("Reverb sandbox stopped.")
