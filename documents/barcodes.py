"""Code 128 barcodes and QR codes as tiny 1-bit PNGs, one pixel per module.

The PNGs are embedded as data URIs and drawn with `image-rendering: pixelated`, so the
PDF scales them without smoothing: every bar and square stays a sharp rectangle at any
size, exactly as a vector drawing would. Raster instead of SVG because WeasyPrint parses
an SVG path in Python: a QR code as SVG cost ~20 ms per label, as PNG well under 1 ms.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import segno
from barcode import Code128
from barcode.errors import BarcodeError
from PIL import Image

# Code 128 asks for a quiet zone of at least 10 module widths on each side.
CODE128_QUIET_MODULES = 10
# The QR code's own quiet zone; the label's white margin adds to it.
QR_BORDER_MODULES = 2


class BarcodeValueError(ValueError):
    """The value cannot be drawn as this kind of code."""


@dataclass(frozen=True)
class Code:
    """A drawn code: what it encodes, its size in modules, and the PNG as a data URI."""

    value: str
    width_modules: int
    height_modules: int
    data_uri: str


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def code128_modules(value: str) -> str:
    """The bar pattern of `value` as Code 128 ("1" = bar, "0" = space), without quiet zones."""
    if not value:
        raise BarcodeValueError("An empty value cannot be a barcode.")
    bad = sorted({ch for ch in value if not 32 <= ord(ch) < 127})
    if bad:
        raise BarcodeValueError(
            f"{value!r} cannot be a Code 128 barcode: {''.join(bad)!r} is not a printable ASCII character."
        )
    try:
        return Code128(value).build()[0]
    except BarcodeError as error:  # python-barcode's own refusal, kept readable
        raise BarcodeValueError(f"{value!r} cannot be a Code 128 barcode: {error}") from error


def code128(value: str) -> Code:
    """A Code 128 barcode of `value`, quiet zones included, one pixel high (stretch it with CSS)."""
    modules = code128_modules(value)
    quiet = "0" * CODE128_QUIET_MODULES
    row = quiet + modules + quiet
    image = Image.new("1", (len(row), 1), 1)
    image.putdata([0 if m == "1" else 1 for m in row])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Code(value=value, width_modules=len(row), height_modules=1, data_uri=_png_data_uri(buffer.getvalue()))


def qr_code(value: str) -> Code:
    """A QR code of `value` (error correction M: still reads with a scuffed corner)."""
    if not value:
        raise BarcodeValueError("An empty value cannot be a QR code.")
    qr = segno.make(value, error="m", micro=False)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=1, border=QR_BORDER_MODULES)
    width, height = qr.symbol_size(scale=1, border=QR_BORDER_MODULES)
    return Code(value=value, width_modules=width, height_modules=height, data_uri=_png_data_uri(buffer.getvalue()))
