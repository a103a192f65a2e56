"""The item's SEO fields across channels: what each channel would send, and editing them in bulk.

Every channel registered in settings.CHANNELS states its own rules in its sync module
(`seo_fields(payload)`, see inventory/channels.py); this module only asks them, the same way
for each, so the item page's preview, the bulk dry run and the pushes agree.

An SEO edit is an ordinary item edit: the fields change under the item's row lock with one
history row (ItemEdit) per field, and the item's live listings are marked changed. The engine
then revises each listing with exactly the payload fields that changed (the SEO ones), and
each channel sends only what it shows of them: nothing at all where it shows none (eBay for a
meta description), no write where the text it shows came out the same (eBay's 80-character
title when only its tail changed), never a full replace or a relist.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Account

from ..channels import ListingPayload, SeoField, channel, channel_names, squash, tag_list
from ..models import Item, ItemEdit
from .actor import Actor
from .listings import listings_mark_changed

SEO_FIELDS = ("seo_title", "seo_description", "seo_keywords")
# What a pattern may name: the item's own words (no price, cost or stock).
PLACEHOLDERS = ("brand", "model", "year", "finish", "category", "condition", "title", "sku")
BULK_MAX_ITEMS = 2000


class Operation:
    """The bulk SEO operations, by the name the admin form and the API take."""

    FILL_TITLE = "fill_title"  # seo_title from a pattern such as "{brand} {model} {year} {finish}"
    FILL_DESCRIPTION = "fill_description"  # seo_description from a pattern
    APPEND_KEYWORD = "append_keyword"  # add a keyword to seo_keywords (once, any case)
    REMOVE_KEYWORD = "remove_keyword"  # take a keyword out of seo_keywords (any case)

    choices = (
        (FILL_TITLE, "Fill the SEO title from a pattern"),
        (FILL_DESCRIPTION, "Fill the SEO description from a pattern"),
        (APPEND_KEYWORD, "Add a keyword"),
        (REMOVE_KEYWORD, "Remove a keyword"),
    )
    values = tuple(name for name, _label in choices)


# --- What each channel would send -----------------------------------------------------------


@dataclass(frozen=True)
class ChannelSeo:
    """One channel's answer: its name, its label, and the texts it would send."""

    channel: str
    label: str
    fields: tuple[SeoField, ...]
    rules_stated: bool = True


def seo_payload(item: Item, **overrides: str) -> ListingPayload:
    """The payload the channels' SEO rules read: the item's texts (no listing's title override,
    no photos: none of the rules reads them). `overrides` replace fields, e.g. a bulk edit's new value."""
    values = {
        "sku": item.sku,
        "title": item.title,
        "description": item.description,
        "price": item.price,
        "currency": item.currency,
        "quantity": max(item.quantity_on_hand - item.quantity_locked, 0),
        "brand": item.brand,
        "model": item.model,
        "year": item.year,
        "finish": item.finish,
        "category": item.category,
        "condition": item.condition,
        "serial_number": item.serial_number,
        "video_url": item.video_url,
        "seo_title": item.seo_title,
        "seo_description": item.seo_description,
        "seo_keywords": item.seo_keywords,
    }
    values.update(overrides)
    return ListingPayload(**values)


def seo_preview(payload: ListingPayload, channels: Sequence[str] | None = None) -> list[ChannelSeo]:
    """Every registered channel (or the named ones), asked the same way what it would send."""
    answers = []
    for name in channels if channels is not None else channel_names():
        sync = channel(name)
        rules = getattr(sync, "seo_fields", None)
        label = getattr(sync, "LABEL", name)
        if rules is None:
            answers.append(ChannelSeo(name, label, (), rules_stated=False))
        else:
            answers.append(ChannelSeo(name, label, tuple(rules(payload))))
    return answers


def item_seo_preview(item: Item) -> list[ChannelSeo]:
    return seo_preview(seo_payload(item))


def channel_title(channel_name: str, payload: ListingPayload) -> str:
    """The listing's name as the channel shows it (the first text it sends), else the payload's title."""
    rules = getattr(channel(channel_name), "seo_fields", None)
    if rules is not None:
        for seo_field in rules(payload):
            if seo_field.sent_to_channel and seo_field.tags is None:
                return seo_field.sent
            break
    return payload.title


def seo_field_data(seo_field: SeoField) -> dict:
    """A SeoField as plain JSON-safe values (the API, the bulk report)."""
    return {
        "name": seo_field.name,
        "label": seo_field.label,
        "source": seo_field.source,
        "wanted": seo_field.wanted,
        "sent": seo_field.sent,
        "sent_to_channel": seo_field.sent_to_channel,
        "length": seo_field.length,
        "limit": seo_field.limit,
        "item_limit": seo_field.item_limit,
        "cut": seo_field.cut,
        "dropped": list(seo_field.dropped),
        "tags": list(seo_field.tags) if seo_field.tags is not None else None,
        "note": seo_field.note,
    }


