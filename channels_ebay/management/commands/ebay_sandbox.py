"""Run the loopback eBay in the foreground (the demo's stand-in for api.ebay.com and its token endpoint)."""

import signal
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from channels_ebay.models import EbayConnection
from channels_ebay.sandbox import EbaySandbox


class Command(BaseCommand):
    help = (
        "Serve a loopback eBay (OAuth, Inventory, Fulfillment, Account, Notification) on 127.0.0.1 until stopped. "
        "Point an eBay connection's API base URL and token URL at it; drive it through /_sandbox/ "
        "(POST /_sandbox/sales {sku}, /_sandbox/faults, /_sandbox/tokens/expire)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8769)
        parser.add_argument("--webhook-url", action="append", default=[], help="Receives signed notifications.")
        parser.add_argument(
            "--connection",
            help="Serve the sandbox an eBay connection points at (name or id): port and notification URL "
            "(SITE_URL + the connection's secret path) are taken from it.",
        )
        parser.add_argument(
            "--state-file",
            default=None,
            help="Keep the shop (items, offers, orders, the signing key) in this file across restarts (with "
            "--connection: var/sandbox/ebay-<port>.state unless set; --state-file '' forgets on stop).",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--error-rate", type=float, default=0.0)
        parser.add_argument("--rate-limit-rate", type=float, default=0.0)
        parser.add_argument("--timeout-rate", type=float, default=0.0)
        parser.add_argument("--latency-ms", type=float, default=0.0)

    def handle(self, *args, **options):
        if options["connection"]:
            options.update(self._from_connection(options["connection"]))
            if options["state_file"] is None:
                folder = Path(settings.VAR_DIR) / "sandbox"
                folder.mkdir(parents=True, exist_ok=True)
                options["state_file"] = str(folder / f"ebay-{options['port']}.state")
        sandbox = EbaySandbox(
            state_file=options["state_file"] or None,
            host=options["host"],
            port=options["port"],
            webhook_urls=options["webhook_url"],
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
                f"eBay sandbox on {base_url} (token URL {sandbox.token_url}; control: {base_url}/_sandbox/state). "
                "Ctrl-C stops it."
            )
            self.stdout.flush()

        signal.signal(signal.SIGTERM, stop)
        try:
            sandbox.serve_forever(ready=ready)
        except KeyboardInterrupt:
            self.stdout.write("eBay sandbox stopped.")

    def _from_connection(self, name_or_id: str) -> dict:
        lookup = {"pk": int(name_or_id)} if name_or_id.isdigit() else {"name": name_or_id}
        connection = EbayConnection.objects.filter(**lookup).first()
        if connection is None:
            raise CommandError(f"No eBay connection {name_or_id!r}. Run `manage.py ebay_demo` or create one.")
        address = urlsplit(connection.api_base_url)
        if address.hostname not in ("127.0.0.1", "localhost") or not address.port:
            raise CommandError(f"{connection} points at {connection.api_base_url}, not a loopback sandbox.")
        hooks = [settings.SITE_URL.rstrip("/") + connection.webhook_path] if settings.SITE_URL else []
        return {"host": address.hostname, "port": address.port, "webhook_url": hooks}
