"""Photos for the demo catalogue, drawn with Pillow: one picture per item, in its finish's colour.

The demo must look like a shop (thumbnails on the item list, photos on every channel that
needs one), and a repository cannot ship other people's photographs. So `create_demo` draws
a simple, clearly illustrative picture of each instrument: its kind's outline (solid-body,
hollow or acoustic guitar, bass, amplifier, pedal), its finish colour and its name.
"""

from __future__ import annotations

import io
import zlib

from django.core.files.base import ContentFile
from PIL import Image, ImageDraw, ImageFont

SIZE = (1200, 900)

FINISH_COLOURS = {
    "sunburst": (148, 74, 28),
    "cherry": (150, 20, 30),
    "black": (28, 28, 30),
    "natural": (214, 176, 120),
    "blue": (120, 170, 205),
    "white": (236, 232, 218),
    "orange": (214, 106, 36),
    "red": (176, 30, 36),
    "fawn": (190, 150, 110),
    "green": (70, 120, 80),
    "silver": (180, 184, 190),
    "gold": (196, 160, 60),
    "tweed": (190, 160, 110),
}


def _colour(finish: str, seed: str) -> tuple[int, int, int]:
    lowered = finish.lower()
    for word, colour in FINISH_COLOURS.items():
        if word in lowered:
            return colour
    n = zlib.crc32(seed.encode())
    return (60 + n % 150, 60 + (n >> 8) % 150, 60 + (n >> 16) % 150)


def _font(size: int):
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "DejaVuSans-Bold.ttf"):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _guitar(draw: ImageDraw.ImageDraw, colour, *, bass: bool = False, acoustic: bool = False) -> None:
    body = (170, 300, 560, 700) if not acoustic else (130, 250, 600, 740)
    draw.ellipse(body, fill=colour, outline=(20, 20, 20), width=6)
    upper = (230, 240, 500, 470) if not acoustic else (190, 180, 540, 470)
    draw.ellipse(upper, fill=colour, outline=(20, 20, 20), width=6)
    if acoustic:
        draw.ellipse((320, 390, 420, 490), fill=(25, 20, 15))
    else:
        draw.rectangle((300, 500, 430, 530), fill=(230, 230, 230), outline=(20, 20, 20), width=3)  # pickup
        draw.rectangle((300, 430, 430, 455), fill=(230, 230, 230), outline=(20, 20, 20), width=3)
    neck_end = 1120 if bass else 1040
    draw.rectangle((520, 335, neck_end, 385), fill=(120, 80, 40), outline=(20, 20, 20), width=4)
    for x in range(560, neck_end - 40, 44):
        draw.line((x, 337, x, 383), fill=(210, 210, 210), width=2)
    draw.polygon([(neck_end, 320), (neck_end + 60, 300), (neck_end + 60, 420), (neck_end, 400)], fill=(40, 30, 20))


def _amp(draw: ImageDraw.ImageDraw, colour) -> None:
    draw.rounded_rectangle((220, 200, 980, 720), radius=30, fill=colour, outline=(20, 20, 20), width=8)
    draw.rectangle((270, 330, 930, 680), fill=(70, 60, 50), outline=(20, 20, 20), width=4)
    for y in range(345, 670, 16):
        draw.line((275, y, 925, y), fill=(110, 100, 85), width=3)
    for x in range(330, 900, 70):
        draw.ellipse((x, 235, x + 36, 271), fill=(20, 20, 20), outline=(230, 230, 230), width=3)


def _pedal(draw: ImageDraw.ImageDraw, colour) -> None:
    draw.rounded_rectangle((400, 180, 800, 760), radius=28, fill=colour, outline=(20, 20, 20), width=8)
    for x in (450, 650):
        draw.ellipse((x, 240, x + 100, 340), fill=(25, 25, 25), outline=(230, 230, 230), width=4)
    draw.ellipse((560, 560, 640, 640), fill=(200, 200, 200), outline=(20, 20, 20), width=5)
    draw.ellipse((585, 400, 615, 430), fill=(220, 40, 40))


def demo_photo(*, title: str, category: str, finish: str) -> ContentFile:
    """A JPEG of the instrument, named after the title."""
    image = Image.new("RGB", SIZE, (242, 238, 230))
    draw = ImageDraw.Draw(image)
    colour = _colour(finish, title)
    kind = category.lower()
    if "amp" in kind:
        _amp(draw, colour)
    elif "pedal" in kind or "effect" in kind:
        _pedal(draw, colour)
    else:
        _guitar(draw, colour, bass="bass" in kind, acoustic="acoustic" in kind)
    draw.rectangle((0, SIZE[1] - 110, SIZE[0], SIZE[1]), fill=(30, 30, 34))
    size = 46
    while size > 20 and draw.textlength(title, font=_font(size)) > SIZE[0] - 80:
        size -= 2
    draw.text((40, SIZE[1] - 85), title, fill=(250, 250, 250), font=_font(size))
    draw.text((SIZE[0] - 330, 30), "demo illustration", fill=(120, 120, 120), font=_font(30))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)
    slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:60]
    return ContentFile(out.getvalue(), name=f"{slug}.jpg")
