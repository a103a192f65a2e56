"""The SEO endpoints of items: each channel's preview of one item, and the bulk SEO edit."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from inventory.services.seo import (
    BULK_MAX_ITEMS,
    PLACEHOLDERS,
    Operation,
    channel_seo_data,
    item_seo_preview,
    items_seo_bulk,
)

from .actor import api_actor


class SeoFieldSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The channel's own name for the text (title, seo.title, tags...).")
    label = serializers.CharField()
    source = serializers.CharField(help_text="Which of the item's fields feed it.")
    wanted = serializers.CharField(allow_blank=True, help_text="The text before the channel's rules.")
    sent = serializers.CharField(allow_blank=True, help_text="What would be sent (tags joined by commas).")
    sent_to_channel = serializers.BooleanField()
    length = serializers.IntegerField(help_text="Characters sent (tags: how many).")
    limit = serializers.IntegerField(allow_null=True, help_text="The channel's limit; null when it states none.")
    item_limit = serializers.IntegerField(allow_null=True, help_text="For tags: characters per tag.")
    cut = serializers.CharField(allow_blank=True, help_text="The text the limit cuts off.")
    dropped = serializers.ListField(child=serializers.CharField(), help_text="Tags left out.")
    tags = serializers.ListField(child=serializers.CharField(), allow_null=True)
    note = serializers.CharField(allow_blank=True)


class ChannelSeoSerializer(serializers.Serializer):
    channel = serializers.CharField()
    label = serializers.CharField()
    rules_stated = serializers.BooleanField()
    fields = SeoFieldSerializer(many=True)


class SeoBulkInputSerializer(serializers.Serializer):
    operation = serializers.ChoiceField(choices=Operation.choices)
    value = serializers.CharField(
        max_length=500,
        help_text="fill_title / fill_description: a pattern with "
        + ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        + "; append_keyword / remove_keyword: one keyword.",
    )
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=BULK_MAX_ITEMS,
        help_text="The items to edit. Without ids, the items the query string's filters select "
        "(the same filters as the item list, e.g. ?brand=Fender&state=active).",
    )
    apply = serializers.BooleanField(default=False, help_text="false (default): a dry run that writes nothing.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class SeoBulkRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField(allow_null=True)
    changes = serializers.DictField(child=serializers.DictField(), required=False)
    channels = ChannelSeoSerializer(
        many=True, required=False, help_text="Per channel, the texts this edit changes, as they would be sent."
    )
    channels_unchanged = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Channels whose texts stay the same: no push."
    )
    reason = serializers.CharField(required=False)


class SeoBulkOutputSerializer(serializers.Serializer):
    operation = serializers.CharField()
    applied = serializers.BooleanField()
    summary = serializers.CharField()
    listings_marked = serializers.IntegerField(help_text="Live listings that will get the SEO fields pushed.")
    changed = SeoBulkRowSerializer(many=True)
    unchanged = SeoBulkRowSerializer(many=True)
    not_done = SeoBulkRowSerializer(many=True)


class ItemSeoActionsMixin:
    """Mixed into the item viewset: `seo` (one item) and `bulk-seo` (many)."""

    # A plain array, not a page: the action is not paginated or filtered (and its schema says so).
    @extend_schema(responses=ChannelSeoSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def seo(self, request, pk=None):
        """What each channel would be sent of the item's title and SEO fields, its limits and what is cut."""
        return Response(channel_seo_data(item_seo_preview(self.get_object())))

    @extend_schema(
        request=SeoBulkInputSerializer,
        responses=SeoBulkOutputSerializer,
        parameters=[OpenApiParameter("brand", str, description="Any item-list filter selects the items without ids.")],
    )
    @action(detail=False, methods=["post"], url_path="bulk-seo")
    def bulk_seo(self, request):
        """Fill SEO titles or descriptions from a pattern, or add / remove a keyword, on many items.
        A dry run first (what changes per item, and what each channel would be sent and cut); with
        "apply": true the same edit is written, with history rows, and pushed to live listings."""
        data = SeoBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = self.get_account()
        items = self.filter_queryset(self.get_queryset())
        ids = data.validated_data.get("ids")
        if ids is not None:
            items = items.filter(pk__in=ids)
        elif not set(request.query_params) - {"format"}:
            raise serializers.ValidationError(
                {"ids": ["Give the items' ids, or filter them in the query string (e.g. ?brand=Fender)."]}
            )
        chosen = list(items.order_by("pk").values_list("pk", flat=True)[: BULK_MAX_ITEMS + 1])
        try:
            result = items_seo_bulk(
                account=account,
                item_ids=chosen + [i for i in ids or () if i not in set(chosen)],
                operation=data.validated_data["operation"],
                value=data.validated_data["value"],
                actor=api_actor(request),
                apply=data.validated_data["apply"],
                reason=data.validated_data["reason"],
            )
        except DjangoValidationError as error:
            detail = {("value" if k == "pattern" else k): v for k, v in error.message_dict.items()}
            raise serializers.ValidationError(detail) from error
        body = {
            "operation": result.operation,
            "applied": result.applied,
            "summary": result.summary(),
            "listings_marked": result.listings_marked,
            "changed": result.changed,
            "unchanged": result.unchanged,
            "not_done": result.not_done,
        }
        return Response(body)
