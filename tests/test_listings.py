"""The listing manager: list, delist and relist set desired state; edits mark listings for a push."""

from decimal import Decimal

import pytest

from inventory.channels import PermanentChannelError
from inventory.models import ChannelConnection, ChannelListing, ListingState
from inventory.services import Actor, item_transition, item_update, stock_adjust
from inventory.services.listings import (
    listing_quantity,
    listings_end,
    listings_lagging,
    listings_publish,
    listings_relist,
)
from tests.factories import make_item

pytestmark = pytest.mark.django_db
ACTOR = Actor(source="test")


@pytest.fixture
def connections(account):
    return [
        ChannelConnection.objects.create(account=account, channel="reverb", name=f"Shop {n}", priority=n)
        for n in (1, 2)
    ]


def test_list_everywhere_creates_one_listing_per_enabled_connection_and_enqueues(
    account, connections, django_capture_on_commit_callbacks
):
    ChannelConnection.objects.create(account=account, channel="reverb", name="Off", enabled=False)
    item = make_item(account, sku="ES335")
    with django_capture_on_commit_callbacks() as callbacks:
        result = listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    assert result.done == [{"id": item.pk, "sku": "ES335", "connections": ["Shop 1", "Shop 2"]}]
    listings = ChannelListing.objects.filter(item=item)
    assert sorted(listings.values_list("connection__name", "desired_state", "actual_state")) == [
        ("Shop 1", "live", "pending"),
        ("Shop 2", "live", "pending"),
    ]
    assert len(callbacks) == 1  # one on-commit hook enqueues both listings


def test_listing_twice_creates_nothing_new(account, connections):
    item = make_item(account)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    assert ChannelListing.objects.filter(item=item).count() == 2


def test_only_active_items_with_stock_are_listed_and_the_rest_say_why(account, connections):
    draft = make_item(account, n=1, sku="D-1", state="draft")
    empty = make_item(account, n=2, sku="E-1", quantity=0)
    result = listings_publish(account=account, item_ids=[draft.pk, empty.pk], actor=ACTOR)
    assert result.done == []
    assert {row["sku"]: row["reason"] for row in result.not_done} == {
        "D-1": "is draft; make it active first",
        "E-1": "nothing available to sell",
    }
    assert not ChannelListing.objects.exists()


def test_listing_without_any_connection_says_what_to_do(account):
    item = make_item(account)
    with pytest.raises(PermanentChannelError, match="No active channel connection"):
        listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)


def test_list_on_selected_connections_only(account, connections):
    item = make_item(account)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR, connection_ids=[connections[1].pk])
    assert list(ChannelListing.objects.values_list("connection__name", flat=True)) == ["Shop 2"]


def test_other_accounts_connections_are_never_used(account, other_account, connections):
    ChannelConnection.objects.create(account=other_account, channel="reverb", name="Theirs")
    item = make_item(account)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    assert "Theirs" not in ChannelListing.objects.values_list("connection__name", flat=True)


def test_delist_ends_live_listings_and_unpublished_ones_at_once(account, connections):
    item = make_item(account)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    ChannelListing.objects.filter(connection=connections[0]).update(actual_state="live", external_id="X1")
    listings_end(account=account, item_ids=[item.pk], actor=ACTOR)
    by_conn = {lst.connection_id: lst for lst in ChannelListing.objects.filter(item=item)}
    assert (by_conn[connections[0].pk].desired_state, by_conn[connections[0].pk].actual_state) == ("ended", "live")
    # Never reached the channel: nothing to end there.
    assert (by_conn[connections[1].pk].desired_state, by_conn[connections[1].pk].actual_state) == ("ended", "ended")


def test_relist_marks_live_listings_to_end_and_publish_again(account, connections):
    item = make_item(account)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    ChannelListing.objects.update(actual_state="live", external_id="X")
    ChannelListing.objects.filter(connection=connections[1]).update(external_id="Y")
    result = listings_relist(account=account, item_ids=[item.pk], actor=ACTOR)
    assert result.done[0]["listings"] == 2
    assert set(ChannelListing.objects.values_list("relist_requested", "desired_state")) == {(True, "live")}


def test_editing_an_item_marks_only_its_live_listings_for_a_push(account, connections):
    item = make_item(account, price=Decimal("100"))
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    ChannelListing.objects.update(actual_state="live", external_id="X")
    ChannelListing.objects.filter(connection=connections[1]).update(
        external_id="Y", desired_state="ended", actual_state="ended"
    )
    item_update(item_id=item.pk, actor=ACTOR, changes={"price": Decimal("120")})
    assert dict(ChannelListing.objects.values_list("connection__name", "needs_push")) == {
        "Shop 1": True,
        "Shop 2": False,
    }


def test_an_edit_that_changes_nothing_marks_nothing(account, connections):
    item = make_item(account, price=Decimal("100"))
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    ChannelListing.objects.update(actual_state="live", external_id="X", needs_push=False)
    ChannelListing.objects.filter(connection=connections[1]).update(external_id="Y")
    item_update(item_id=item.pk, actor=ACTOR, changes={"price": Decimal("100")})
    assert not ChannelListing.objects.filter(needs_push=True).exists()


def test_stock_changes_mark_listings_for_a_quantity_push(account, connections):
    item = make_item(account, quantity=5)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    ChannelListing.objects.update(actual_state="live", needs_push=False)
    stock_adjust(item_id=item.pk, actor=ACTOR, delta=2, reason="received")
    assert ChannelListing.objects.filter(needs_push=True).count() == 2


def test_moving_an_item_back_to_draft_takes_it_off_sale_everywhere(account, connections):
    item = make_item(account)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    ChannelListing.objects.update(actual_state="live", external_id="X")
    ChannelListing.objects.filter(connection=connections[1]).update(external_id="Y")
    item_transition(item_id=item.pk, to_state="draft", actor=ACTOR)
    assert set(ChannelListing.objects.values_list("desired_state", "end_reason")) == {("ended", "withdrawn")}


def test_the_stock_buffer_holds_back_multi_quantity_stock_but_never_hides_a_unique_item(account):
    buffered = ChannelConnection(account=account, channel="reverb", name="B", stock_buffer_percent=25)
    assert listing_quantity(make_item(account, n=1, quantity=10), buffered) == 7  # 3 held back (rounded up)
    assert listing_quantity(make_item(account, n=2, quantity=1), buffered) == 1
    assert listing_quantity(make_item(account, n=3, quantity=2), buffered) == 1


def test_the_sweeper_finds_listings_lagging_for_over_a_minute(account, connections):
    from datetime import timedelta

    from django.utils import timezone

    item = make_item(account)
    listings_publish(account=account, item_ids=[item.pk], actor=ACTOR)
    assert listings_lagging() == []  # just changed: its task is on the way
    ChannelListing.objects.update(desired_changed_at=timezone.now() - timedelta(minutes=2))
    assert len(listings_lagging()) == 2
    ChannelListing.objects.update(actual_state=ListingState.LIVE)
    assert listings_lagging() == []
