"""Write packing slips, storage labels or a pick list of one account to a PDF file.

Examples:
    manage.py print_documents labels --account blue-note --sku GTR-0001 --sku AMP-0007 -o labels.pdf
    manage.py print_documents labels --account blue-note --item-id 12 --format 4x6in
    manage.py print_documents packing-slips --account blue-note --order ebay:12-34567-89012
    manage.py print_documents pick-list --account blue-note --open-orders -o today.pdf
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from accounts.roles import Capability, command_person
from billing.errors import BillingError
from documents.errors import DocumentError
from documents.models import LabelFormat
from documents.selectors import items_for_documents, open_orders, orders_for_documents
from documents.services import labels_pdf, packing_slips_pdf, pick_list_pdf

DOCUMENTS = ("labels", "packing-slips", "pick-list")


class Command(BaseCommand):
    help = "Write storage labels, packing slips or a pick list of one account to a PDF file."

    def add_arguments(self, parser):
        parser.add_argument("document", choices=DOCUMENTS, help="What to print.")
        parser.add_argument("--account", required=True, help="The seller account's slug.")
        parser.add_argument(
            "--as", dest="as_user", metavar="USERNAME", help="Print as this person (their role must allow printing)."
        )
        parser.add_argument("--sku", action="append", default=[], help="An item's SKU (repeat for more).")
        parser.add_argument("--item-id", action="append", type=int, default=[], help="An item's id (repeat).")
        parser.add_argument(
            "--order",
            action="append",
            default=[],
            help='An order number, as "channel:number" or the bare number (repeat).',
        )
        parser.add_argument("--order-id", action="append", type=int, default=[], help="An order's id (repeat).")
        parser.add_argument(
            "--open-orders", action="store_true", help="Every open order of the account (packing slips, pick list)."
        )
        parser.add_argument(
            "--format",
            choices=LabelFormat.values,
            default="",
            help="Label stock (labels only); the account's document settings decide when left out.",
        )
        parser.add_argument("-o", "--output", default="", help="The PDF file to write; default: a dated name here.")

    def handle(self, *args, document, account, **options):
        account = self._account(account)
        command_person(username=options.get("as_user"), account=account, capability=Capability.CATALOGUE)
        self._check_options(document, options)
        try:
            pdf = self._print(document, account, options)
        except DocumentError as error:
            raise CommandError(error.message) from error
        except BillingError as error:
            raise CommandError(str(error)) from error
        output = Path(options["output"] or pdf.filename)
        if not output.parent.is_dir():
            raise CommandError(f"The folder {output.parent} does not exist; create it or write somewhere else.")
        output.write_bytes(pdf.content)
        what = {"labels": "label", "packing-slips": "packing slip", "pick-list": "pick-list line"}[document]
        self.stdout.write(
            f"Wrote {pdf.count:,} {what}{'' if pdf.count == 1 else 's'} on {pdf.pages:,} "
            f"page{'' if pdf.pages == 1 else 's'} to {output}."
        )

    def _account(self, slug: str) -> Account:
        account = Account.objects.filter(slug=slug).first()
        if account is None:
            known = ", ".join(Account.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "none yet"
            raise CommandError(f"No account with the slug {slug!r}. Accounts: {known}.")
        return account

    def _check_options(self, document: str, options: dict) -> None:
        picks_items = options["sku"] or options["item_id"]
        picks_orders = options["order"] or options["order_id"] or options["open_orders"]
        if options["format"] and document != "labels":
            raise CommandError("--format is for labels only.")
        if document == "labels" and picks_orders:
            raise CommandError("Labels are printed for items: use --sku or --item-id, not orders.")
        if document == "packing-slips" and picks_items:
            raise CommandError("Packing slips are printed for orders: use --order, --order-id or --open-orders.")
        if document == "labels" and not picks_items:
            raise CommandError("Name the items to label with --sku or --item-id (repeat for more).")
        if document == "packing-slips" and not picks_orders:
            raise CommandError("Name the orders with --order, --order-id, or use --open-orders.")
        if document == "pick-list" and not (picks_items or picks_orders):
            raise CommandError("Name orders (--order, --order-id, --open-orders) or items (--sku, --item-id).")

    def _print(self, document: str, account: Account, options: dict):
        items = items_for_documents(account=account, ids=options["item_id"], skus=options["sku"])
        orders = orders_for_documents(account=account, ids=options["order_id"], refs=options["order"])
        if options["open_orders"]:
            pending = open_orders(account=account)
            if not orders and not items and not pending.exists():
                raise CommandError(f"{account.slug} has no open orders: nothing to print.")
            # Alone it stays a queryset, so the service refuses too many before loading them.
            orders = list({order.pk: order for order in [*orders, *pending]}.values()) if orders else pending
        if document == "labels":
            return labels_pdf(items, label_format=options["format"])
        if document == "packing-slips":
            return packing_slips_pdf(orders)
        return pick_list_pdf(orders=orders, items=items)
