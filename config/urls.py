from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from accounts.api.views import api_token_obtain
from inventory.health import liveness, readiness
from inventory.webhooks import channel_webhook

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # The admin's "Forgot your password?" link (shown when this name exists) goes to allauth's reset.
    path(
        "admin/password_reset/",
        RedirectView.as_view(pattern_name="account_reset_password"),
        name="admin_password_reset",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("health/live/", liveness, name="health-live"),
    path("health/ready/", readiness, name="health-ready"),
    path("api/v1/billing/", include("billing.api.urls")),
    path("billing/", include("billing.urls")),
    path("api/v1/", include("inventory.api.urls")),
    path("hooks/<str:channel>/<str:token>/", channel_webhook, name="channel-webhook"),
    path("channels/woocommerce/", include("channels_woocommerce.urls")),
    path("", include("channels_etsy.urls")),
    path("api/v1/", include("documents.api.urls")),
    path("api/v1/auth/token/", api_token_obtain, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script as a file, so the CSP needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

handler400 = "config.views.bad_request"
handler404 = "config.views.page_not_found"
