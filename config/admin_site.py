"""The admin site shop staff open every morning: Items first, a dashboard of what needs attention.

`BackOfficeAdminConfig` replaces django.contrib.admin in INSTALLED_APPS so `admin.site` (what every
app's admin.py registers with) is a `BackOfficeSite`.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

# The order staff look for things in, by app label, then model name within an app.
APP_ORDER = ["inventory", "documents", "billing", "accounts", "auth", "authtoken", "django_celery_beat"]
MODEL_ORDER = {
    "inventory": [
        "Item",
        "Order",
        "Conflict",
        "Alert",
        "ChannelListing",
        "ChannelConnection",
        "WebhookEvent",
        "SyncRun",
        "StockMovement",
        "StockLock",
    ],
}


def _app_rank(label: str) -> tuple[int, str]:
    if label in APP_ORDER[:1]:
        return (0, label)
    if label.startswith("channels_"):
        return (1, label)  # every channel app, whichever are installed, right after the catalogue
    return (2 + (APP_ORDER.index(label) if label in APP_ORDER else len(APP_ORDER)), label)


class BackOfficeSite(admin.AdminSite):
    site_header = "Gear back office"
    site_title = "Gear back office"
    index_title = "Today"
    index_template = "admin/dashboard.html"
    # There is no public site to view: hide the "View site" link.
    site_url = None

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        apps.sort(key=lambda app: _app_rank(app["app_label"]))
        for app in apps:
            order = MODEL_ORDER.get(app["app_label"])
            if order:
                app["models"].sort(
                    key=lambda m: (
                        order.index(m["object_name"]) if m["object_name"] in order else len(order),
                        m["name"],
                    )
                )
        return apps

    def index(self, request, extra_context=None):
        from inventory.admin_dashboard import analytics_context, dashboard_context

        context = {**dashboard_context(request), **analytics_context(request), **(extra_context or {})}
        return super().index(request, context)


class BackOfficeAdminConfig(AdminConfig):
    default_site = "config.admin_site.BackOfficeSite"
