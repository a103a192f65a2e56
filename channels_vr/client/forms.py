"""The add/edit item form, step by step: open it, fill it by V&R's field names, attach photos, submit.

A mixin of VRBrowser (it uses the browser's page, snapshots and page checks); every step
runs on the browser's own thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from inventory.channels import ListingNotFound, PermanentChannelError, TransientChannelError

from .. import mappers
from .pages import ADD_EDIT_PATH, FORM_ERRORS, ITEM_FORM, SET_HIDDEN_VALUE, Photo, failed, visible_text


class ItemFormSteps:
    """The item form's steps; VRBrowser supplies _page, _url, _timeout_ms, _check_page, _snapshot and _with_links."""

    def _open_form(self, step: str, path: str):
        page = self._page
        response = page.goto(self._url(path), wait_until="domcontentloaded")
        self._check_page(step, response)
        form = page.locator(ITEM_FORM).first
        try:
            form.wait_for(state="attached", timeout=self._timeout_ms)
        except Exception:
            artifacts = self._snapshot(step)
            raise failed(
                PermanentChannelError,
                self._with_links(
                    "V&R's item page has no item form (no hidden unique_id field): the page changed", artifacts
                ),
                artifacts,
            ) from None
        for hidden in ("unique_id", "version"):
            if hidden == "version" and path == ADD_EDIT_PATH:
                continue
            if form.locator(f'input[name="{hidden}"]').count() == 0:
                artifacts = self._snapshot(step)
                raise failed(
                    PermanentChannelError,
                    self._with_links(f"V&R's item form has no hidden {hidden!r} field: the page changed", artifacts),
                    artifacts,
                )
        return form

    def _fill(self, step: str, form, fields: Mapping[str, str]) -> None:
        """Set each field by its V&R name; a missing field means the layout changed."""
        for name, value in fields.items():
            element = form.locator(f'[name="{name}"]')
            if element.count() == 0:
                artifacts = self._snapshot(step)
                raise failed(
                    PermanentChannelError,
                    self._with_links(
                        f"V&R's item form has no field {name!r} any more: the page layout changed and the product "
                        "needs an update (nothing was submitted)",
                        artifacts,
                    ),
                    artifacts,
                    body={"field": name},
                )
            element = element.first
            kind = element.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '').toLowerCase()")
            if kind.startswith("select"):
                if value:
                    # Dependent levels are filled in by the page after the level above is chosen: wait for it.
                    option = element.locator(f'option[value="{value}"]')
                    try:
                        option.wait_for(state="attached", timeout=self._timeout_ms)
                    except Exception:
                        artifacts = self._snapshot(step)
                        if element.locator('option:not([value=""])').count() == 0:
                            # The page never filled this level in (its own AJAX call failed): try again later.
                            raise failed(
                                TransientChannelError,
                                self._with_links(
                                    f"V&R's page did not offer the choices of {name!r} in time", artifacts
                                ),
                                artifacts,
                            ) from None
                        raise failed(
                            PermanentChannelError,
                            self._with_links(
                                f"V&R offers no choice {value!r} for {name!r}: check the Vintage & Rare category "
                                "mapping",
                                artifacts,
                            ),
                            artifacts,
                            body={"field": name},
                        ) from None
                    element.select_option(value=value)
                elif element.evaluate("e => e.value") != "" and element.locator('option[value=""]').count():
                    element.select_option(value="")
            elif kind.endswith(":checkbox"):
                element.set_checked(bool(value) and value not in ("0", "false"))
            elif kind.endswith(":file"):
                continue
            elif kind.endswith(":hidden") or not element.is_visible():
                # A rich-text editor keeps the HTML in a hidden textarea and copies its own content back
                # on submit: set both, through the editor's API when the page has TinyMCE or CKEditor.
                element.evaluate(SET_HIDDEN_VALUE, value)
            else:
                element.fill(value)

    def _attach_photos(self, step: str, form, photos: Sequence[Photo]) -> None:
        for field_name, photo in zip(mappers.PHOTO_FIELDS, photos, strict=False):
            element = form.locator(f'input[name="{field_name}"]')
            if element.count() == 0:
                artifacts = self._snapshot(step)
                raise failed(
                    PermanentChannelError,
                    self._with_links(f"V&R's item form has no photo field {field_name!r}: the page changed", artifacts),
                    artifacts,
                )
            element.first.set_input_files(
                files=[{"name": photo.name, "mimeType": photo.mime_type, "buffer": photo.data}]
            )

    def _submit(self, step: str, form) -> None:
        page = self._page
        submit = form.locator('[type="submit"]').first
        with page.expect_navigation(wait_until="domcontentloaded") as navigation:
            if submit.count():
                submit.click()
            else:
                form.evaluate("f => f.requestSubmit ? f.requestSubmit() : f.submit()")
        response = navigation.value
        if response is not None and response.status == 409:
            artifacts = self._snapshot(step)
            raise failed(
                TransientChannelError,
                self._with_links(f"V&R says the item changed while it was being edited ({step})", artifacts),
                artifacts,
                status=409,
            )
        self._check_page(step, response)
        if page.locator(ITEM_FORM).count() and page.locator(FORM_ERRORS).count():
            said = visible_text(page, FORM_ERRORS)
            artifacts = self._snapshot(step)
            raise failed(
                PermanentChannelError,
                self._with_links(f'V&R refused the item: "{said}"', artifacts),
                artifacts,
                status=response.status if response is not None else None,
                body={"message": said},
            )

    def _add_item(self, fields: dict[str, str], photos: list[Photo]) -> None:
        step = "submit the add-item form"
        try:
            form = self._open_form(step, ADD_EDIT_PATH)
        except ListingNotFound:
            artifacts = self._snapshot(step)
            raise failed(
                PermanentChannelError,
                self._with_links(f"V&R has no add-item page at {ADD_EDIT_PATH} any more: the site changed", artifacts),
                artifacts,
                status=404,
            ) from None
        self._fill(step, form, fields)
        self._attach_photos(step, form, photos)
        self._submit(step, form)

    def _edit_item(self, product_id: str, changes: dict[str, str], photos: list[Photo] | None) -> None:
        step = "submit the edit form"
        try:
            form = self._open_form(step, f"{ADD_EDIT_PATH}/{product_id}")
        except ListingNotFound:
            raise ListingNotFound(f"V&R has no item {product_id}", status=404) from None
        self._fill(step, form, changes)
        if photos:
            self._attach_photos(step, form, photos)
        self._submit(step, form)
