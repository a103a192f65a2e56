from django.core.management.base import BaseCommand

from inventory.models import ChannelConnection
from inventory.services.listings import listings_lagging
from inventory.services.sync import listings_reconcile
from inventory.tasks import enqueue_converge


class Command(BaseCommand):
    help = (
        "Re-enqueue every listing whose channel state lags what the shop wants; with --audit, also read "
        "every live listing back from each channel and push what drifted. Without --apply, only reports."
    )

    def add_arguments(self, parser):
        parser.add_argument("--apply", action="store_true", help="Enqueue the work (default: report only).")
        parser.add_argument("--audit", action="store_true", help="Also read every live listing back (page reads).")
        parser.add_argument("--older-than", type=int, default=0, help="Only listings lagging for this many seconds.")

    def handle(self, *args, apply: bool, audit: bool, older_than: int, **options):
        from datetime import timedelta

        lagging = listings_lagging(older_than=timedelta(seconds=older_than))
        self.stdout.write(f"{len(lagging)} listing(s) lag their desired state.")
        if apply:
            for listing_id in lagging:
                enqueue_converge(listing_id)
            self.stdout.write(self.style.SUCCESS(f"Enqueued {len(lagging)}."))
        if audit:
            if not apply:
                self.stdout.write("--audit reads channels and re-pushes drift; add --apply to run it.")
                return
            for connection in ChannelConnection.objects.filter(enabled=True).order_by("pk"):
                run = listings_reconcile(connection_id=connection.pk)
                self.stdout.write(
                    f"{connection}: {run.status}: {run.updated} drifted, {run.ended} ended, {run.skipped} unchanged"
                )
