from django.urls import path

from .views import grant_callback

app_name = "channels_woocommerce"

urlpatterns = [
    path("grant/<int:connection_id>/", grant_callback, name="grant-callback"),
]
