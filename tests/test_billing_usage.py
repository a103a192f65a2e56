"""Usage: counted cheaply, rolled up per billing period; BUSINESS overage reported to Stripe once a day."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import OverageReport, Plan, UsagePeriod
from billing.services import overage_report_all, overage_report_day, usage_record, usage_rollup
from inventory.services import Actor, LineSpec, item_transition, order_create
from tests.test_billing_fixtures import *  # noqa: F403 (fixtures)
from tests.test_billing_fixtures import activate_items, subscribe

pytestmark = pytest.mark.django_db
YESTERDAY = date(2026, 11, 21)


def test_api_requests_are_counted_without_a_database_write_and_rolled_up(api, account):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert api.get("/api/v1/billing/plans/").status_code == 200

    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert writes == []
    assert not UsagePeriod.objects.filter(account=account).exists()

    usage_rollup()

    period = UsagePeriod.objects.get(account=account)
    assert period.api_requests == 5
    usage_rollup()  # the counter was taken: rolling up again adds nothing
    period.refresh_from_db()
    assert period.api_requests == 5
    assert api.get("/api/v1/billing/").json()["counters"]["api_requests"] == 6  # this request counts too


def test_rollup_records_peaks_and_imported_orders_per_period(account, other_account):
    items = activate_items(account, 5)
    usage_rollup()
    for item in items[2:]:
        item_transition(item_id=item.pk, to_state="draft", actor=Actor(source="test"))
    for channel, external_id, item in [("reverb", "R-1", items[0]), ("manual", "SHOP-1", items[1])]:
        order_create(
            account=account,
            actor=Actor(source="test"),
            channel=channel,
            external_id=external_id,
            placed_at=timezone.now(),
            lines=[LineSpec(item.pk, 1)],
        )
    usage_record(account.pk, "pdfs_generated", 3)
    usage_rollup()

    period = UsagePeriod.objects.get(account=account)
    assert period.peak_active_listings == 5  # the peak stays after listings end
    assert period.orders_imported == 1  # channel orders; the shop's own sales are not imports
    assert period.pdfs_generated == 3
    now = timezone.now()
    assert period.period_start <= now < period.period_end
    assert period.period_start.day == 1  # no Stripe period: the calendar month
    assert UsagePeriod.objects.get(account=other_account).peak_active_listings == 0


def test_usage_follows_the_stripe_billing_period(stripe_sandbox, account):
    subscription = subscribe(stripe_sandbox, account, "pro")

    usage_rollup()

    period = UsagePeriod.objects.get(account=account)
    assert (period.period_start, period.period_end) == (
        subscription.current_period_start,
        subscription.current_period_end,
    )


def test_unknown_counters_are_refused_by_name():
    with pytest.raises(ValueError, match="Unknown usage counter 'pages'"):
        usage_record(1, "pages")


# --- BUSINESS overage ---------------------------------------------------------------------------


@pytest.fixture
def business(stripe_sandbox, account):
    Plan.objects.filter(code="business").update(max_active_listings=3)
    subscribe(stripe_sandbox, account, "business")
    activate_items(account, 7)
    return account


def test_listings_above_business_are_reported_once_a_day_as_a_meter_event(stripe_sandbox, business):
    reports = overage_report_all(day=YESTERDAY)

    assert [(r.quantity, r.active_listings, r.included_listings) for r in reports] == [(4, 7, 3)]
    customer = next(iter(stripe_sandbox.customers))
    call = stripe_sandbox.calls("POST", "/v1/billing/meter_events")[0]
    identifier = f"overage-{business.pk}-2026-11-21"
    assert call.params == {
        "event_name": "active_listing_overage",
        "identifier": identifier,
        "timestamp": str(int(datetime(2026, 11, 21, 23, 59, 59, tzinfo=UTC).timestamp())),
        "payload": {"stripe_customer_id": customer, "value": "4"},
    }
    assert call.idempotency_key == f"meter-event:{identifier}"
    assert stripe_sandbox.meter_events[identifier]["payload"]["value"] == "4"

    overage_report_all(day=YESTERDAY)  # the task runs twice

    assert OverageReport.objects.count() == 1
    assert len(stripe_sandbox.calls("POST", "/v1/billing/meter_events")) == 1


def test_a_report_stripe_did_not_take_is_resent_with_the_same_value(stripe_sandbox, business):
    stripe_sandbox.fail_next.append((500, "meter service down"))

    report = overage_report_day(account_id=business.pk, day=YESTERDAY)
    assert report.sent_at is None
    assert "Stripe could not record the usage" in report.last_error

    activate_items(business, 2, start=100)  # more listings today must not change yesterday's report
    overage_report_all(day=YESTERDAY + timedelta(days=1))

    report.refresh_from_db()
    assert report.sent_at is not None and report.quantity == 4
    sent = [
        c for c in stripe_sandbox.calls("POST", "/v1/billing/meter_events") if c.params["identifier"].endswith("21")
    ]
    assert [c.params["payload"]["value"] for c in sent] == ["4", "4"]
    assert stripe_sandbox.meter_events[f"overage-{business.pk}-2026-11-21"]["payload"]["value"] == "4"


def test_nothing_is_reported_under_the_limit_or_without_overage_billing(stripe_sandbox, account, other_account):
    subscribe(stripe_sandbox, account, "business")
    activate_items(account, 2)
    subscribe(stripe_sandbox, other_account, "pro")
    activate_items(other_account, 30)

    assert overage_report_all(day=YESTERDAY) == []
    assert stripe_sandbox.calls("POST", "/v1/billing/meter_events") == []


def test_only_one_rollup_runs_at_a_time(account):
    from django.core.cache import cache

    from billing.services.usage import ROLLUP_LOCK

    usage_record(account.pk, "api_requests", 4)
    cache.add(ROLLUP_LOCK, 1, 60)  # another worker is rolling up

    assert usage_rollup() == 0
    assert not UsagePeriod.objects.filter(account=account).exists()
    cache.delete(ROLLUP_LOCK)
    assert usage_rollup() >= 1
    assert UsagePeriod.objects.get(account=account).api_requests == 4