def channel_seo_data(answers: Iterable[ChannelSeo], *, sent_only: bool = False) -> list[dict]:
    return [
        {
            "channel": answer.channel,
            "label": answer.label,
            "rules_stated": answer.rules_stated,
            "fields": [seo_field_data(f) for f in answer.fields if f.sent_to_channel or not sent_only],
        }
        for answer in answers
    ]


# --- Patterns ------------------------------------------------------------------------------


def seo_pattern_check(pattern: str) -> list[str]:
    """The placeholders a pattern names. Raises ValidationError (field "pattern") saying what to fix."""
    if not squash(pattern):
        raise ValidationError({"pattern": "Enter a pattern, e.g. {brand} {model} {year} {finish}."})
    allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as error:
        raise ValidationError(
            {"pattern": f"The pattern cannot be read ({error}): write a brace as {{{{ or }}}}, a field as {{brand}}."}
        ) from error
    names = []
    unknown = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name == "" or spec or conversion:
            raise ValidationError(
                {
                    "pattern": f"Write each placeholder as a plain name such as {{brand}} (not {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}). Use: {allowed}."
                }
            )
        if name not in PLACEHOLDERS:
            unknown.append("{" + name + "}")
        names.append(name)
    if unknown:
        raise ValidationError(
            {"pattern": f"Unknown placeholder{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}. Use: {allowed}."}
        )
    return names


def seo_pattern_fill(pattern: str, item: Item) -> str:
    """The pattern with the item's values; an empty value leaves no double space or dangling comma."""
    seo_pattern_check(pattern)
    values = {name: squash(str(getattr(item, name) or "")) for name in PLACEHOLDERS}
    values["condition"] = item.get_condition_display() if item.condition else ""
    text = pattern.format(**values)
    text = re.sub(r"\s+([,;:.)])", r"\1", squash(text))  # "Fender , 1964" -> "Fender, 1964"
    text = re.sub(r"([,;:(])(?:\s*[,;:])+", r"\1", text)  # ", ," from an empty field between commas
    text = re.sub(r"\(\s*\)", "", text)
    return squash(text).strip(" ,;:-/")


# --- Bulk edits ----------------------------------------------------------------------------


@dataclass
class SeoBulkResult:
    """Per item what changes (or changed), with what each channel would send; and what cannot."""

    operation: str
    applied: bool
    changed: list[dict] = field(default_factory=list)
    unchanged: list[dict] = field(default_factory=list)
    not_done: list[dict] = field(default_factory=list)
    listings_marked: int = 0

    def summary(self) -> str:
        verb = "changed" if self.applied else "would change"
        text = f"{len(self.changed)} item(s) {verb}, {len(self.unchanged)} already so"
        if self.not_done:
            text += f", {len(self.not_done)} cannot be"
        if self.applied:
            text += f"; {self.listings_marked} live listing(s) to update"
        return text


def seo_operation_check(operation: str, value: str) -> None:
    """Raises ValidationError for an unknown operation or a value it cannot take."""
    if operation not in Operation.values:
        raise ValidationError(
            {"operation": f"Unknown operation {operation!r}. Use one of {', '.join(Operation.values)}."}
        )
    if operation in (Operation.FILL_TITLE, Operation.FILL_DESCRIPTION):
        seo_pattern_check(value)
    else:
        keyword = squash(value)
        if not keyword:
            raise ValidationError({"value": "Enter the keyword."})
        if re.search(r"[,;\n]", value):
            raise ValidationError({"value": "One keyword at a time: commas and semicolons separate keywords."})


def _new_values(item: Item, operation: str, value: str) -> dict[str, str]:
    if operation == Operation.FILL_TITLE:
        return {"seo_title": seo_pattern_fill(value, item)}
    if operation == Operation.FILL_DESCRIPTION:
        return {"seo_description": seo_pattern_fill(value, item)}
    keywords = tag_list(item.seo_keywords)
    keyword = squash(value)
    if operation == Operation.APPEND_KEYWORD:
        if keyword.casefold() not in {k.casefold() for k in keywords}:
            keywords.append(keyword)
    else:
        keywords = [k for k in keywords if k.casefold() != keyword.casefold()]
    joined = ", ".join(keywords)
    # Unchanged when only the spelling of the list differs ("a,b" and "a, b" say the same).
    return {"seo_keywords": item.seo_keywords if tag_list(item.seo_keywords) == keywords else joined}


