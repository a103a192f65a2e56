from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.audit import audit_actor
from accounts.models import Account
from accounts.roles import Capability, command_person
from inventory.models import ChannelListing, DesiredState, Item, Source
from inventory.services import Actor
from inventory.services.listings import listings_end


class Command(BaseCommand):
    help = "Take items off sale on every channel (by SKU). Dry run unless --apply."

    def add_arguments(self, parser):
        parser.add_argument("skus", nargs="+", metavar="SKU")
        parser.add_argument("--account", required=True, help="Account slug the SKUs belong to.")
        parser.add_argument("--apply", action="store_true", help="Do it (default: show what would end).")
        parser.add_argument(
            "--as", dest="as_user", metavar="USERNAME", help="Act as this person (their role must allow delisting)."
        )

    def handle(self, *args, skus: list[str], account: str, apply: bool, **options):
        owner = Account.objects.filter(slug=account).first()
        if owner is None:
            raise CommandError(f"No account with slug {account!r}.")
        person = command_person(username=options.get("as_user"), account=owner, capability=Capability.CATALOGUE)
        items = list(Item.objects.filter(account=owner, sku__in=skus))
        missing = set(skus) - {item.sku for item in items}
        if missing:
            raise CommandError(f"Unknown SKU(s) in {account}: {', '.join(sorted(missing))}. Nothing was changed.")
        live = ChannelListing.objects.filter(item__in=items, desired_state=DesiredState.LIVE).select_related(
            "connection", "item"
        )
        for listing in live:
            self.stdout.write(f"{listing.item.sku}: {'ending' if apply else 'would end'} on {listing.connection}")
        if not apply:
            self.stdout.write("Dry run: add --apply to end them.")
            return
        # The audit log names the person acted as (no --as: the system).
        with audit_actor(person), transaction.atomic():
            listings_end(account=owner, item_ids=[i.pk for i in items], actor=Actor(user=person, source=Source.COMMAND))
        self.stdout.write(self.style.SUCCESS(f"{live.count()} listing(s) will be ended by the workers."))
