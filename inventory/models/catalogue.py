"""The catalogue: items, their photos and their state history."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from accounts.models import AccountOwned, account_key

from ..states import ItemState

YOUTUBE_URL = RegexValidator(
    r"^https://(www\.)?(youtube\.com/(watch\?v=|shorts/|embed/)|youtu\.be/)[\w-]{6,}",
    "Enter a YouTube link such as https://www.youtube.com/watch?v=dQw4w9WgXcQ or https://youtu.be/dQw4w9WgXcQ.",
)
SKU_FORMAT = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$",
    "A SKU is 1-50 letters, digits, dots, dashes or underscores, starting with a letter or digit "
    "(eBay accepts no other characters).",
)


class Condition(models.TextChoices):
    """The condition grades the marketplaces share (Reverb's names)."""

    BRAND_NEW = "brand_new", "Brand New"
    MINT = "mint", "Mint"
    EXCELLENT = "excellent", "Excellent"
    VERY_GOOD = "very_good", "Very Good"
    GOOD = "good", "Good"
    FAIR = "fair", "Fair"
    POOR = "poor", "Poor"
    NON_FUNCTIONING = "non_functioning", "Non Functioning"
    B_STOCK = "b_stock", "B-Stock"


class Item(AccountOwned):
    """A piece of gear in the shop's stock: one-of-a-kind (quantity 1) or multi-quantity."""

    account = account_key(db_index=False)
    sku = models.CharField(
        "SKU", max_length=50, blank=True, validators=[SKU_FORMAT], help_text="Leave empty to have one generated."
    )
    title = models.CharField(max_length=200)
    brand = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    year = models.CharField(max_length=20, blank=True, help_text='Free text, e.g. "1964" or "1960s".')
    finish = models.CharField(max_length=100, blank=True)
    category = models.CharField(max_length=100, blank=True)
    condition = models.CharField(max_length=20, choices=Condition.choices, default=Condition.EXCELLENT)
    serial_number = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    cost = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(max_length=3, default="USD")
    quantity_on_hand = models.IntegerField(default=1, validators=[MinValueValidator(0)])
    quantity_locked = models.IntegerField(default=0, editable=False)
    storage_location = models.CharField(max_length=100, blank=True, help_text="Shelf or bin, e.g. A-03-2.")
    seo_title = models.CharField("SEO title", max_length=200, blank=True)
    seo_description = models.TextField("SEO description", blank=True)
    seo_keywords = models.CharField("SEO keywords", max_length=500, blank=True)
    video_url = models.URLField("YouTube video", blank=True, validators=[YOUTUBE_URL])
    state = models.CharField(max_length=20, choices=ItemState.choices, default=ItemState.DRAFT, editable=False)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    sold_on = models.ForeignKey(
        "inventory.ChannelConnection",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The channel whose sale took the last unit.",
    )
    sold_at = models.DateTimeField(null=True, blank=True, help_text="The winning sale's time, by the channel's clock.")
    sold_recorded_at = models.DateTimeField(null=True, blank=True, help_text="When this system recorded that sale.")
    needs_review = models.BooleanField(default=False, help_text="Imported from a channel; check the details.")
    low_stock_threshold = models.PositiveIntegerField(
        null=True, blank=True, help_text="Alert at this many units left or fewer; empty: the shop's threshold."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "sku"],
                name="item_sku_unique_per_account",
                violation_error_message="This account already has an item with this SKU.",
            ),
            models.CheckConstraint(condition=Q(quantity_on_hand__gte=0), name="item_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(quantity_locked__gte=0), name="item_locked_not_negative"),
            models.CheckConstraint(
                condition=Q(quantity_locked__lte=F("quantity_on_hand")), name="item_locked_within_on_hand"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="item_price_not_negative"),
            models.CheckConstraint(condition=Q(state__in=ItemState.values), name="item_state_valid"),
        ]
        indexes = [
            models.Index(fields=["account", "-id"], name="item_account_recent"),
            models.Index(fields=["account", "state", "-id"], name="item_account_state"),
            models.Index(fields=["account", "brand"], name="item_account_brand"),
            models.Index(fields=["account", "category"], name="item_account_category"),
            models.Index(fields=["account", "storage_location"], name="item_account_location"),
            models.Index(fields=["account", "price"], name="item_account_price"),
            # The API filters brand, category and storage_location case-insensitively (UPPER(x) = UPPER(y)).
            models.Index(F("account"), Upper("brand"), name="item_account_brand_ci"),
            models.Index(F("account"), Upper("category"), name="item_account_category_ci"),
            models.Index(F("account"), Upper("storage_location"), name="item_account_location_ci"),
            # Sorting a list by these columns (admin column headers, API ?ordering=) and ?updated_since=.
            models.Index(fields=["account", "title"], name="item_account_title"),
            models.Index(fields=["account", "created_at"], name="item_account_created"),
            models.Index(fields=["account", "updated_at"], name="item_account_updated"),
            # Analytics: sales recorded in a period (sale to ended everywhere).
            models.Index(fields=["account", "sold_recorded_at"], name="item_account_sold"),
            # Search (admin ?q=, API ?search=) has a PostgreSQL-only trigram index: migration 0004.
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.title}"

    @property
    def quantity_available(self) -> int:
        return self.quantity_on_hand - self.quantity_locked


class ItemPhoto(models.Model):
    """A photo of an item: an uploaded file or a URL, in the order the shop wants them shown."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="photos")
    image = models.ImageField(upload_to="items/%Y/%m/", blank=True)
    url = models.URLField(max_length=500, blank=True)
    position = models.PositiveIntegerField(default=0)
    alt_text = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(image="") & ~Q(url="")) | (~Q(image="") & Q(url="")),
                name="photo_is_upload_or_url",
                violation_error_message="A photo is either an uploaded file or a URL, not both and not neither.",
            )
        ]

    def __str__(self) -> str:
        return self.url or self.image.name

    @property
    def src(self) -> str:
        return self.url or (self.image.url if self.image else "")


class Source(models.TextChoices):
    """Where a change came from. Channels add their own names (e.g. "reverb")."""

    ADMIN = "admin", "Admin"
    API = "api", "API"
    COMMAND = "command", "Management command"
    SYSTEM = "system", "System"


class ItemStateChange(AccountOwned):
    """One move of an item through the state machine: the item's full history."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="state_changes", db_index=False)
    from_state = models.CharField(max_length=20, choices=ItemState.choices, blank=True)
    to_state = models.CharField(max_length=20, choices=ItemState.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=40)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["item", "-created_at"], name="history_item_recent")]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.from_state or '(new)'} -> {self.to_state}"


class ItemEdit(AccountOwned):
    """One change of an item's field outside the state machine (the SEO fields, by hand or in
    bulk): what it was, what it became, who, from where and why. The item's history of edits."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="edits", db_index=False)
    field = models.CharField(max_length=40)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=40)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["item", "-created_at"], name="edit_item_recent")]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.field}"
