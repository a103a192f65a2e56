from django.core.management.base import BaseCommand, CommandError

from inventory.channels import ChannelError, channel_names
from inventory.models import ChannelConnection
from inventory.services.sync import external_listings_import


class Command(BaseCommand):
    help = "Find listings made directly on a channel and import them as items (dry run unless --apply)."

    def add_arguments(self, parser):
        parser.add_argument("channel", help=f"Channel name: one of {', '.join(channel_names())}.")
        parser.add_argument("--connection", type=int, help="Only this connection id.")
        parser.add_argument("--apply", action="store_true", help="Import them (default: report only).")

    def handle(self, *args, channel: str, connection: int | None, apply: bool, **options):
        if channel not in channel_names():
            raise CommandError(f"Unknown channel {channel!r}. Use one of: {', '.join(channel_names())}.")
        connections = ChannelConnection.objects.filter(channel=channel, enabled=True).order_by("pk")
        if connection is not None:
            connections = connections.filter(pk=connection)
        if not connections.exists():
            raise CommandError(f"No enabled {channel} connection{' with that id' if connection else ''}.")
        for conn in connections:
            try:
                report = external_listings_import(connection_id=conn.pk, dry_run=not apply)
            except ChannelError as error:
                raise CommandError(f"{conn}: {error}") from error
            verb = "imported" if apply else "would import"
            self.stdout.write(f"{conn}: {verb} {len(report.created)} new: {', '.join(report.created[:50])}")
            self.stdout.write(f"{conn}: {'linked' if apply else 'would link'} {len(report.linked)} to existing SKUs")
            self.stdout.write(f"{conn}: {len(report.known)} already known")
        if not apply:
            self.stdout.write("Dry run: add --apply to import.")
