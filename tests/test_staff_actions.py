"""What staff do with what the engine raises: settle double sales, acknowledge alerts, retry listings."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.channels import OrderLineSeen, OrderSeen
from inventory.models import Alert, ChannelConnection, ChannelListing, Conflict
from inventory.services.selling import sale_record
from tests.factories import make_item

pytestmark = pytest.mark.django_db


def _sale(connection, order_id, sku, when):
    seen = OrderSeen(
        external_id=order_id,
        status="paid",
        placed_at=when,
        updated_at=when,
        lines=(OrderLineSeen(sku=sku, external_listing_id="", quantity=1),),
    )
    return sale_record(connection=connection, seen=seen)


@pytest.fixture
def double_sale(account):
    a = ChannelConnection.objects.create(account=account, channel="reverb", name="A", priority=1)
    b = ChannelConnection.objects.create(account=account, channel="reverb", name="B", priority=2)
    make_item(account, sku="ONE-OFF")
    now = timezone.now()
    _sale(a, "A1", "ONE-OFF", now - timedelta(seconds=5))
    return _sale(b, "B1", "ONE-OFF", now).conflict


def test_resolving_a_double_sale_acknowledges_its_alert(admin_client_for, staff, double_sale):
    client = admin_client_for(staff)
    client.post("/admin/inventory/conflict/", {"action": "mark_resolved", "_selected_action": [double_sale.pk]})
    double_sale.refresh_from_db()
    assert (double_sale.status, double_sale.resolved_by) == ("resolved", staff)
    assert not Alert.objects.filter(conflict=double_sale, acknowledged_at__isnull=True).exists()


def test_the_conflict_page_shows_both_orders_side_by_side(admin_client_for, staff, double_sale):
    page = admin_client_for(staff).get(f"/admin/inventory/conflict/{double_sale.pk}/change/").content.decode()
    assert "#A1" in page and "#B1" in page and "Winner" in page and "Loser" in page


def test_another_accounts_staff_cannot_resolve_or_see_the_conflict(admin_client_for, other_staff, double_sale):
    client = admin_client_for(other_staff)
    client.post("/admin/inventory/conflict/", {"action": "mark_resolved", "_selected_action": [double_sale.pk]})
    double_sale.refresh_from_db()
    assert double_sale.status == "open"
    assert "ONE-OFF" not in client.get("/admin/inventory/alert/").content.decode()


def test_acknowledging_alerts(admin_client_for, staff, double_sale):
    alert = Alert.objects.get(conflict=double_sale)
    admin_client_for(staff).post("/admin/inventory/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.acknowledged_by == staff


def test_retrying_a_listing_in_error_marks_it_for_a_push(
    admin_client_for, staff, account, django_capture_on_commit_callbacks
):
    connection = ChannelConnection.objects.create(account=account, channel="reverb", name="A")
    item = make_item(account)
    listing = ChannelListing.objects.create(
        account=account, item=item, connection=connection, actual_state="error", last_error="422 bad category"
    )
    with django_capture_on_commit_callbacks() as callbacks:
        admin_client_for(staff).post(
            "/admin/inventory/channellisting/", {"action": "retry_now", "_selected_action": [listing.pk]}
        )
    listing.refresh_from_db()
    assert listing.needs_push
    assert callbacks, "the retry is enqueued after commit"
    assert Conflict.objects.count() == 0


def test_settling_a_double_sale_by_cancelling_the_loser_records_it_and_keeps_the_winner(staff, double_sale):
    from inventory.services import Actor
    from inventory.services.alerts import conflict_settle

    settled = conflict_settle(conflict_id=double_sale.pk, cancel="loser", actor=Actor(user=staff, source="admin"))

    assert (settled.status, settled.resolved_by) == ("resolved", staff)
    assert settled.note == f"Cancelled the losing order {settled.losing_order} (B)."
    settled.losing_order.refresh_from_db()
    settled.winning_order.refresh_from_db()
    assert settled.losing_order.status == "cancelled"
    assert settled.winning_order.status != "cancelled"
    settled.item.refresh_from_db()
    assert settled.item.state == "sold", "the winner keeps the item"
    assert not Alert.objects.filter(conflict=double_sale, acknowledged_at__isnull=True).exists()
    # Settling again changes nothing (it is resolved).
    again = conflict_settle(conflict_id=double_sale.pk, cancel="winner", actor=Actor(user=staff, source="admin"))
    again.winning_order.refresh_from_db()
    assert again.winning_order.status != "cancelled"


def test_settling_when_the_first_sale_fell_through_puts_the_item_back_on_sale(staff, double_sale):
    from inventory.services import Actor
    from inventory.services.alerts import conflict_settle

    settled = conflict_settle(conflict_id=double_sale.pk, cancel="winner", actor=Actor(user=staff, source="admin"))

    settled.winning_order.refresh_from_db()
    assert settled.winning_order.status == "cancelled"
    assert "back on sale" in settled.note
    settled.item.refresh_from_db()
    assert settled.item.state == "active"
