from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from inventory.models import Item
from inventory.selectors import stock_problems


class Command(BaseCommand):
    help = (
        "Check stock: negative figures, orphaned or mismatched locks, and items whose ledger does not add up "
        "to their totals. Exits non-zero when anything is wrong."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", help="Check only this account (slug).")

    def handle(self, *args, account: str | None, **options):
        items = Item.objects.all()
        if account:
            if not Account.objects.filter(slug=account).exists():
                raise CommandError(f"No account with slug {account!r}. Run without --account to check them all.")
            items = items.filter(account__slug=account)
        problems = stock_problems(items=items)
        for problem in problems:
            self.stdout.write(f"{problem.kind}: {problem.sku} (item {problem.item_id}): {problem.detail}")
        if problems:
            raise CommandError(f"{len(problems)} stock problem(s) found.")
        self.stdout.write(self.style.SUCCESS(f"Stock is consistent ({items.count()} items checked)."))
