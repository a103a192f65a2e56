"""Register a Shopify connection's webhook subscriptions (webhookSubscriptionCreate), idempotently."""

from django.core.management.base import BaseCommand, CommandError

from channels_shopify.models import ShopifyConnection
from channels_shopify.services import webhooks_register
from inventory.channels import ChannelError


class Command(BaseCommand):
    help = (
        "Subscribe a Shopify connection's webhook URL (this site's address + the connection's secret path) to "
        "orders/create, orders/paid, orders/cancelled, products/update and inventory_levels/update. Safe to repeat."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection", help="The connection's name or id.")
        parser.add_argument("--base-url", default="", help="This site's public https address (default: SITE_URL).")

    def handle(self, *args, connection: str, base_url: str, **options):
        lookup = {"pk": int(connection)} if connection.isdigit() else {"name": connection}
        found = ShopifyConnection.objects.filter(**lookup).first()
        if found is None:
            raise CommandError(f"No Shopify connection {connection!r}.")
        try:
            lines = webhooks_register(found, base_url or None)
        except (ValueError, ChannelError) as error:
            raise CommandError(str(error)) from None
        for line in lines:
            self.stdout.write(f"{found.name}: {line}")
