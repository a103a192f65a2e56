from django.core.management.base import BaseCommand

from inventory.models import ChannelConnection
from inventory.services.listings import listings_lagging
from inventory.services.sync import listings_audit
from inventory.tasks import enqueue_converge


class Command(BaseCommand):
    help = (
        "Re-enqueue every listing whose channel state lags what the shop wants; with --audit, also read every "
        "listing on each channel back and report drift, listings ended or missing there, listings we do not "
        "know, duplicates of one SKU and ids that now carry another SKU. Without --apply, only reports."
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
            for connection in ChannelConnection.objects.filter(enabled=True).order_by("pk"):
                run = listings_audit(connection_id=connection.pk, apply=apply)
                found = {k: v for k, v in run.report.items() if isinstance(v, list) and v}
                lines = [
                    f"{name.replace('_', ' ')}: {len(v)} ({', '.join(map(str, v[:10]))})" for name, v in found.items()
                ]
                self.stdout.write(
                    f"{connection}: {run.report.get('unchanged', 0)} unchanged"
                    + ("; " + "; ".join(lines) if lines else "; nothing to fix")
                )
            if not apply:
                self.stdout.write("Dry run: add --apply to fix what the audit found.")
