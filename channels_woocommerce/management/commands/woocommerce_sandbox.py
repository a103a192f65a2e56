"""Run the loopback WooCommerce shop in the foreground (the demo's stand-in for a dealer's website)."""

import signal

from django.core.management.base import BaseCommand, CommandError

from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox


class Command(BaseCommand):
    help = (
        "Serve a loopback WooCommerce shop (wc/v3 under /wp-json, every request checked against the official "
        "route index) on 127.0.0.1 until stopped. Point a WooCommerce connection's store URL at "
        "http://127.0.0.1:<port> with the sandbox keys; drive it with woocommerce_simulate_sale or /_sandbox/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8768)
        parser.add_argument(
            "--connection",
            help="Serve the shop a WooCommerce connection points at (its name or id): the port is taken from its "
            "store URL, and its four webhooks are subscribed to SITE_URL + its secret path with its secret.",
        )
        parser.add_argument(
            "--state-file",
            default=None,
            help="Keep the shop's products, orders and webhooks in this file across restarts (with --connection: "
            "var/sandbox/woocommerce-<port>.state unless set; --state-file '' forgets on stop).",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--error-rate", type=float, default=0.0)
        parser.add_argument("--rate-limit-rate", type=float, default=0.0)
        parser.add_argument("--timeout-rate", type=float, default=0.0)
        parser.add_argument("--latency-ms", type=float, default=0.0)

    def handle(self, *args, **options):
        connection = self._connection(options["connection"]) if options["connection"] else None
        port = options["port"]
        if connection is not None:
            from urllib.parse import urlsplit

            port = urlsplit(connection.store_url).port or port
        state_file = options["state_file"]
        if connection is not None and state_file is None:
            from pathlib import Path

            from django.conf import settings

            state_file = str(Path(settings.VAR_DIR) / "sandbox" / f"woocommerce-{port}.state")
        sandbox = WooSandbox(
            state_file=state_file or None,
            host=options["host"],
            port=port,
            seed=options["seed"],
            error_rate=options["error_rate"],
            rate_limit_rate=options["rate_limit_rate"],
            timeout_rate=options["timeout_rate"],
            latency_ms=options["latency_ms"],
            deliver_on_api_writes=True,  # as a real shop: our own writes come back as product.updated
        )
        if connection is not None:
            from django.conf import settings

            from channels_woocommerce.sync import WEBHOOK_TOPICS

            url = settings.SITE_URL.rstrip("/") + connection.webhook_path
            subscribed = {(h["topic"], h["delivery_url"]) for h in sandbox.webhooks()}
            for topic in WEBHOOK_TOPICS:  # as if registered earlier (the web server may not be up to answer a ping)
                if (topic, url) not in subscribed:
                    sandbox.store.create_webhook(
                        {"topic": topic, "delivery_url": url, "secret": connection.webhook_secret}
                    )

        def stop(signum, frame):
            raise KeyboardInterrupt

        def ready(store_url: str) -> None:
            self.stdout.write(
                f"WooCommerce sandbox on {store_url} (key {DEFAULT_KEY[:12]}…, secret {DEFAULT_SECRET[:12]}…; "
                f"control: {store_url}/_sandbox/state). Ctrl-C stops it."
            )
            self.stdout.flush()

        signal.signal(signal.SIGTERM, stop)
        try:
            sandbox.serve_forever(ready=ready)
        except KeyboardInterrupt:
            self.stdout.write("WooCommerce sandbox stopped.")

    def _connection(self, name_or_id: str):
        from channels_woocommerce.models import WooCommerceConnection

        lookup = {"pk": int(name_or_id)} if name_or_id.isdigit() else {"name": name_or_id}
        connection = WooCommerceConnection.objects.filter(**lookup).first()
        if connection is None:
            raise CommandError(f"No WooCommerce connection {name_or_id!r}: run `manage.py woocommerce_demo` first.")
        return connection
