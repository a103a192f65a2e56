from django.urls import path

from .views import etsy_authorize, etsy_connect, etsy_oauth_callback

urlpatterns = [
    path("etsy/oauth/callback/", etsy_oauth_callback, name="etsy-oauth-callback"),
    path("etsy/connections/<int:pk>/connect/", etsy_connect, name="etsy-connect"),
    path("api/v1/etsy/connections/<int:pk>/authorize/", etsy_authorize, name="etsy-authorize"),
]
