"""Subscribe a WooCommerce connection's webhooks on its shop (order.created/updated, product.updated/deleted)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from channels_woocommerce.models import WooCommerceConnection
from channels_woocommerce.services import webhooks_register


class Command(BaseCommand):
    help = (
        "Register (or repair) the shop's webhooks for a WooCommerce connection, delivering to --base-url "
        "(default SITE_URL) + the connection's secret path, signed with its webhook secret. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("connection", help="The connection's name or id.")
        parser.add_argument("--base-url", default=settings.SITE_URL, help="This site's public https address.")

    def handle(self, *args, connection: str, base_url: str, **options):
        lookup = {"pk": int(connection)} if connection.isdigit() else {"name": connection}
        found = WooCommerceConnection.objects.filter(**lookup).first()
        if found is None:
            raise CommandError(f"No WooCommerce connection {connection!r}.")
        if not base_url:
            raise CommandError("Give --base-url (this site's public address); SITE_URL is not set.")
        for line in webhooks_register(found, base_url):
            self.stdout.write(line)
