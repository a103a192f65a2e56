"""Run the loopback Reverb in the foreground (the demo's stand-in for api.reverb.com)."""

import signal
from pathlib import Path

from django.conf import settings
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
        parser.add_argument(
            "--connection",
            help="Serve the sandbox a Reverb connection points at (its name or id): port, token and "
            "webhook URL (SITE_URL + the connection's secret path) are taken from it.",
        )
        parser.add_argument(
            "--state-file",
            default=None,
            help="Keep the shop's listings and orders in this file across restarts (with --connection: "
            "var/sandbox/reverb-<port>.state unless set; --state-file '' forgets on stop).",
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
                options["state_file"] = str(folder / f"reverb-{options['port']}.state")
        sandbox = ReverbSandbox(
            state_file=options["state_file"] or None,
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

    def _from_connection(self, name_or_id: str) -> dict:
        from urllib.parse import urlsplit

        from django.core.management.base import CommandError

        from channels_reverb.models import ReverbConnection

        lookup = {"pk": int(name_or_id)} if name_or_id.isdigit() else {"name": name_or_id}
        connection = ReverbConnection.objects.filter(**lookup).first()
        if connection is None:
            raise CommandError(
                f"No Reverb connection {name_or_id!r}. Run `manage.py reverb_demo` or create one in the admin."
            )
        address = urlsplit(connection.base_url)
        if address.hostname not in ("127.0.0.1", "localhost") or not address.port:
            raise CommandError(
                f"{connection} points at {connection.base_url}, not a loopback sandbox; refusing to stand in for it."
            )
        if not settings.SITE_URL:
            raise CommandError("SITE_URL is not set, so the sandbox cannot know where to deliver webhooks.")
        return {
            "host": address.hostname,
            "port": address.port,
            "token": connection.api_token,
            "webhook_url": [*settings_webhooks(settings.SITE_URL, connection.webhook_path)],
        }


def settings_webhooks(site_url: str, path: str) -> list[str]:
    return [site_url.rstrip("/") + path]
