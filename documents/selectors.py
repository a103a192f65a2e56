"""Reads for documents: the items and orders a user may print, and the pick list's walk order."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import Prefetch, QuerySet

from accounts.models import Account
from inventory.models import Item, Order, OrderLine, OrderStatus

from .errors import NotFoundInAccount, OrderNotPrintable

_CHUNKS = re.compile(r"(\d+)")

CHANNEL_NAMES = {
    "manual": "Shop",
    "ebay": "eBay",
    "reverb": "Reverb",
    "shopify": "Shopify",
    "vr": "Vintage & Rare",
    "vintage_and_rare": "Vintage & Rare",
}


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel.replace("_", " ").title())


def order_reference(order: Order) -> str:
    """How staff and buyers name an order: the channel and its order number."""
    return f"{channel_name(order.channel)} #{order.external_id}"


def location_sort_key(location: str) -> tuple:
    """Sorts shelf names the way people read them: A-2 before A-10, "b-01" next to "B-02".

    Locations with no name sort last (they need finding, not walking past).
    """
    text = location.strip().casefold()
    if not text:
        return ((2, 0, ""),)
    return tuple((0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk) for chunk in _CHUNKS.split(text) if chunk)


# --- Selecting what to print -------------------------------------------------------------


def items_for_documents(*, account: Account, ids: Iterable[int] = (), skus: Iterable[str] = ()) -> list[Item]:
    """The account's items with these ids and SKUs, in the order asked, each once.

    Raises NotFoundInAccount naming every id or SKU the account does not have (another
    account's items are reported exactly like ones that do not exist).
    """
    ids, skus = list(dict.fromkeys(ids)), list(dict.fromkeys(skus))
    found = list(Item.objects.filter(account=account, pk__in=ids)) if ids else []
    by_sku = {item.sku: item for item in Item.objects.filter(account=account, sku__in=skus)} if skus else {}
    by_id = {item.pk: item for item in found}
    missing = [f"id {pk}" for pk in ids if pk not in by_id] + [f"SKU {sku}" for sku in skus if sku not in by_sku]
    if missing:
        raise NotFoundInAccount(
            f"Not found in your account: {', '.join(missing)}. Check the ids and SKUs and ask again.",
            missing=missing,
        )
    ordered = [by_id[pk] for pk in ids] + [by_sku[sku] for sku in skus]
    return list({item.pk: item for item in ordered}.values())


def orders_for_documents(*, account: Account, ids: Iterable[int] = (), refs: Iterable[str] = ()) -> list[Order]:
    """The account's orders by id or by reference ("channel:number" or a bare order number).

    Lines and their items are prefetched, so printing many orders costs three queries.
    Raises NotFoundInAccount for unknown ids or references and for a bare number that
    more than one channel uses.
    """
    ids, refs = list(dict.fromkeys(ids)), list(dict.fromkeys(refs))
    queryset = with_lines(Order.objects.filter(account=account))
    found: list[Order] = list(queryset.filter(pk__in=ids)) if ids else []
    by_id = {order.pk: order for order in found}
    missing = [f"id {pk}" for pk in ids if pk not in by_id]
    by_ref: list[Order] = []
    for ref in refs:
        channel, _, number = ref.rpartition(":")
        matches = list(queryset.filter(external_id=number, **({"channel": channel} if channel else {}))[:2])
        if len(matches) == 1:
            by_ref.append(matches[0])
        elif not matches:
            missing.append(f"order {ref}")
        else:
            missing.append(f"order {ref} (several channels use this number: write it as channel:{number})")
    if missing:
        raise NotFoundInAccount(
            f"Not found in your account: {', '.join(missing)}. Check the ids and order numbers and ask again.",
            missing=missing,
        )
    ordered = [by_id[pk] for pk in ids] + by_ref
    return list({order.pk: order for order in ordered}.values())


def with_lines(orders: QuerySet[Order]) -> QuerySet[Order]:
    """Orders with their lines and each line's item loaded in two more queries (applied twice, same)."""
    return (
        orders.prefetch_related(None)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.select_related("item").order_by("id")))
        .select_related("account")
    )


