"""What the client knows of the V&R dealer pages: paths, selectors, and what a failed step leaves."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inventory.channels import ChannelError

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
LOGIN_PATH = "/do_login"
ADD_EDIT_PATH = "/instruments/add_edit_item"
EXPORT_PATH = "/instruments/export_inventory/export_inventory"
BRAND_CHECK_PATH = "/ajax/check_brand_exists"
MARK_SOLD_PATH = "/ajax/mark_as_sold/{random}"
DELETE_PATH = "/ajax/delete_item"

# What a bot shield's interstitial looks like (Cloudflare, PerimeterX, reCAPTCHA, hCaptcha).
CHALLENGE_TITLE = re.compile(r"just a moment|attention required|are you a (robot|human)|verify you are human", re.I)
CHALLENGE_SELECTOR = (
    "#challenge-form, #cf-challenge-running, #challenge-stage, #px-captcha, .g-recaptcha, .h-captcha, "
    'iframe[src*="challenges.cloudflare.com"], iframe[src*="captcha"]'
)
CHALLENGE_BODY = re.compile(r"challenge-platform|cf-chl|px-captcha|g-recaptcha|h-captcha|just a moment", re.I)
LOGIN_FORM = 'form[action*="do_login"], form:has(input[name="pass"])'
ITEM_FORM = 'form:has(input[name="unique_id"])'
FORM_ERRORS = ".alert-danger, .alert-error, .form-errors, .error-message"
SET_HIDDEN_VALUE = """(e, v) => {
  e.value = v;
  if (window.tinymce && e.id && window.tinymce.get(e.id)) window.tinymce.get(e.id).setContent(v);
  if (window.CKEDITOR && window.CKEDITOR.instances && window.CKEDITOR.instances[e.name || e.id])
    window.CKEDITOR.instances[e.name || e.id].setData(v);
  e.dispatchEvent(new Event('input', {bubbles: true}));
  e.dispatchEvent(new Event('change', {bubbles: true}));
}"""


@dataclass(frozen=True)
class StepArtifacts:
    """What a failed step left for staff: paths under the artifact root, and where the page was."""

    step: str
    page_url: str = ""
    screenshot: str = ""
    page_html: str = ""


@dataclass(frozen=True)
class Photo:
    """A photo to upload into one of the form's image_N inputs."""

    name: str
    mime_type: str
    data: bytes


class LoginNeeded(Exception):
    """V&R sent the browser to its login page (the session expired)."""


def failed(error_class: type[ChannelError], message: str, artifacts: StepArtifacts | None, **kwargs) -> ChannelError:
    error = error_class(message, **kwargs)
    error.artifacts = artifacts
    return error


def visible_text(page, selector: str) -> str:
    try:
        texts = [t.strip() for t in page.locator(selector).all_inner_texts() if t.strip()]
    except Exception:
        return ""
    return " ".join(texts)[:300]


def crashed(error: Exception) -> bool:
    text = str(error).lower()
    return any(word in text for word in ("closed", "crash", "disconnected", "target page"))


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
