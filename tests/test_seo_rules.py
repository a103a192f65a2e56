"""Each channel's SEO rule, pure: what it sends of the title and SEO fields, its limits, where it cuts
(at a word, counted in characters, unicode included), and that a revise of SEO fields sends only
what the channel shows of them."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from django.conf import settings

from channels_amazon import mappers as amazon
from channels_ebay import mappers as ebay
from channels_etsy import mappers as etsy
from channels_reverb import mappers as reverb
from channels_shopify import mappers as shopify
from channels_vr import mappers as vr
from channels_woocommerce import mappers as woocommerce
from inventory.channels import ListingPayload, SeoField, channel, cut_at_word, tag_list

STRAT = ListingPayload(
    sku="SEO-1",
    title="Fender Stratocaster",
    description="All original, with case.",
    price=Decimal("4200"),
    currency="USD",
    quantity=1,
    brand="Fender",
    model="Stratocaster",
    year="1964",
    finish="Sunburst",
    category="Electric Guitars",
    condition="excellent",
    photos=("https://cdn.example.com/strat.jpg",),
)
# 97 characters: eBay's 80 falls inside "original"
LONG_TITLE = "Fender Stratocaster 1964 Sunburst pre-CBS L-series all original hardshell case, ultra rare find"


def by_name(fields, name) -> SeoField:
    [found] = [f for f in fields if f.name == name]
    return found


# --- the shared cut --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "kept", "cut"),
    [
        ("short", 80, "short", ""),
        ("  spaced   out\n text ", 80, "spaced out text", ""),
        ("one two three", 9, "one two", "three"),  # the limit falls inside "three": back to the space
        ("one two three", 8, "one two", "three"),  # the limit falls on the space
        ("x" * 30, 10, "x" * 10, "x" * 20),  # one long word: a hard cut
        ("Gibson Les Paul, Goldtop", 16, "Gibson Les Paul", ", Goldtop"),  # no dangling comma
        ("Höfner 500/1 Violinbass Überraschung", 30, "Höfner 500/1 Violinbass", "Überraschung"),
        ("Ibanez 🎸 Jem 777 Loch Ness Green", 13, "Ibanez 🎸 Jem", "777 Loch Ness Green"),  # the emoji is one character
    ],
)
def test_cut_at_word(text, limit, kept, cut):
    assert cut_at_word(text, limit) == (kept, cut)
    assert len(kept) <= limit


def test_keywords_are_split_on_commas_semicolons_and_lines_once_each():
    assert tag_list("vintage, Strat; pre-CBS\nvintage ,  VINTAGE,, ") == ["vintage", "Strat", "pre-CBS"]


# --- the contract: every registered channel answers the same way -----------------------------


@pytest.mark.parametrize("name", list(settings.CHANNELS))
def test_every_channel_states_its_seo_rules_as_seo_fields(name):
    fields = channel(name).seo_fields(replace(STRAT, seo_title=LONG_TITLE, seo_keywords="vintage, pre-CBS"))

    assert fields and all(isinstance(f, SeoField) for f in fields)
    for f in fields:
        assert f.label and f.source
        if not f.sent_to_channel:
            assert f.sent == "" and f.note, f"{name}: a text not sent must say why"
        elif f.limit is not None and f.tags is None:
            assert len(f.sent) <= f.limit


# --- eBay -----------------------------------------------------------------------------------


def test_ebay_title_is_the_seo_title_cut_at_a_word_within_80():
    fields = ebay.seo_fields(replace(STRAT, seo_title=LONG_TITLE))
    title = by_name(fields, "product.title")

    assert title.sent == "Fender Stratocaster 1964 Sunburst pre-CBS L-series all original hardshell case"
    assert (title.limit, len(title.sent), title.cut) == (80, 78, ", ultra rare find")
    assert title.sent == ebay.ebay_title(replace(STRAT, seo_title=LONG_TITLE))  # the preview is what is sent
    assert not by_name(fields, "keywords").sent_to_channel


def test_ebay_title_falls_back_to_the_title_and_counts_unicode_as_characters():
    payload = replace(
        STRAT, title="Höfner 500/1 Violin Bass 1963 \u2013 Sunburst \u2013 Beatle bass, original case & strap!"
    )
    title = ebay.seo_fields(payload)[0]
    assert title.sent == payload.title and len(title.sent) == 78 and not title.cut


# --- Shopify --------------------------------------------------------------------------------


def test_shopify_seo_title_70_and_meta_description_320_cut_at_words():
    description = "A 1964 Stratocaster in three-tone sunburst. " * 10  # 440 characters
    payload = replace(STRAT, seo_title=LONG_TITLE, seo_description=description, seo_keywords="vintage, pre-CBS")
    fields = shopify.seo_fields(payload)

    seo_title = by_name(fields, "seo.title")
    assert seo_title.sent == "Fender Stratocaster 1964 Sunburst pre-CBS L-series all original"
    assert seo_title.cut == "hardshell case, ultra rare find"
    meta = by_name(fields, "seo.description")
    assert len(meta.sent) == 314 and meta.sent.endswith("sunburst. A 1964")  # 320 falls inside "Stratocaster"
    assert f"{meta.sent} {meta.cut}" == meta.wanted
    assert by_name(fields, "tags").tags == ("vintage", "pre-CBS", "excellent")
    # the preview is what the product input carries
    built = shopify.product_set_input(payload, location_id="gid://shopify/Location/1").input
    assert built["seo"] == {"title": seo_title.sent, "description": meta.sent}


def test_shopify_revise_of_the_seo_description_sends_the_seo_input_alone():
    product, variant, quantity, photos, _notes = shopify.revise_parts(
        replace(STRAT, seo_description="New meta"), {"seo_description"}, product_id="P", variant_id="V"
    )
    assert product == {"id": "P", "seo": {"title": "Fender Stratocaster", "description": "New meta"}}
    assert (variant, quantity, photos) == (None, False, False)


# --- Reverb ---------------------------------------------------------------------------------


def test_reverb_title_is_the_seo_title_and_nothing_else_of_seo_goes():
    payload = replace(STRAT, seo_title="1964 Fender Stratocaster Sunburst, pre-CBS")
    assert reverb.listing_body(payload)["title"] == "1964 Fender Stratocaster Sunburst, pre-CBS"
    assert reverb.revise_body(payload, {"seo_title"}) == {"title": "1964 Fender Stratocaster Sunburst, pre-CBS"}
    # a new item title is not sent while the SEO title names the listing
    assert reverb.revise_body(replace(payload, title="Strat"), {"title"}) == {}
    assert reverb.revise_body(payload, {"seo_description", "seo_keywords"}) == {}
    title = reverb.seo_fields(payload)[0]
    assert (title.sent, title.limit, title.cut) == ("1964 Fender Stratocaster Sunburst, pre-CBS", None, "")


def test_reverb_title_returns_to_the_item_title_when_the_seo_title_is_cleared():
    assert reverb.revise_body(STRAT, {"seo_title"}) == {"title": "Fender Stratocaster"}


# --- Vintage & Rare ---------------------------------------------------------------------------


def test_vr_model_name_is_the_seo_title_without_the_brand_within_200():
    payload = replace(STRAT, seo_title="Fender Stratocaster 1964 Sunburst")
    [model_name, *_rest] = vr.seo_fields(payload)
    assert (model_name.name, model_name.sent, model_name.limit) == ("model_name", "Stratocaster 1964 Sunburst", 200)
    assert vr.revise_form(payload, {"seo_title"}, brand="", category_levels=()) == {
        "model_name": "Stratocaster 1964 Sunburst"
    }
    long = replace(STRAT, seo_title="Fender " + "Stratocaster " * 20)
    cut = vr.seo_fields(long)[0]
    assert len(cut.sent) <= 200 and cut.sent.endswith("Stratocaster") and cut.cut.startswith("Stratocaster")
    assert vr.model_name(STRAT) == "Stratocaster"  # no SEO title: the model, as before


# --- Etsy -----------------------------------------------------------------------------------


def test_etsy_title_140_without_refused_characters_and_13_tags_of_20():
    payload = replace(
        STRAT,
        seo_title="1964 Fender Stratocaster: Sunburst: pre-CBS ✓ " + "original " * 15,
        seo_keywords="strat, vintage guitar, an extremely long keyword phrase, "
        + ", ".join(f"kw{n}" for n in range(15)),
    )
    fields = etsy.seo_fields(payload)
    title = by_name(fields, "title")
    assert len(title.sent) <= 140 and title.sent.startswith("1964 Fender Stratocaster: Sunburst pre-CBS original")
    assert "✓" not in title.sent and title.sent.count(":") == 1 and title.cut and title.note
    assert dict(etsy.draft_form(payload, taxonomy_id=1))["title"] == title.sent
    tags = by_name(fields, "tags")
    assert len(tags.tags) == 13 and all(len(t) <= 20 for t in tags.tags)
    assert tags.tags[:3] == ("strat", "vintage guitar", "an extremely long")
    assert "kw12" in tags.dropped and "an extremely long keyword phrase -> an extremely long" in tags.note


def test_etsy_revise_of_the_seo_title_updates_the_title_alone():
    payload = replace(STRAT, seo_title="Vintage Fender Strat 1964")
    assert etsy.update_form(payload, {"seo_title"}) == [("title", "Vintage Fender Strat 1964")]
    assert etsy.update_form(payload, {"seo_description"}) == []


# --- WooCommerce and Amazon ----------------------------------------------------------------------


def test_woocommerce_sends_the_seo_description_as_the_short_description():
    payload = replace(STRAT, seo_description="Pre-CBS & all original", seo_title="ignored")
    fields = woocommerce.seo_fields(payload)
    assert by_name(fields, "short_description").sent == "Pre-CBS & all original"
    assert not by_name(fields, "seo_title").sent_to_channel
    assert woocommerce.revise_body(payload, {"seo_description"}) == {"short_description": "Pre-CBS &amp; all original"}
    assert woocommerce.revise_body(payload, {"seo_title", "seo_keywords"}) == {}


def test_amazon_sends_no_seo_text_for_an_offer_on_an_existing_page():
    fields = amazon.seo_fields(replace(STRAT, seo_title=LONG_TITLE))
    assert [f.sent_to_channel for f in fields] == [False, False]
    assert "product page" in fields[0].note
