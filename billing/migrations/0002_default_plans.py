"""The plans a fresh install starts with. Stripe price ids are set later in the admin (they
differ between Stripe test and live mode). A frozen copy: later edits of DEFAULT_PLANS do
not change what this migration writes."""

from decimal import Decimal

from django.db import migrations

PLANS = {
    "free": {
        "name": "Free",
        "description": "For trying the back office with a small shop.",
        "position": 0,
        "monthly_price": Decimal("0.00"),
        "max_active_listings": 25,
        "max_channels": 2,
        "max_staff_users": 2,
        "api_requests_per_minute": 30,
        "pdf_documents": True,
        "api_access": True,
    },
    "pro": {
        "name": "Pro",
        "description": "For a shop listing on three channels, with bulk tools and imports.",
        "position": 1,
        "monthly_price": Decimal("29.00"),
        "max_active_listings": 300,
        "max_channels": 3,
        "max_staff_users": 5,
        "api_requests_per_minute": 120,
        "bulk_operations": True,
        "listing_import": True,
        "pdf_documents": True,
        "analytics": True,
        "api_access": True,
    },
    "business": {
        "name": "Business",
        "description": "Every channel, the full-rate API; listings above the plan cost a cent a day, not an upgrade.",
        "position": 2,
        "monthly_price": Decimal("79.00"),
        "max_active_listings": 2000,
        "max_channels": None,
        "max_staff_users": 20,
        "api_requests_per_minute": 600,
        "bulk_operations": True,
        "listing_import": True,
        "pdf_documents": True,
        "analytics": True,
        "api_access": True,
        "overage_meter_event_name": "active_listing_overage",
        "overage_price_per_listing_day": Decimal("0.0100"),
    },
    "admin": {
        "name": "Admin (internal)",
        "description": "Internal accounts of the platform: unlimited, never sold.",
        "position": 99,
        "is_public": False,
        "monthly_price": Decimal("0.00"),
        "max_active_listings": None,
        "max_channels": None,
        "max_staff_users": None,
        "api_requests_per_minute": None,
        "bulk_operations": True,
        "listing_import": True,
        "pdf_documents": True,
        "analytics": True,
        "api_access": True,
    },
}


def create_plans(apps, schema_editor):
    plan = apps.get_model("billing", "Plan")
    for code, fields in PLANS.items():
        plan.objects.get_or_create(code=code, defaults=fields)


def remove_plans(apps, schema_editor):
    plan = apps.get_model("billing", "Plan")
    plan.objects.filter(code__in=list(PLANS), subscriptions__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(create_plans, remove_plans)]
