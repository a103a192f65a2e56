"""The one place a subscription row is fetched for change and its change recorded."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Account

from ..models import Plan, Subscription, SubscriptionChange
from ..selectors import banner_refresh, billing_state_forget


def subscription_for_update(account: Account | int) -> tuple[Subscription, tuple[Plan, str]]:
    """The account's subscription row, locked (created on the default plan if missing), and
    its (plan, status) before the caller changes it. Call inside a transaction."""
    from .plans import default_plan

    account_id = getattr(account, "pk", account)
    if not Subscription.objects.filter(account_id=account_id).exists():
        Subscription.objects.get_or_create(account_id=account_id, defaults={"plan": default_plan()})
    subscription = Subscription.objects.select_for_update().select_related("plan", "account").get(account_id=account_id)
    return subscription, (subscription.plan, subscription.status)


def subscription_changed(
    subscription: Subscription,
    *,
    before: tuple[Plan, str],
    source: str,
    user=None,
) -> SubscriptionChange | None:
    """Write the audit row if the plan or status changed, and refresh cached state after commit."""
    account_id = subscription.account_id
    transaction.on_commit(lambda: (billing_state_forget(account_id), banner_refresh(account_id)))
    from_plan, from_status = before
    if from_plan.pk == subscription.plan_id and from_status == subscription.status:
        return None
    return SubscriptionChange.objects.create(
        account_id=account_id,
        subscription=subscription,
        from_plan=from_plan,
        to_plan=subscription.plan,
        from_status=from_status,
        to_status=subscription.status,
        source=source[:60],
        user=user if getattr(user, "pk", None) else None,
    )
