"""The item admin's SEO screens: each channel's preview on the item page, and the bulk SEO action.

Both ask the channels through inventory.services.seo; the action's dry run and its apply are
the same service call (apply=False, then apply=True), so what staff saw is what is written.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from .admin import ItemAdmin, ReadOnlyInline, admin_actor
from .models import ItemEdit
from .services.seo import PLACEHOLDERS, Operation, item_seo_preview, items_seo_bulk

PREVIEW_ROWS = 100  # items shown in the dry run; the counts cover all of them


class SeoBulkForm(forms.Form):
    operation = forms.ChoiceField(choices=Operation.choices)
    value = forms.CharField(
        max_length=500,
        label="Pattern or keyword",
        help_text="A pattern such as {brand} {model} {year} {finish} (placeholders: "
        + ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        + "), or one keyword.",
        widget=forms.TextInput(attrs={"size": 60}),
    )


class ItemEditInline(ReadOnlyInline):
    """The item's edits of its SEO fields (by hand or in bulk), newest first."""

    model = ItemEdit
    verbose_name = "SEO edit"
    verbose_name_plural = "SEO edits"
    fields = readonly_fields = ["created_at", "field", "old_value", "new_value", "source", "user", "reason"]
    ordering = ["-created_at", "-id"]
    max_num = 0
    change_only = True  # ItemAdmin.get_inlines: not on the add page

    def has_view_permission(self, request, obj=None):
        return True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


def item_seo_panel(request, item) -> dict:
    """The item page's "SEO on each channel" table."""
    return {"seo_channels": item_seo_preview(item)}


@admin.action(description="Edit SEO (pattern or keyword)…", permissions=["change"])
def edit_seo(modeladmin, request, queryset):
    """An intermediate page: choose the edit, see its dry run per item and channel, then apply it."""
    form = SeoBulkForm(request.POST if "operation" in request.POST else None)
    ids = list(queryset.values_list("pk", flat=True))
    result = None
    if form.is_bound and form.is_valid():
        apply = "apply" in request.POST
        try:
            result = items_seo_bulk(
                account=modeladmin.account_for(request),
                item_ids=ids,
                operation=form.cleaned_data["operation"],
                value=form.cleaned_data["value"],
                actor=admin_actor(request),
                apply=apply,
            )
        except ValidationError as error:
            for name, problems in error.message_dict.items():
                form.add_error(name if name in form.fields else ("value" if name == "pattern" else None), problems)
        else:
            if apply:
                modeladmin.message_user(request, f"SEO edited: {result.summary()}.", messages.SUCCESS)
                return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Edit SEO of the chosen items",
        "form": form,
        "count": len(ids),
        "result": result,
        "rows": result.changed[:PREVIEW_ROWS] if result else [],
        "more": max(len(result.changed) - PREVIEW_ROWS, 0) if result else 0,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        "selected": ids,
    }
    return TemplateResponse(request, "admin/inventory/item/seo_bulk.html", context)


ItemAdmin.extend(actions=[edit_seo], context=[item_seo_panel])
ItemAdmin.inlines = [*ItemAdmin.inlines, ItemEditInline]