def open_orders(*, account: Account) -> QuerySet[Order]:
    """The account's orders still to ship (status open), oldest first."""
    return with_lines(Order.objects.filter(account=account, status=OrderStatus.OPEN)).order_by("placed_at", "id")


def cancelled_refusal(orders: Sequence[Order], what: str) -> OrderNotPrintable | None:
    """The refusal for cancelled orders in a print request, or None when there are none."""
    cancelled = [order_reference(order) for order in orders if order.status == OrderStatus.CANCELLED]
    if not cancelled:
        return None
    return OrderNotPrintable(
        f"{', '.join(cancelled)} {'is' if len(cancelled) == 1 else 'are'} cancelled: there is nothing to "
        f"{what}. Leave {'it' if len(cancelled) == 1 else 'them'} out and print again.",
        orders=cancelled,
    )


# --- The pick list -----------------------------------------------------------------------


@dataclass
class PickLine:
    """One thing to take off a shelf: an item, how many units, and the orders they are for."""

    item_id: int
    sku: str
    title: str
    brand: str
    model: str
    storage_location: str
    quantity: int = 0
    orders: dict[str, int] = field(default_factory=dict)

    @property
    def order_refs(self) -> list[str]:
        return [ref if n == 1 else f"{ref} (x{n})" for ref, n in self.orders.items()]


@dataclass
class PickGroup:
    """The lines on one shelf or bin, in SKU order."""

    location: str
    lines: list[PickLine]

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass
class PickList:
    """Everything to pick, grouped by storage location in walking order, with its totals."""

    groups: list[PickGroup]
    order_refs: list[str]
    loose_items: int

    @property
    def lines(self) -> list[PickLine]:
        return [line for group in self.groups for line in group.lines]

    @property
    def line_count(self) -> int:
        return sum(len(group.lines) for group in self.groups)

    @property
    def unit_count(self) -> int:
        return sum(group.units for group in self.groups)

    @property
    def location_count(self) -> int:
        return sum(1 for group in self.groups if group.location)

    @property
    def unlocated(self) -> PickGroup | None:
        return next((group for group in self.groups if not group.location), None)


def _pick_line(item: Item) -> PickLine:
    return PickLine(
        item_id=item.pk,
        sku=item.sku,
        title=item.title,
        brand=item.brand,
        model=item.model,
        storage_location=item.storage_location.strip(),
    )


def pick_list_build(*, orders: Sequence[Order] = (), items: Sequence[Item] = ()) -> PickList:
    """The walk through the stock room for these orders and items.

    An item wanted by several orders is one line with the units added up and every order
    named, so it is fetched once. Items given without an order count one unit each.
    Shelves are visited in natural order (A-2 before A-10); lines with no storage location
    come last, under their own heading, so nothing is silently left out.
    """
    lines: dict[int, PickLine] = {}
    for order in orders:
        ref = order_reference(order)
        for order_line in order.lines.all():
            line = lines.setdefault(order_line.item_id, _pick_line(order_line.item))
            line.quantity += order_line.quantity
            line.orders[ref] = line.orders.get(ref, 0) + order_line.quantity
    loose = 0
    for item in items:
        line = lines.setdefault(item.pk, _pick_line(item))
        line.quantity += 1
        loose += 1
    by_location: dict[str, PickGroup] = {}
    for line in lines.values():
        key = line.storage_location.casefold()
        by_location.setdefault(key, PickGroup(location=line.storage_location, lines=[])).lines.append(line)
    groups = sorted(by_location.values(), key=lambda group: location_sort_key(group.location))
    for group in groups:
        group.lines.sort(key=lambda line: location_sort_key(line.sku))
    return PickList(groups=groups, order_refs=[order_reference(order) for order in orders], loose_items=loose)
