"""Run the loopback Etsy in the foreground (the demo's stand-in for openapi.etsy.com)."""

import signal

from django.core.management.base import BaseCommand

from channels_etsy.sandbox import DEFAULT_KEYSTRING, DEFAULT_SHARED_SECRET, EtsySandbox

DEMO_ACCESS_TOKEN = "77700001.demo-access-token"
DEMO_REFRESH_TOKEN = "77700001.demo-refresh-token"
DEMO_WEBHOOK_SECRET = "whsec_ZGVtby13ZWJob29rLXNpZ25pbmctc2VjcmV0"


class Command(BaseCommand):
    help = (
        "Serve a loopback Etsy (Open API v3, OAuth with PKCE, signed webhooks) on 127.0.0.1 until stopped. Every "
        "request is checked against contracts/etsy/etsy-openapi-v3.json. Sell with POST /_sandbox/sell "
        '{"sku": ...}. Its shop lives in memory: a restart starts empty.'
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8770)
        parser.add_argument("--per-second", type=int, default=10, help="Etsy's per-second limit (429 beyond).")
        parser.add_argument("--webhook-url", action="append", default=[], help="Receives signed order events.")
        parser.add_argument("--connection", help="Deliver webhooks to this Etsy connection (its name or id).")
        parser.add_argument("--error-rate", type=float, default=0.0)
        parser.add_argument("--rate-limit-rate", type=float, default=0.0)
        parser.add_argument("--timeout-rate", type=float, default=0.0)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        sandbox = EtsySandbox(
            host=options["host"],
            port=options["port"],
            per_second=options["per_second"],
            seed=options["seed"],
            error_rate=options["error_rate"],
            rate_limit_rate=options["rate_limit_rate"],
            timeout_rate=options["timeout_rate"],
        )
        sandbox.webhook_secret = DEMO_WEBHOOK_SECRET
        sandbox.seed_tokens(DEMO_ACCESS_TOKEN, DEMO_REFRESH_TOKEN)
        urls = list(options["webhook_url"])
        if options["connection"]:
            from django.conf import settings

            from channels_etsy.models import EtsyConnection

            ref = options["connection"]
            found = (
                EtsyConnection.objects.filter(pk=int(ref)) if ref.isdigit() else EtsyConnection.objects.filter(name=ref)
            )
            connection = found.first()
            if connection is not None and settings.SITE_URL:
                urls.append(settings.SITE_URL + connection.webhook_path)
        for url in urls:
            sandbox.register_webhook(url)

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        sandbox.start()
        self.stdout.write(
            f"Etsy sandbox on {sandbox.base_url} (x-api-key {DEFAULT_KEYSTRING}:{DEFAULT_SHARED_SECRET[:4]}..., "
            f"{len(urls)} webhook URL(s)). Ctrl-C stops it."
        )
        self.stdout.flush()
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.stop()
