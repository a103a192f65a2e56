from django.core.management.base import BaseCommand

from inventory.models import Source
from inventory.services import Actor, items_auto_archive


class Command(BaseCommand):
    help = "Archive sold and shipped items older than each account's auto-archive age."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be archived; change nothing.")

    def handle(self, *args, dry_run: bool, **options):
        archived = items_auto_archive(dry_run=dry_run, actor=Actor(source=Source.COMMAND))
        verb = "would archive" if dry_run else "archived"
        for slug, skus in archived.items():
            self.stdout.write(f"{slug}: {verb} {len(skus)}: {', '.join(skus[:50])}{' ...' if len(skus) > 50 else ''}")
        total = sum(len(skus) for skus in archived.values())
        self.stdout.write(self.style.SUCCESS(f"{verb} {total} item(s) in total."))
