"""Connecting an Etsy shop: the connect button (admin and API) and Etsy's OAuth callback.

The button starts an authorization code flow with PKCE (S256) and a one-use `state`
(channels_etsy.services); Etsy sends the shop owner back to the callback, which checks the
state belongs to a flow this site started for the signed-in user's account, then exchanges
the code. Tokens never reach the page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api.permissions import IsAccountMember, RoleAllowsAction
from accounts.roles import Capability, require_capability
from inventory.channels import ChannelError

from .models import EtsyConnection
from .services import etsy_oauth_complete, etsy_oauth_start


def callback_url(connection: EtsyConnection, request=None) -> str:
    if connection.redirect_uri:
        return connection.redirect_uri
    path = reverse("etsy-oauth-callback")
    if settings.SITE_URL:
        return settings.SITE_URL + path
    return request.build_absolute_uri(path) if request is not None else path


@staff_member_required
def etsy_connect(request, pk: int):
    """The admin's Connect Etsy button: off to Etsy's consent page."""
    require_capability(request.user, Capability.CONNECTIONS)
    connection = get_object_or_404(EtsyConnection.objects.for_user(request.user), pk=pk)
    try:
        url = etsy_oauth_start(connection=connection, redirect_uri=callback_url(connection, request))
    except ChannelError as refusal:
        messages.error(request, refusal.message)
        return HttpResponseRedirect(reverse("admin:channels_etsy_etsyconnection_change", args=[pk]))
    return HttpResponseRedirect(url)


@staff_member_required
def etsy_oauth_callback(request):
    """Where Etsy sends the shop owner back: ?code=&state= (or ?error=)."""
    if request.GET.get("error"):
        return HttpResponse(
            f"Etsy did not grant access ({request.GET.get('error')}). Start Connect Etsy again.".encode(), status=400
        )
    account_id = None if request.user.is_superuser else request.user.account_id
    try:
        connection = etsy_oauth_complete(
            state=request.GET.get("state", ""), code=request.GET.get("code", ""), account_id=account_id
        )
    except ChannelError as refusal:
        return HttpResponse(refusal.message.encode(), status=400, content_type="text/plain; charset=utf-8")
    messages.success(request, f"{connection.name} is connected to Etsy shop {connection.shop_id}.")
    return HttpResponseRedirect(reverse("admin:channels_etsy_etsyconnection_change", args=[connection.pk]))


@extend_schema(
    request=None,
    responses=inline_serializer("EtsyAuthorize", {"authorize_url": serializers.URLField()}),
    summary="Start connecting an Etsy shop (OAuth with PKCE): open authorize_url in a browser.",
)
@api_view(["POST"])
@permission_classes([IsAccountMember, RoleAllowsAction])
def etsy_authorize(request, pk: int):
    connection = get_object_or_404(EtsyConnection.objects.for_user(request.user), pk=pk)
    try:
        url = etsy_oauth_start(connection=connection, redirect_uri=callback_url(connection, request))
    except ChannelError as refusal:
        raise ValidationError({"detail": refusal.message}) from None
    return Response({"authorize_url": url})


etsy_authorize.cls.write_capability = Capability.CONNECTIONS  # accounts.roles: connecting a shop
