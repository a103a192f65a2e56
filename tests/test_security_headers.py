"""The Content Security Policy (django-csp) and the pages it must not break."""

import re

CSP = "Content-Security-Policy"


def _directives(response) -> dict[str, list[str]]:
    policy = response[CSP]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def test_admin_pages_carry_a_policy_without_inline_scripts(admin_client_for, staff):
    response = admin_client_for(staff).get("/admin/")
    assert response.status_code == 200
    directives = _directives(response)
    assert directives["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_api_answers_carry_the_policy(api):
    response = api.get("/api/v1/items/")
    assert response.status_code == 200
    assert "default-src 'self'" in response[CSP]


def test_the_item_page_script_carries_the_nonce_of_its_policy(admin_client_for, staff, account):
    from tests.factories import make_item

    item = make_item(account)
    response = admin_client_for(staff).get(f"/admin/inventory/item/{item.pk}/change/")
    assert response.status_code == 200
    nonce = re.search(r"'nonce-([^']+)'", response[CSP]).group(1)
    html = response.content.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline, "the item page has its inline photo-reorder script"
    assert all(f'nonce="{nonce}"' in attributes for attributes in inline), inline


def test_redoc_init_script_carries_the_nonce(client):
    response = client.get("/api/redoc/")
    assert response.status_code == 200
    nonce = re.search(r"'nonce-([^']+)'", response[CSP]).group(1)
    assert f'<script nonce="{nonce}">' in response.content.decode()


def test_swagger_ui_loads_its_init_script_as_a_file(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
