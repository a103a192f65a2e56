"""Marking an order shipped: carrier and tracking recorded, sold items move to shipped, nothing else."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from inventory.errors import OrderStateError
from inventory.models import ItemStateChange, Order
from inventory.services import Actor, LineSpec, order_cancel, order_complete, order_create, order_ship
from inventory.services.orders import shipment_push, shipment_push_supported
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="admin")


def _order(account, item, external_id="W-1"):
    order, _ = order_create(
        account=account,
        actor=STAFF,
        channel="manual",
        external_id=external_id,
        placed_at=timezone.now(),
        lines=[LineSpec(item.pk, 1)],
    )
    return order


def test_a_paid_order_ships_with_carrier_and_tracking_and_its_item_moves_to_shipped(account):
    item = make_item(account, sku="ONE-OFF")
    order = order_complete(order_id=_order(account, item).pk, actor=STAFF)
    item.refresh_from_db()
    assert item.state == "sold"

    shipped = order_ship(order_id=order.pk, actor=STAFF, carrier=" UPS ", tracking_number="1Z999 ")

    assert (shipped.carrier, shipped.tracking_number) == ("UPS", "1Z999")
    assert shipped.shipped_at is not None and shipped.status == "completed"
    item.refresh_from_db()
    assert item.state == "shipped"
    last = ItemStateChange.objects.filter(item=item).order_by("-id").first()
    assert (last.from_state, last.to_state) == ("sold", "shipped")
    assert "shipped with UPS" in last.reason


def test_shipping_again_corrects_the_tracking_and_keeps_the_first_time_and_one_history_row(account):
    item = make_item(account, sku="ONE-OFF")
    order = order_complete(order_id=_order(account, item).pk, actor=STAFF)
    first = order_ship(order_id=order.pk, actor=STAFF, carrier="UPS", tracking_number="WRONG")
    again = order_ship(order_id=order.pk, actor=STAFF, carrier="DHL", tracking_number="JD0001")
    assert again.shipped_at == first.shipped_at
    assert (again.carrier, again.tracking_number) == ("DHL", "JD0001")
    assert ItemStateChange.objects.filter(item=item, to_state="shipped").count() == 1


def test_an_unpaid_or_cancelled_order_does_not_ship_and_nothing_is_written(account):
    item = make_item(account, sku="ONE-OFF")
    unpaid = _order(account, item)
    with pytest.raises(OrderStateError, match="not paid yet"):
        order_ship(order_id=unpaid.pk, actor=STAFF, carrier="UPS")
    order_cancel(order_id=unpaid.pk, actor=STAFF)
    with pytest.raises(OrderStateError, match="cancelled"):
        order_ship(order_id=unpaid.pk, actor=STAFF, carrier="UPS")
    unpaid.refresh_from_db()
    assert (unpaid.shipped_at, unpaid.carrier) == (None, "")


def test_a_carrier_is_required(account):
    item = make_item(account, sku="ONE-OFF")
    order = order_complete(order_id=_order(account, item).pk, actor=STAFF)
    with pytest.raises(ValidationError):
        order_ship(order_id=order.pk, actor=STAFF, carrier="  ")
    assert Order.objects.get(pk=order.pk).shipped_at is None


def test_a_manual_order_or_a_channel_without_a_ship_step_is_not_pushed(account):
    item = make_item(account, sku="ONE-OFF")
    order = order_complete(order_id=_order(account, item).pk, actor=STAFF)
    order_ship(order_id=order.pk, actor=STAFF, carrier="UPS", tracking_number="1Z")
    assert shipment_push_supported(order) is False
    assert shipment_push(order_id=order.pk) is False
