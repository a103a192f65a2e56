"""The loopback V&R site's HTML: the page frame with its header login form, the bot check, the item form."""

from __future__ import annotations

import html
from collections.abc import Iterable

from .. import mappers
from .store import CATEGORIES, Item, VRStore


def frame(title: str, body: str, *, signed_in: bool) -> str:
    header = (
        '<a href="/account">My account</a> · <a href="/logout">Sign out</a>'
        if signed_in
        else (
            '<form id="header_login" action="/do_login" method="post">'
            '<input type="text" name="username" placeholder="E-mail">'
            '<input type="password" name="pass" placeholder="Password">'
            '<input type="hidden" name="open_where" value="header">'
            '<button type="submit">Sign in</button></form>'
        )
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} | Vintage &amp; Rare</title>"
        "<style>body{font-family:sans-serif;margin:0}header{background:#222;color:#eee;padding:8px}"
        "header a{color:#fc6}main{padding:16px}label{display:block;margin:6px 0}"
        ".alert-danger{background:#fdd;padding:8px;border:1px solid #c00}</style></head>"
        f"<body><header><strong>Vintage &amp; Rare</strong> {header}</header><main>{body}</main></body></html>"
    )


def challenge_page() -> str:
    return (
        "<!doctype html><html><head><title>Just a moment...</title></head><body>"
        '<div id="challenge-stage"><form id="challenge-form" action="/cdn-cgi/challenge" method="post">'
        "<p>Checking if the site connection is secure. Verify you are human.</p></form></div></body></html>"
    )


def options(choices: Iterable[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{html.escape(v)}"{" selected" if v == selected else ""}>{html.escape(label)}</option>'
        for v, label in choices
    )


def category_choices(parent: str) -> list[tuple[str, str]]:
    return [("", "-- choose --")] + [(cid, name) for cid, (name, up) in CATEGORIES.items() if up == parent]


def item_form(store: VRStore, item: Item | None, *, error: str = "", values: dict[str, str] | None = None) -> str:
    """The add/edit form. Field names as V&R's; some may be renamed by a switch (a layout change)."""
    values = dict(values if values is not None else (item.fields if item else {}))
    rename = store.switches.renamed_fields

    def name(n: str) -> str:
        return html.escape(rename.get(n, n))

    def text(n: str, label: str) -> str:
        return f'<label>{label} <input type="text" name="{name(n)}" value="{html.escape(values.get(n, ""))}"></label>'

    def check(n: str, label: str) -> str:
        on = " checked" if values.get(n) else ""
        return f'<label><input type="checkbox" name="{name(n)}" value="1"{on}> {label}</label>'

    levels = [values.get(f, "") for f in mappers.CATEGORY_FIELDS]
    selects = []
    parent = ""
    for depth, field_name in enumerate(mappers.CATEGORY_FIELDS):
        # Deeper levels are filled in by the page's script once the level above is chosen (as V&R does),
        # except on the edit form, which shows the saved path.
        choices = category_choices(parent) if depth == 0 or parent else [("", "-- choose --")]
        selects.append(
            f'<select name="{name(field_name)}" data-level="{depth}">{options(choices, levels[depth])}</select>'
        )
        parent = levels[depth] if levels[depth] else ""
    decades = [("", "--")] + [(str(d), f"{d}s") for d in range(1900, 2030, 10)]
    action = "/instruments/add_edit_item" + (f"/{item.id}" if item else "")
    images = "".join(
        f'<input type="file" name="{name(f"image_{n}")}" accept="image/*">' for n in range(1, mappers.MAX_PHOTOS + 1)
    )
    error_html = f'<div class="alert alert-danger">{html.escape(error)}</div>' if error else ""
    body = f"""
<h1>{"Edit item" if item else "Add an item"}</h1>{error_html}
<form id="frm_step1" method="post" enctype="multipart/form-data" action="{action}">
<input type="hidden" name="unique_id" value="{store.issue_unique_id()}">
<input type="hidden" name="version" value="{item.version if item else 0}">
{text(mappers.FIELD_BRAND, "Brand")}
{text(mappers.FIELD_MODEL, "Model")}
{text(mappers.FIELD_YEAR, "Year")}
<label>Decade <select name="{name(mappers.FIELD_DECADE)}">{options(decades, values.get(mappers.FIELD_DECADE, ""))}</select></label>
{text(mappers.FIELD_FINISH, "Finish / colour")}
<label>Description <div id="item_desc_editor" contenteditable="true" style="border:1px solid #999;min-height:60px">{values.get(mappers.FIELD_DESCRIPTION, "")}</div>
<textarea id="item_desc" name="{name(mappers.FIELD_DESCRIPTION)}" style="display:none">{html.escape(values.get(mappers.FIELD_DESCRIPTION, ""))}</textarea></label>
{text(mappers.FIELD_PRICE, "Price")}
{text(mappers.FIELD_EXTERNAL_ID, "Your reference (external id)")}
<label>Categories {"".join(selects)}</label>
{text(mappers.FIELD_PROCESSING_TIME, "Processing time")}
<select name="{name(mappers.FIELD_PROCESSING_UNIT)}">{options([("days", "days"), ("hours", "hours")], values.get(mappers.FIELD_PROCESSING_UNIT, "days"))}</select>
{check(mappers.FIELD_SHIPMENT, "Available for shipment")}
{check("local_pickup", "Local pickup")}
{check("buy_now", "Buy now")}
{text(mappers.FIELD_YOUTUBE, "YouTube link")}
<fieldset><legend>Photos</legend>{images}</fieldset>
<button type="submit" name="save" value="1">Save item</button>
</form>
<script>
// A rich-text editor as V&R's pages have: it owns the description and copies it into the hidden
// textarea when the form is sent (as TinyMCE's triggerSave does), with TinyMCE's get/setContent API.
(function () {{
  var editor = document.getElementById('item_desc_editor');
  var area = document.getElementById('item_desc');
  window.tinymce = {{ get: function (id) {{
    return id === 'item_desc' && area ? {{ setContent: function (html) {{ editor.innerHTML = html; }},
                                          getContent: function () {{ return editor.innerHTML; }} }} : null; }} }};
  document.getElementById('frm_step1').addEventListener('submit', function () {{
    if (area) area.value = editor.innerHTML;
  }});
}})();
document.querySelectorAll('select[data-level]').forEach(function (select) {{
  select.addEventListener('change', function () {{
    var level = +select.dataset.level;
    var below = Array.from(document.querySelectorAll('select[data-level]')).filter(function (s) {{ return +s.dataset.level > level; }});
    below.forEach(function (s) {{ s.innerHTML = '<option value="">-- choose --</option>'; }});
    if (!select.value || !below.length) return;
    fetch('/ajax/get_categories?parent=' + encodeURIComponent(select.value), {{headers: {{'X-Requested-With': 'XMLHttpRequest'}}}})
      .then(function (r) {{ return r.json(); }})
      .then(function (rows) {{ rows.forEach(function (row) {{ var o = document.createElement('option'); o.value = row[0]; o.textContent = row[1]; below[0].appendChild(o); }}); }});
  }});
}});
</script>"""
    return frame("Edit item" if item else "Add item", body, signed_in=True)