def _channels_changed(item: Item, new: Mapping[str, str]) -> dict:
    """Per channel, the texts it would send that this edit changes (with their cuts), and the
    channels whose texts stay the same (nothing would be pushed there for it)."""
    before = {answer.channel: answer for answer in seo_preview(seo_payload(item))}
    changed, unchanged = [], []
    for answer in seo_preview(seo_payload(item, **new)):
        old = {f.name: (f.sent, f.tags) for f in before[answer.channel].fields}
        fields = tuple(f for f in answer.fields if f.sent_to_channel and old.get(f.name) != (f.sent, f.tags))
        if fields:
            changed.append(ChannelSeo(answer.channel, answer.label, fields, answer.rules_stated))
        else:
            unchanged.append(answer.label)
    return {"channels": channel_seo_data(changed), "channels_unchanged": unchanged}


def _too_long(item: Item, new: Mapping[str, str]) -> str:
    for name, text in new.items():
        limit = Item._meta.get_field(name).max_length
        if limit and len(text) > limit:
            return f"the new {Item._meta.get_field(name).verbose_name} is {len(text)} characters; it holds {limit}"
    return ""


def items_seo_bulk(
    *,
    account: Account,
    item_ids: Iterable[int],
    operation: str,
    value: str,
    actor: Actor,
    apply: bool = False,
    reason: str = "",
) -> SeoBulkResult:
    """Change the SEO fields of many items of one account the same way; a dry run unless `apply`.

    The dry run and the apply compute the same thing (the apply under the items' row locks, in
    primary-key order): per item the fields that change, from and to, and what each channel
    would then send with its limits and cuts. Applying writes one ItemEdit per changed field and
    marks the items' live listings changed, so workers push the SEO fields alone.
    Raises ValidationError for an unknown operation or placeholder (nothing read or written).
    """
    seo_operation_check(operation, value)
    wanted = list(dict.fromkeys(int(i) for i in item_ids))
    if len(wanted) > BULK_MAX_ITEMS:
        raise ValidationError(
            {
                "items": f"{len(wanted)} items chosen; one bulk SEO edit takes at most {BULK_MAX_ITEMS}: narrow the filter."
            }
        )
    result = SeoBulkResult(operation=operation, applied=apply)
    with transaction.atomic():
        qs = Item.objects.filter(account=account, pk__in=wanted).order_by("pk")
        items = list(qs.select_for_update() if apply else qs)
        found = {item.pk for item in items}
        edits: list[ItemEdit] = []
        changed_ids: list[int] = []
        why = reason or f"bulk SEO: {operation} {value}"
        for item in items:
            new = _new_values(item, operation, value)
            changes = {
                name: {"from": getattr(item, name), "to": text}
                for name, text in new.items()
                if getattr(item, name) != text
            }
            if not changes:
                result.unchanged.append({"id": item.pk, "sku": item.sku})
                continue
            problem = _too_long(item, new)
            if problem:
                result.not_done.append({"id": item.pk, "sku": item.sku, "reason": problem})
                continue
            row = {"id": item.pk, "sku": item.sku, "changes": changes, **_channels_changed(item, new)}
            result.changed.append(row)
            if apply:
                for name, change in changes.items():
                    setattr(item, name, change["to"])
                    edits.append(_edit(item, name, change["from"], change["to"], actor, why))
                item.save(update_fields=[*changes, "updated_at"])
                changed_ids.append(item.pk)
        for item_id in wanted:
            if item_id not in found:
                result.not_done.append({"id": item_id, "sku": None, "reason": "not found"})
        if apply and edits:
            ItemEdit.objects.bulk_create(edits, batch_size=1000)
            result.listings_marked = listings_mark_changed(changed_ids)
    return result


def _edit(item: Item, name: str, old: str, new: str, actor: Actor, reason: str) -> ItemEdit:
    return ItemEdit(
        account_id=item.account_id,
        item=item,
        field=name,
        old_value=old,
        new_value=new,
        user_id=actor.user_id,
        source=actor.source,
        reason=reason[:500],
    )


def seo_edits_record(item: Item, before: Mapping[str, str], actor: Actor, *, reason: str = "edited") -> None:
    """History rows for the SEO fields an edit of one item changed (callers hold the row lock)."""
    rows = [
        _edit(item, name, before[name], getattr(item, name), actor, reason)
        for name in SEO_FIELDS
        if name in before and before[name] != getattr(item, name)
    ]
    if rows:
        ItemEdit.objects.bulk_create(rows)
