"""What a shop prints on its documents: its name, address and logo, paper and label sizes."""

from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import Account, AccountOwned

LOGO_MAX_BYTES = 1024 * 1024


def validate_logo_size(image) -> None:
    if image and image.size > LOGO_MAX_BYTES:
        raise ValidationError(
            f"The logo is {image.size / 1024 / 1024:.1f} MB; upload one of at most 1 MB "
            "(a PNG or JPEG about 600 px wide prints sharply)."
        )


class PaperSize(models.TextChoices):
    A4 = "a4", "A4 (210 x 297 mm)"
    LETTER = "letter", "US Letter (8.5 x 11 in)"


class LabelFormat(models.TextChoices):
    """The label stock a shop prints on. The value is what the API and the command accept."""

    SMALL = "62x29mm", "62 x 29 mm roll label (e.g. Brother DK-11209), one per page"
    LARGE = "4x6in", "4 x 6 in label (thermal shipping-label size), one per page"
    A4_SHEET = "a4-sheet", "A4 sheet of 24 labels, 3 x 8 of 70 x 37 mm (e.g. Avery Zweckform 3474)"


class DocumentSettings(AccountOwned):
    """One account's letterhead and paper choices for packing slips, labels and pick lists.

    Created with defaults the first time the account prints anything.
    """

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="document_settings")
    shop_name = models.CharField(
        max_length=200, blank=True, help_text="Printed at the top of packing slips. Blank uses the account name."
    )
    address = models.TextField(
        blank=True, max_length=500, help_text="The shop's address, one line per row, as it should appear on slips."
    )
    contact = models.CharField(
        max_length=200, blank=True, help_text="Email, phone or website printed under the address."
    )
    logo = models.ImageField(
        upload_to="documents/logos/",
        blank=True,
        validators=[validate_logo_size],
        help_text="PNG or JPEG, at most 1 MB. Printed at most 45 x 20 mm on packing slips.",
    )
    paper_size = models.CharField(
        max_length=10,
        choices=PaperSize.choices,
        default=PaperSize.A4,
        help_text="Paper for packing slips and pick lists.",
    )
    label_format = models.CharField(
        max_length=10,
        choices=LabelFormat.choices,
        default=LabelFormat.SMALL,
        help_text="Label stock for storage labels (the API and the command can ask for another one).",
    )
    packing_slip_message = models.TextField(
        blank=True,
        max_length=500,
        help_text="Printed at the foot of every packing slip, e.g. your returns policy or a thank-you.",
    )
    site_url = models.URLField(
        "public address",
        blank=True,
        help_text="Where staff open this back office, e.g. https://backoffice.example.com. The QR code on a "
        "label opens the item's admin page there. Blank uses the server's SITE_URL.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "document settings"
        verbose_name_plural = "document settings"

    def __str__(self) -> str:
        return f"Document settings of {self.account}"

    @property
    def printed_shop_name(self) -> str:
        return self.shop_name or self.account.name

    @property
    def address_lines(self) -> list[str]:
        return [line.strip() for line in self.address.splitlines() if line.strip()]
