"""The Content Security Policy in a real Chromium: the admin, the dashboard, the item page,
Swagger UI and ReDoc render with no CSP violation (the policy: config/settings.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Browser, Page, sync_playwright

from accounts.services import account_create, staff_user_create
from tests.conftest import CHROMIUM
from tests.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"
TIMEOUT_MS = 15_000
# Collects every violation the page reports (Playwright's init scripts are not subject to the CSP).
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture(scope="module")
def browser() -> Browser:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser: Browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(WATCH_VIOLATIONS)
    page = context.new_page()
    page.console_messages = []
    page.on("console", lambda message: page.console_messages.append(f"{message.type}: {message.text}"))
    yield page
    context.close()


def _violations(page: Page) -> list[str]:
    refused = [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m]
    return page.evaluate("window.__cspViolations") + refused


def test_admin_pages_and_api_docs_render_without_csp_violations(page: Page):
    account = account_create(name="Blue Note Guitars", slug="blue-note")
    staff_user_create(account=account, username="alice", password=PASSWORD)
    item = make_item(account, title="1964 Fender Stratocaster")

    page.goto("/admin/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/**")
    assert _violations(page) == []

    for path, ready in [
        ("/admin/", "#content"),
        ("/admin/inventory/item/", "#result_list"),
        (f"/admin/inventory/item/{item.pk}/change/", "#item_form"),
        (reverse("admin:billing_account_billing"), ".billing-grid"),
        ("/api/docs/", ".swagger-ui .info .title"),
        ("/api/redoc/", "#redoc-container h1"),
    ]:
        page.goto(path)
        page.wait_for_selector(ready)
        assert _violations(page) == [], path
