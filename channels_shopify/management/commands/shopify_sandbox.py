"""Run the loopback Shopify store in the foreground (the demo's stand-in for a real store)."""

import signal
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from channels_shopify.sandbox import DEFAULT_SECRET, DEFAULT_TOKEN, SHOP_DOMAIN, ShopifySandbox


class Command(BaseCommand):
    help = (
        "Serve a loopback Shopify Admin GraphQL API (2025-01) on 127.0.0.1 until stopped: every document is "
        "validated against the official schema, priced and charged to a leaky bucket; sales send signed webhooks. "
        "Drive it with shopify_simulate_sale or /_sandbox/ (sales, state, faults)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8767)
        parser.add_argument("--token", default=DEFAULT_TOKEN, help="The X-Shopify-Access-Token it accepts.")
        parser.add_argument("--secret", default=DEFAULT_SECRET, help="The secret it signs webhooks with.")
        parser.add_argument("--shop-domain", default=SHOP_DOMAIN)
        parser.add_argument("--webhook-url", action="append", default=[], help="Receives every delivery (repeatable).")
        parser.add_argument(
            "--connection",
            help="Serve the store a Shopify connection points at (its name or id): port, token, secret, domain "
            "and webhook URL (SITE_URL + the connection's secret path) are taken from it.",
        )
        parser.add_argument(
            "--state-file",
            default=None,
            help="Keep the store's products and orders in this file across restarts (with --connection: "
            "var/sandbox/shopify-<port>.state unless set; --state-file '' forgets on stop).",
        )
        parser.add_argument("--bucket", type=float, default=2000.0, help="Cost bucket size (points).")
        parser.add_argument("--restore", type=float, default=100.0, help="Points restored a second.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--error-rate", type=float, default=0.0)
        parser.add_argument("--throttle-rate", type=float, default=0.0)
        parser.add_argument("--timeout-rate", type=float, default=0.0)
        parser.add_argument("--latency-ms", type=float, default=0.0)

    def handle(self, *args, **options):
        if options["connection"]:
            options.update(self._from_connection(options["connection"]))
            if options["state_file"] is None:
                folder = Path(settings.VAR_DIR) / "sandbox"
                folder.mkdir(parents=True, exist_ok=True)
                options["state_file"] = str(folder / f"shopify-{options['port']}.state")
        sandbox = ShopifySandbox(
            state_file=options["state_file"] or None,
            host=options["host"],
            port=options["port"],
            token=options["token"],
            secret=options["secret"],
            shop_domain=options["shop_domain"],
            webhook_urls=options["webhook_url"],
            bucket_size=options["bucket"],
            restore_rate=options["restore"],
            seed=options["seed"],
            error_rate=options["error_rate"],
            throttle_rate=options["throttle_rate"],
            timeout_rate=options["timeout_rate"],
            latency_ms=options["latency_ms"],
        )

        def stop(signum, frame):
            raise KeyboardInterrupt

        def ready(endpoint: str) -> None:
            self.stdout.write(
                f"Shopify sandbox on {endpoint} ({options['shop_domain']}, bucket {options['bucket']:g} points "
                f"restoring {options['restore']:g}/s; control: {sandbox.root_url}/_sandbox/state). Ctrl-C stops it."
            )
            self.stdout.flush()

        signal.signal(signal.SIGTERM, stop)
        try:
            sandbox.serve_forever(ready=ready)
        except KeyboardInterrupt:
            self.stdout.write("Shopify sandbox stopped.")

    def _from_connection(self, name_or_id: str) -> dict:
        from channels_shopify.models import ShopifyConnection

        lookup = {"pk": int(name_or_id)} if name_or_id.isdigit() else {"name": name_or_id}
        connection = ShopifyConnection.objects.filter(**lookup).first()
        if connection is None:
            raise CommandError(f"No Shopify connection {name_or_id!r}. Run `manage.py shopify_demo` first.")
        address = urlsplit(connection.endpoint)
        if address.hostname not in ("127.0.0.1", "localhost") or not address.port:
            raise CommandError(f"{connection} points at {connection.endpoint}, not a loopback sandbox; refusing.")
        if not settings.SITE_URL:
            raise CommandError("SITE_URL is not set, so the sandbox cannot know where to deliver webhooks.")
        return {
            "host": address.hostname,
            "port": address.port,
            "token": connection.access_token,
            "secret": connection.webhook_secret or DEFAULT_SECRET,
            "shop_domain": connection.shop_domain,
            "webhook_url": [settings.SITE_URL.rstrip("/") + connection.webhook_path],
        }
