"""The item, order and stock screens of the admin: the shop's main working surface."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from import_export.admin import ImportMixin

from accounts.admin import AccountScopedAdmin, AccountScopedMixin
from billing.errors import BillingError
from billing.gates import Feature, require

from .errors import InventoryError
from .models import (
    Condition,
    Item,
    ItemPhoto,
    ItemStateChange,
    Order,
    Source,
    StockLock,
    StockMovement,
)
from .pagination import LargeTablePaginator
from .resources import ItemResource, item_csv_lines
from .selectors import (
    inventory_summary,
    item_channel_counts,
    item_first_photos,
    item_listing_states,
    item_sale,
    low_stock_items,
    sale_end_seconds,
)
from .services import (
    EDITABLE_FIELDS,
    Actor,
    item_bulk_transition,
    item_create,
    item_transition,
    item_update,
)
from .services.photos import items_mark_reviewed, photo_add, photos_changed, photos_reorder
from .states import ItemState, allowed_targets

FILTER_OPTIONS_CACHE_SECONDS = 60


def admin_actor(request) -> Actor:
    return Actor(user=request.user, source=Source.ADMIN)


def plural(n: int, word: str, words: str = "") -> str:
    """ "1 item", "2 items" (never "1 item(s)")."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


class ExtensibleAdmin:
    """The one place other apps add to the item and order admin, so inventory never imports them.

    From its own admin.py an app calls e.g. `ItemAdmin.extend(actions=[print_labels],
    object_tools=[("Print label", "admin:documents_item_label")])`: actions join the
    changelist's action menu, object tools become buttons on the object's page (the URL
    name is reversed with the object's pk).
    """

    object_tools: tuple[tuple[str, str], ...] = ()
    url_makers: tuple = ()
    context_makers: tuple = ()

    @classmethod
    def extend(cls, *, actions=(), object_tools=(), urls=(), context=()) -> None:
        """`urls`: functions (model_admin) -> [path(...)]; `context`: functions (request, obj) -> dict
        merged into the object page's template context."""
        cls.actions = [*(cls.actions or []), *actions]
        cls.object_tools = (*cls.object_tools, *object_tools)
        cls.url_makers = (*cls.url_makers, *urls)
        cls.context_makers = (*cls.context_makers, *context)

    def get_urls(self):
        own = [url for make in self.url_makers for url in make(self)]
        return own + super().get_urls()

    def object_tool_url(self, name: str, obj) -> str | None:
        """The URL of an object tool another app added whose URL name ends with `name`, if any."""
        for _label, url_name in self.object_tools:
            if url_name.endswith(name):
                return reverse(url_name, args=[obj.pk])
        return None

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["extra_object_tools"] = [(label, reverse(name, args=[obj.pk])) for label, name in self.object_tools]
            for make in self.context_makers:
                context.update(make(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)


class CountedValuesFilter(admin.SimpleListFilter):
    """Options are the distinct values of a field in the user's account, with counts.

    Sorted by count or alphabetically (INVENTORY_FILTER_OPTION_ORDER), and cached
    briefly so a page view does not group the whole catalogue every time.
    """

    field_name = ""
    max_options = 100

    def lookups(self, request, model_admin):
        key = (
            f"item-filter:{self.field_name}:{request.user.account_id or 'all'}:{settings.INVENTORY_FILTER_OPTION_ORDER}"
        )
        options = cache.get(key)
        if options is None:
            rows = (
                model_admin.get_queryset(request)
                .exclude(**{self.field_name: ""})
                .order_by()
                .values(self.field_name)
                # COUNT(*), not COUNT(id): PostgreSQL then answers from the (account, field) index
                # alone (index-only scan, ~4x faster at 100,000 items than reading every row).
                .annotate(n=Count("*"))
            )
            if settings.INVENTORY_FILTER_OPTION_ORDER == "count":
                rows = rows.order_by("-n", self.field_name)
            else:
                rows = rows.order_by(self.field_name)
            options = [
                (row[self.field_name], f"{row[self.field_name]} ({row['n']})") for row in rows[: self.max_options]
            ]
            cache.set(key, options, FILTER_OPTIONS_CACHE_SECONDS)
        return options

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field_name: self.value()})
        return queryset


