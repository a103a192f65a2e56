"""CSV columns of the item catalogue: import (django-import-export) and streaming export."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from import_export import resources

from accounts.models import Account

from .models import Item
from .services import EDITABLE_FIELDS, Actor, item_create, item_update

IMPORT_COLUMNS = [*EDITABLE_FIELDS, "quantity_on_hand"]
# The export adds read-only columns; the import ignores them, so an export can be edited and re-imported.
EXPORT_COLUMNS = [*IMPORT_COLUMNS, "quantity_locked", "state", "created_at", "updated_at"]


class ItemResource(resources.ModelResource):
    """Imports items of one account, matched by SKU, through the inventory services.

    Used in two passes by the admin: a dry run that shows every row's outcome and
    errors (rolled back), then the confirmed import.
    """

    def __init__(self, *, account: Account, actor: Actor, **kwargs):
        super().__init__(**kwargs)
        self.account = account
        self.actor = actor

    class Meta:
        model = Item
        fields = IMPORT_COLUMNS
        import_id_fields = ["sku"]
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    def get_queryset(self):
        return Item.objects.filter(account=self.account)

    def before_import_row(self, row, **kwargs):
        # A file this app exported carries escaped formula-like cells: import what they said.
        for key, value in list(row.items()):
            row[key] = csv_unescape(value)

    def init_instance(self, row=None):
        item = super().init_instance(row)
        item.account = self.account
        return item

    def do_instance_save(self, instance: Item, is_create: bool) -> None:
        fields = {name: getattr(instance, name) for name in EDITABLE_FIELDS}
        if is_create:
            created = item_create(
                account=self.account, actor=self.actor, fields=fields, quantity=instance.quantity_on_hand or 0
            )
            instance.pk = created.pk
        else:
            item_update(
                item_id=instance.pk,
                actor=self.actor,
                changes={**fields, "quantity_on_hand": instance.quantity_on_hand},
            )


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection, OWASP): titles
# and brands also arrive from the channels, so anyone who can list on a marketplace could plant one.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A text cell that a spreadsheet shows as text: prefixed with ' when it would start a formula
    (OWASP's advice). Numbers and dates are left alone, so a negative number stays a number."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def csv_unescape(value):
    """The text csv_safe escaped, as it was (an exported file re-imported unchanged)."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS):
        return value[1:]
    return value


def item_csv_lines(queryset) -> Iterator[str]:
    """CSV lines of the items in `queryset`, read in chunks so memory stays flat at any size.
    Text cells that would start a spreadsheet formula are escaped (csv_safe)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    rows = queryset.order_by("pk").values_list(*EXPORT_COLUMNS)
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow([csv_safe(value) for value in row])
