from django.core.management.base import BaseCommand

from accounts.encryption import encrypted_values_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (marketplace credentials, webhook tokens) with the first key of "
        "FIELD_ENCRYPTION_KEYS. Put the new key first, keep the old one after it, run this, then drop the old key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what is not yet under the newest key.")

    def handle(self, *args, dry_run: bool, **options):
        report = encrypted_values_rotate(dry_run=dry_run)
        verb = "to re-encrypt" if dry_run else "re-encrypted"
        for label, (total, stale) in report.items():
            self.stdout.write(f"{label}: {stale} of {total} secret(s) {verb}")
        stale = sum(s for _, s in report.values())
        done = "run it again without --dry-run" if dry_run and stale else "every secret is under the newest key"
        self.stdout.write(self.style.SUCCESS(f"{stale} secret(s) {verb} in total; {done}."))