class BrandFilter(CountedValuesFilter):
    title = "brand"
    parameter_name = "brand"
    field_name = "brand"


class CategoryFilter(CountedValuesFilter):
    title = "category"
    parameter_name = "category"
    field_name = "category"


class StorageLocationFilter(CountedValuesFilter):
    """A search box, not a list of every bin: "A-03" finds A-03-1, A-03-2... The most used
    locations are offered as the browser's autocomplete (a datalist)."""

    title = "storage location"
    parameter_name = "storage_location"
    field_name = "storage_location"
    template = "admin/inventory/filter_search.html"
    max_options = 50

    def has_output(self):
        return True

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(storage_location__istartswith=self.value().strip())
        return queryset

    def choices(self, changelist):
        hidden = []
        for key, value in changelist.params.items():
            if key in (self.parameter_name, "p"):
                continue
            for one in value if isinstance(value, list) else [value]:
                hidden.append((key, one))
        yield {
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "options": [value for value, _label in self.lookup_choices],
            "hidden": hidden,
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }


class LowStockFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock"

    def lookups(self, request, model_admin):
        return [("low", "Low (multi-unit stock, 2 or fewer left)")]

    def queryset(self, request, queryset):
        return low_stock_items(queryset) if self.value() == "low" else queryset


class PriceRangeFilter(admin.SimpleListFilter):
    title = "price"
    parameter_name = "price_range"
    RANGES = {
        "lt100": ("under 100", 0, 100),
        "100-500": ("100 - 500", 100, 500),
        "500-1000": ("500 - 1,000", 500, 1000),
        "1000-2500": ("1,000 - 2,500", 1000, 2500),
        "2500-5000": ("2,500 - 5,000", 2500, 5000),
        "gte5000": ("5,000 and up", 5000, None),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _lo, _hi) in self.RANGES.items()]

    def queryset(self, request, queryset):
        if self.value() not in self.RANGES:
            return queryset
        _label, low, high = self.RANGES[self.value()]
        queryset = queryset.filter(price__gte=low)
        return queryset if high is None else queryset.filter(price__lt=high)


class ItemPhotoInline(AccountScopedMixin, admin.TabularInline):
    model = ItemPhoto
    extra = 1
    classes = ["photos-inline"]  # sized in item/change_form.html so long URLs and file names do not widen the page
    fields = ["position", "image", "url", "alt_text", "preview"]
    readonly_fields = ["preview"]

    def get_queryset(self, request):
        # Photos have no account of their own: they are scoped through their item.
        return admin.TabularInline.get_queryset(self, request)

    @admin.display(description="preview")
    def preview(self, photo):
        return format_html('<img src="{}" style="max-height:60px">', photo.src) if photo.pk and photo.src else "-"


