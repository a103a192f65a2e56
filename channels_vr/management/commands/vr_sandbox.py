"""Run the loopback V&R dealer site in the foreground (the demo's stand-in for vintageandrare.com)."""

from __future__ import annotations

import signal
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from channels_vr.models import VRConnection
from channels_vr.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, VRSandbox


class Command(BaseCommand):
    help = (
        "Serve a loopback V&R dealer site on 127.0.0.1 until stopped: login, the add/edit item form, the "
        "inventory export and the AJAX calls. Point a V&R connection's base URL at it with the sandbox login."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8775)
        parser.add_argument("--username", default=DEFAULT_USERNAME)
        parser.add_argument("--password", default=DEFAULT_PASSWORD)
        parser.add_argument("--connection", help="Serve the site a V&R connection points at (its name or id).")
        parser.add_argument(
            "--state-file",
            default=None,
            help="Keep the dealer's items in this file across restarts (with --connection: "
            "var/sandbox/vr-<port>.state unless set; --state-file '' forgets on stop).",
        )
        parser.add_argument("--slow-ms", type=float, default=0.0, help="Delay every page by this much.")
        parser.add_argument("--bot-challenge", action="store_true", help="Answer every page with a bot check.")

    def handle(self, *args, **options):
        if options["connection"]:
            ref = options["connection"]
            query = VRConnection.objects.filter(pk=int(ref)) if ref.isdigit() else VRConnection.objects.filter(name=ref)
            connection = query.first()
            if connection is None:
                raise CommandError(f"No V&R connection {ref!r}: run `manage.py vr_demo` first.")
            url = urlparse(connection.base_url)
            if url.hostname not in ("127.0.0.1", "localhost"):
                raise CommandError(f"{connection} points at {connection.base_url}, not at a loopback sandbox.")
            options.update(host=url.hostname, port=url.port or 80, username=connection.username)
            options["password"] = connection.password
        if options["connection"] and options["state_file"] is None:
            folder = Path(settings.VAR_DIR) / "sandbox"
            folder.mkdir(parents=True, exist_ok=True)
            options["state_file"] = str(folder / f"vr-{options['port']}.state")
        site = VRSandbox(
            host=options["host"],
            port=options["port"],
            username=options["username"],
            password=options["password"],
            state_file=options["state_file"] or None,
        )
        site.set_switches(slow_ms=options["slow_ms"], bot_challenge=options["bot_challenge"])
        signal.signal(signal.SIGTERM, _stop)
        try:
            site.serve_forever(
                ready=lambda url: self.stdout.write(f"V&R sandbox on {url} (login {options['username']}); Ctrl-C stops")
            )
        except KeyboardInterrupt:
            kept = f"; items kept in {options['state_file']}" if options["state_file"] else ""
            self.stdout.write(f"stopped{kept}")


def _stop(*_args) -> None:
    raise KeyboardInterrupt  # a process manager's SIGTERM stops it like Ctrl-C
