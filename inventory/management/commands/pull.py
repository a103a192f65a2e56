from django.core.management.base import BaseCommand, CommandError

from inventory.channels import ChannelError, channel_names
from inventory.models import ChannelConnection
from inventory.services.sync import connection_pull


class Command(BaseCommand):
    help = (
        "Read what changed on a channel for every enabled connection of it: orders since the last pull and every "
        "listing now (states, listings made on the channel, listings it no longer has)."
    )

    def add_arguments(self, parser):
        parser.add_argument("channel", help=f"Channel name: one of {', '.join(channel_names())}.")
        parser.add_argument("--connection", type=int, help="Only this connection id.")
        parser.add_argument(
            "--changes-only",
            action="store_true",
            help="Read only what changed since the last pull, as the schedule does (default: every listing too).",
        )

    def handle(self, *args, channel: str, connection: int | None, changes_only: bool, **options):
        if channel not in channel_names():
            raise CommandError(f"Unknown channel {channel!r}. Use one of: {', '.join(channel_names())}.")
        connections = ChannelConnection.objects.filter(channel=channel, enabled=True).order_by("pk")
        if connection is not None:
            connections = connections.filter(pk=connection)
        if not connections.exists():
            raise CommandError(f"No enabled {channel} connection{' with that id' if connection else ''}.")
        failed = 0
        for conn in connections:
            try:
                run = connection_pull(connection_id=conn.pk, full_scan=not changes_only)
            except ChannelError as error:
                failed += 1
                self.stderr.write(f"{conn}: failed: {error}")
                continue
            self.stdout.write(
                f"{conn}: {run.status} in {run.duration_ms} ms: {run.created} new, {run.updated} updated, "
                f"{run.skipped} unchanged, {run.errors} errors, {run.api_calls} page(s) read"
            )
        if failed:
            raise CommandError(f"{failed} connection(s) could not be pulled.")