class ReadOnlyInline(admin.TabularInline):
    # Styled as a plain log table (see item/change_form.html): no "Thing object (12)" caption per row.
    classes = ["readonly-log"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ItemStateChangeInline(ReadOnlyInline):
    model = ItemStateChange
    verbose_name_plural = "history"
    fields = readonly_fields = ["created_at", "from_state", "to_state", "source", "user", "reason"]
    ordering = ["-created_at", "-id"]

    def has_view_permission(self, request, obj=None):
        return True


class StockMovementInline(ReadOnlyInline):
    model = StockMovement
    fk_name = "item"
    verbose_name_plural = "stock ledger"
    fields = readonly_fields = [
        "created_at",
        "kind",
        "on_hand_delta",
        "locked_delta",
        "on_hand_after",
        "locked_after",
        "source",
        "user",
        "reason",
    ]

    def has_view_permission(self, request, obj=None):
        return True


def _transition_action(to_state: str, label: str):
    def action(modeladmin, request, queryset):
        account = None if request.user.is_superuser else request.user.account
        try:
            if to_state == ItemState.ACTIVE and account is not None:
                # Bulk listing is a plan feature; bulk moves off sale (draft, sold, archived) never are.
                require(account, Feature.BULK_OPERATIONS)
            result = item_bulk_transition(
                account=account,
                item_ids=list(queryset.values_list("pk", flat=True)),
                to_state=to_state,
                actor=admin_actor(request),
                reason=f"bulk action: {label}",
            )
        except BillingError as error:
            modeladmin.message_user(request, error.admin_html(), messages.ERROR)
            return
        level = messages.SUCCESS if not result.not_moved else messages.WARNING
        modeladmin.message_user(request, result.summary() + ".", level)
        if result.not_moved:
            shown = result.not_moved[:20]
            details = "; ".join(f"{row['sku'] or row['id']}: {row['reason']}" for row in shown)
            more = f" (and {len(result.not_moved) - len(shown)} more)" if len(result.not_moved) > len(shown) else ""
            modeladmin.message_user(request, f"Not moved: {details}{more}.", messages.WARNING)

    action.__name__ = f"transition_to_{to_state}"
    return admin.action(description=label, permissions=["change"])(action)


class MultipleImageInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.ImageField):
    """Several photos in one input (Django's documented pattern)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleImageInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(one, initial) for one in data]
        return [single(data, initial)] if data else []


class QuickAddForm(forms.Form):
    """A used guitar in one screen: what a dealer types with the instrument on the bench."""

    title = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autofocus": True, "size": 50}))
    brand = forms.CharField(max_length=100, required=False)
    model = forms.CharField(max_length=100, required=False)
    year = forms.CharField(max_length=20, required=False, help_text='e.g. "1964" or "1960s".')
    condition = forms.ChoiceField(choices=Condition.choices, initial=Condition.EXCELLENT)
    price = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    storage_location = forms.CharField(max_length=100, required=False, label="Location", help_text="Shelf or bin.")
    photos = MultipleImageField(required=False, help_text="Pick several at once.")


class ItemChangeList(ChangeList):
    """Adds each row's channel counts, listing states and first photo for the page's rows only."""

    def get_results(self, request):
        super().get_results(request)
        rows = item_channel_counts(list(self.result_list))
        states = item_listing_states(rows)
        photos = item_first_photos(rows)
        for item in rows:
            item.listing_states = states[item.pk]
            item.first_photo = photos.get(item.pk)
        self.result_list = rows


@admin.register(Item)
class ItemAdmin(ExtensibleAdmin, ImportMixin, AccountScopedAdmin):
    resource_classes = [ItemResource]
    # Not `change_list_template`: ImportMixin would make it the base of its own import template,
    # which this template extends, and the page would fail with a template recursion.
    import_export_change_list_template = "admin/inventory/item/change_list.html"
    change_form_template = "admin/inventory/item/change_form.html"
    list_display = [
        "thumbnail",
        "sku",
        "title",
        # No brand, model or dates: brand and model are in every title (and searchable, and the
        # brand is a filter); at 1280 px with the sidebar open the channels column needs the room.
        "state_badge",
        "price_display",
        "available",
        "location",
        "channels",
    ]
    list_display_links = ["sku", "title"]
    list_filter = [
        "state",
        BrandFilter,
        CategoryFilter,
        "condition",
        PriceRangeFilter,
        StorageLocationFilter,
        "needs_review",
        LowStockFilter,
    ]
    search_fields = ["sku", "title", "brand", "model", "serial_number"]
    search_help_text = "Search by SKU, title, brand, model or serial number."
    list_per_page = 50
    show_full_result_count = False
    paginator = LargeTablePaginator
    readonly_fields = [
        "state",
        "quantity_locked",
        "state_changed_at",
        "created_at",
        "updated_at",
        "sold_on",
        "sold_at",
        "sale_cascade",
        "review_note",
    ]
    inlines = [ItemPhotoInline, ItemStateChangeInline, StockMovementInline]

    def get_inlines(self, request, obj):
        # Logs marked change_only (the SEO edits) have nothing to show on the add page.
        return [inline for inline in self.inlines if obj is not None or not getattr(inline, "change_only", False)]

    actions = [
        _transition_action(ItemState.ACTIVE, "Make active (for sale)"),
        _transition_action(ItemState.DRAFT, "Move back to draft"),
        _transition_action(ItemState.SOLD, "Mark sold"),
        _transition_action(ItemState.SHIPPED, "Mark shipped"),
        _transition_action(ItemState.ARCHIVED, "Archive"),
        "mark_reviewed",
    ]
    fieldsets = [
        (None, {"fields": ["account", "sku", "title", "state", ("brand", "model", "year"), ("finish", "category")]}),
        ("Condition and identity", {"fields": ["condition", "serial_number", "description", "video_url"]}),
        (
            "Price and stock",
            {"fields": [("price", "cost", "currency"), ("quantity_on_hand", "quantity_locked"), "storage_location"]},
        ),
        ("SEO", {"classes": ["collapse"], "fields": ["seo_title", "seo_description", "seo_keywords"]}),
        ("Dates", {"classes": ["collapse"], "fields": ["state_changed_at", "created_at", "updated_at"]}),
    ]

    @admin.display(description="state", ordering="state")
    def state_badge(self, item):
        colours = {"draft": "#888", "active": "#2a7", "sold": "#c60", "shipped": "#36c", "archived": "#555"}
        return format_html(
            '<span style="color:#fff;background:{};padding:1px 6px;border-radius:8px">{}</span>',
            colours.get(item.state, "#888"),
            item.get_state_display(),
        )

    @admin.display(description="price", ordering="price")
    def price_display(self, item):
        # Grouped digits and the currency: "325,000.00 USD" reads at a glance, "325000.00" does not.
        return f"{intcomma(item.price)}\N{NO-BREAK SPACE}{item.currency}"

    def get_changelist(self, request, **kwargs):
        return ItemChangeList

    @admin.display(description="channels")
    def channels(self, item):
        """Each shop by name with its state (pending / live / error...), the error on hover."""
        from .admin_channels import listing_badge

        states = getattr(item, "listing_states", None)
        if states is None:
            states = item_listing_states([item])[item.pk]
        total = getattr(item, "connection_total", 0)
        if not states:
            return "-" if not total else mark_safe('<span class="listing-badge">not listed</span>')
        live = sum(1 for status in states if status.state == "live")
        return format_html(
            '<span class="channel-states" title="{}/{} live">{}</span>',
            live,
            total,
            format_html_join(mark_safe("<br>"), "{}", ((listing_badge(status),) for status in states)),
        )

    @admin.display(description="", empty_value="")
    def thumbnail(self, item):
        photo = getattr(item, "first_photo", None)
        if not photo:
            return ""
        return format_html('<img src="{}" alt="" class="item-thumb" loading="lazy">', photo)

    @admin.display(description="needs review")
    def review_note(self, item):
        return "Imported from a channel: check the title, price, condition and photos, then mark it reviewed."

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.needs_review:
            first_name, first = fieldsets[0]
            fieldsets = [(first_name, {**first, "fields": [*first["fields"], "review_note"]}), *fieldsets[1:]]
        return fieldsets

    @admin.display(description="ended everywhere")
    def sale_cascade(self, item):
        seconds = sale_end_seconds(item)
        if seconds is not None:
            return f"ended everywhere {seconds:.1f} s after the sale was recorded"
        if item.sold_recorded_at is None:
            return "-"
        sale = item_sale(item)
        if sale is not None and sale.still_ending:
            return f"ending on {', '.join(sale.still_ending)}…"
        return "nothing else was listed to end"

    @admin.display(description="qty")
    def available(self, item):
        """Units free to sell (on hand, less what open orders hold)."""
        return item.quantity_available

    @admin.display(description="location", ordering="storage_location")
    def location(self, item):
        return item.storage_location

    def response_add(self, request, obj, post_url_continue=None):
        if "_save_list_everywhere" in request.POST:
            return self._list_everywhere_after_save(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if "_save_list_everywhere" in request.POST:
            return self._list_everywhere_after_save(request, obj)
        return super().response_change(request, obj)

    def _list_everywhere_after_save(self, request, obj):
        """ "Save and list everywhere": make it active if it is a draft, then list it on every shop."""
        from .admin_channels import _publish  # the channel screens load after this module

        self.message_user(request, f"{obj.sku} saved.", messages.SUCCESS)
        if obj.state == ItemState.DRAFT:
            try:
                item_transition(
                    item_id=obj.pk, to_state=ItemState.ACTIVE, actor=admin_actor(request), reason="save and list"
                )
            except BillingError as error:
                self.message_user(request, error.admin_html(), messages.ERROR)
            except (InventoryError, ValidationError) as error:
                self.message_user(request, getattr(error, "message", str(error)), messages.ERROR)
        _publish(self, request, [obj.pk])
        return HttpResponseRedirect(reverse("admin:inventory_item_change", args=[obj.pk]))

    def get_import_resource_kwargs(self, request, **kwargs):
        return {"account": self.account_for(request), "actor": admin_actor(request)}

    def has_import_permission(self, request):
        return request.user.account_id is not None and self.has_add_permission(request)

    def save_model(self, request, obj, form, change):
        """Edits go through the inventory services, so stock changes land in the ledger."""
        actor = admin_actor(request)
        fields = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS if name in form.cleaned_data}
        quantity = form.cleaned_data.get("quantity_on_hand", obj.quantity_on_hand)
        if change:
            item_update(item_id=obj.pk, actor=actor, changes={**fields, "quantity_on_hand": quantity})
        else:
            account = obj.account if request.user.is_superuser else request.user.account
            created = item_create(account=account, actor=actor, fields=fields, quantity=quantity)
            obj.pk = created.pk
            obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        photo_sets = [fs for fs in formsets if fs.model is ItemPhoto]
        if change and any(fs.has_changed() for fs in photo_sets):
            photos_changed(item_id=form.instance.pk)  # a photo-only edit is pushed to the live listings too

    @admin.action(description="Mark reviewed (imported items checked)")
    def mark_reviewed(self, request, queryset):
        n = items_mark_reviewed(item_ids=list(queryset.values_list("pk", flat=True)), actor=admin_actor(request))
        self.message_user(request, f"{n} item{'' if n == 1 else 's'} marked reviewed.", messages.SUCCESS)

    def get_urls(self):
        own = [
            path("quick-add/", self.admin_site.admin_view(self.quick_add_view), name="inventory_item_quick_add"),
            path(
                "<int:item_id>/photos/reorder/",
                self.admin_site.admin_view(self.photos_reorder_view),
                name="inventory_item_photos_reorder",
            ),
            path("export-csv/", self.admin_site.admin_view(self.export_csv_view), name="inventory_item_export_csv"),
            path("summary/", self.admin_site.admin_view(self.summary_view), name="inventory_item_summary"),
            path(
                "<int:item_id>/transition/<str:to_state>/",
                self.admin_site.admin_view(self.transition_view),
                name="inventory_item_transition",
            ),
        ]
        return own + super().get_urls()

    def quick_add_view(self, request):
        """Title, brand, model, year, condition, price, location and photos in one screen; then
        save as draft, or save and list everywhere (item_create, photo_add, listings_publish)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = QuickAddForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            fields = {
                name: data[name]
                for name in ("title", "brand", "model", "year", "condition", "price", "storage_location")
            }
            list_it = "_list_everywhere" in request.POST or "_another" in request.POST
            try:
                with transaction.atomic():
                    item = item_create(
                        account=self.account_for(request),
                        actor=admin_actor(request),
                        fields=fields,
                        quantity=1,
                        state=ItemState.ACTIVE if list_it else ItemState.DRAFT,
                    )
                    for image in data["photos"]:
                        photo_add(item_id=item.pk, actor=admin_actor(request), image=image)
            except BillingError as error:
                self.message_user(request, error.admin_html(), messages.ERROR)
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                self.message_user(request, f"{item.sku} added.", messages.SUCCESS)
                if list_it:
                    from .admin_channels import _publish  # the channel screens load after this module

                    _publish(self, request, [item.pk])
                if "_another" in request.POST:
                    return HttpResponseRedirect(reverse("admin:inventory_item_quick_add"))
                return HttpResponseRedirect(reverse("admin:inventory_item_change", args=[item.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Quick add: a used instrument",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/inventory/item/quick_add.html", context)

    def photos_reorder_view(self, request, item_id: int):
        """Drag-to-reorder on the item page posts the photo ids in their new order (photos_reorder)."""
        item = get_object_or_404(self.get_queryset(request), pk=item_id)
        if request.method != "POST" or not self.has_change_permission(request, item):
            raise PermissionDenied
        ids = [int(pk) for pk in request.POST.getlist("photo") if pk.isdigit()]
        try:
            photos = photos_reorder(item_id=item.pk, actor=admin_actor(request), photo_ids=ids)
        except ValidationError as error:
            return JsonResponse({"error": " ".join(error.messages)}, status=400)
        return JsonResponse({"photos": [{"id": photo.pk, "position": photo.position} for photo in photos]})

    def export_csv_view(self, request):
        """The current filtered changelist as CSV, streamed row by row."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        response = StreamingHttpResponse(item_csv_lines(changelist.queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="items-{timezone.now():%Y%m%d-%H%M}.csv"'
        return response

    def summary_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        summary = inventory_summary(items=self.get_queryset(request))
        context = {
            **self.admin_site.each_context(request),
            "title": "Inventory summary",
            "opts": self.model._meta,
            "summary": summary,
            "states": ItemState.choices,
        }
        return TemplateResponse(request, "admin/inventory/item/summary.html", context)

    def transition_view(self, request, item_id: int, to_state: str):
        item = get_object_or_404(self.get_queryset(request), pk=item_id)
        if request.method != "POST" or not self.has_change_permission(request, item):
            raise PermissionDenied
        try:
            item_transition(
                item_id=item.pk, to_state=to_state, actor=admin_actor(request), reason=request.POST.get("reason", "")
            )
            self.message_user(request, f"{item.sku} moved to {to_state}.", messages.SUCCESS)
        except BillingError as error:
            self.message_user(request, error.admin_html(), messages.ERROR)
        except (InventoryError, ValidationError) as error:
            self.message_user(request, getattr(error, "message", str(error)), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:inventory_item_change", args=[item.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["transition_targets"] = [(s, ItemState(s).label) for s in allowed_targets(obj.state)]
            sale = item_sale(obj)
            context["sale"] = sale
            if sale is not None and sale.order is not None:
                context["sale_order_url"] = reverse("admin:inventory_order_change", args=[sale.order.pk])
                order_admin = self.admin_site._registry.get(Order)
                context["packing_slip_url"] = order_admin and order_admin.object_tool_url("packing_slip", sale.order)
        return super().render_change_form(request, context, add, change, form_url, obj)


class ReadOnlyAdmin(AccountScopedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "item",
        "kind",
        "on_hand_delta",
        "locked_delta",
        "on_hand_after",
        "locked_after",
        "source",
        "user",
    ]
    list_filter = ["kind", "source"]
    search_fields = ["item__sku", "reason"]
    list_select_related = ["item", "user"]
    show_full_result_count = False
    paginator = LargeTablePaginator


@admin.register(StockLock)
class StockLockAdmin(ReadOnlyAdmin):
    list_display = ["id", "item", "order_line", "quantity", "status", "created_at", "closed_at"]
    list_filter = ["status"]
    search_fields = ["item__sku"]
    list_select_related = ["item", "order_line__order"]


# Orders (documents/admin.py imports OrderAdmin from here), then the channel screens, which
# extend ItemAdmin (inline, actions, buttons), so they load after it.
from . import admin_channels, admin_seo  # noqa: E402, F401
from .admin_orders import OrderAdmin  # noqa: E402, F401
