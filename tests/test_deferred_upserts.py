"""A converge's record of what the channel said rides with its final write (returning.upserts_deferred).

Reverb's detail row is written after every call of a converge; inside one it waits for the
listing's final write to carry it (one statement fewer an end), and is never lost or reordered:
written as the block ends when nothing carried it, also when the block fails, and before any
other write of the same rows.
"""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection, ReverbListingDetail
from inventory.services.returning import upserts_deferred, upserts_flush

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def reverb(account):
    return ReverbConnection.objects.create(account=account, name="Reverb main shop", api_token="rvb-0123456789ab")


def _said(listing_id: str, state: str) -> dict:
    return {"id": listing_id, "sku": "LP-1959", "slug": f"{listing_id}-les-paul", "state": {"slug": state}}


def _states(reverb) -> list[tuple[str, str]]:
    return sorted(ReverbListingDetail.objects.filter(connection=reverb).values_list("listing_id", "state"))


def test_outside_a_converge_what_reverb_said_is_written_at_once(reverb):
    reverb_sync._remember(reverb, _said("71", "live"))

    assert _states(reverb) == [("71", "live")]


def test_inside_a_converge_it_waits_then_is_written_once_with_its_last_word(reverb):
    # Given a converge that hears twice about one listing and once about another
    with CaptureQueriesContext(db) as queries, upserts_deferred():
        reverb_sync._remember(reverb, _said("71", "live"))
        reverb_sync._remember(reverb, _said("72", "live"))
        reverb_sync._remember(reverb, _said("71", "ended"))
        # Then nothing is written while it runs
        assert len(queries) == 0
        assert _states(reverb) == []
    # And as it ends each row is written once, with what Reverb said last
    writes = [q["sql"].split(" (")[0] for q in queries if not q["sql"].startswith("SELECT")]
    assert writes == ['INSERT INTO "channels_reverb_reverblistingdetail"'] * 2
    assert _states(reverb) == [("71", "ended"), ("72", "live")]


def test_a_converge_that_fails_still_keeps_what_reverb_said(reverb):
    # Given a converge that read the listing back, then failed
    with pytest.raises(RuntimeError, match="Reverb will not end"), upserts_deferred():
        reverb_sync._remember(reverb, _said("71", "live"))
        raise RuntimeError("Reverb will not end a listing that can still sell")

    # Then the read-back is on record all the same, and the converge's own error came through
    assert _states(reverb) == [("71", "live")]


def test_a_later_update_of_the_row_is_not_overtaken_by_the_waiting_upsert(reverb):
    # Given a converge that read a listing back, then found it deleted on Reverb
    with upserts_deferred():
        reverb_sync._remember(reverb, _said("71", "live"))
        reverb_sync._forget_state(reverb, "71", "deleted")

    # Then the row says deleted: the upsert was written first, the update after it
    assert _states(reverb) == [("71", "deleted")]


def test_flush_writes_what_waits_now_and_leaves_nothing_for_the_end(reverb):
    with CaptureQueriesContext(db) as queries, upserts_deferred():
        reverb_sync._remember(reverb, _said("71", "live"))
        upserts_flush()
        assert _states(reverb) == [("71", "live")]
        written = len(queries)

    assert len(queries) == written  # nothing written twice as the block ends
