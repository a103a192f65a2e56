from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inventory.services.retention import history_prune


class Command(BaseCommand):
    help = (
        "Delete finished sync runs and processed webhook deliveries older than RETENTION_DAYS, keeping "
        "everything of connections an open alert or conflict points to. Beat runs it nightly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Age in days (default: RETENTION_DAYS).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args, days: int | None, dry_run: bool, **options):
        days = settings.RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be 1 or more: nothing younger than a day is pruned.")
        result = history_prune(older_than=timedelta(days=days), dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(
            f"{verb} {result.sync_runs} sync run(s) and {result.webhook_events} webhook event(s) older than "
            f"{days} days; kept everything of {len(result.kept_connections)} connection(s) with open alerts "
            "or conflicts."
        )
