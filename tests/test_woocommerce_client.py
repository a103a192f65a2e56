"""The wc/v3 client against the loopback shop: auth (Basic, query keys, OAuth 1.0a), typed errors, paging."""

import pytest

from channels_woocommerce.client import WooCommerceClient, describe_error, oauth_signature
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox
from inventory.channels import ListingNotFound, PermanentChannelError, RateLimited, TransientChannelError


def client_for(shop, key=DEFAULT_KEY, secret=DEFAULT_SECRET, **kwargs):
    return WooCommerceClient(shop.store_url, key, secret, timeout=kwargs.pop("timeout", 2.0), **kwargs)


def test_over_plain_http_every_request_is_signed_with_oauth_and_the_keys_never_travel():
    with WooSandbox() as shop:
        client = client_for(shop)
        client.create_product({"name": "A", "sku": "A-1", "regular_price": "10.00"})
        assert [p["sku"] for p in client.products_by_sku("A-1")] == ["A-1"]
        requests = shop.requests()
        assert {r.auth for r in requests} == {"oauth"} and all(r.status < 300 for r in requests)
        assert all("consumer_secret" not in r.query and "oauth_version" not in r.query for r in requests)
        assert requests[0].query["oauth_signature_method"] == "HMAC-SHA256"
        assert "cs_" not in repr(client)


def test_oauth_with_a_wrong_secret_or_a_replayed_nonce_is_refused_in_plain_words(monkeypatch):
    with WooSandbox() as shop:
        with pytest.raises(PermanentChannelError, match="signature does not match") as refused:
            client_for(shop, secret="cs_wrong").products_by_sku("X")
        assert refused.value.status == 401 and "Check the consumer key and secret" in refused.value.message

        monkeypatch.setattr("channels_woocommerce.client.secrets.token_hex", lambda n: "same-nonce")
        monkeypatch.setattr("channels_woocommerce.client.time.time", lambda: 1_800_000_000)
        monkeypatch.setattr("channels_woocommerce.sandbox.server.time.time", lambda: 1_800_000_000)
        client = client_for(shop)
        client.products_by_sku("X")  # the first request with this nonce and timestamp passes
        with pytest.raises(PermanentChannelError, match="nonce has already been used"):
            client._request("GET", "/products", params={"per_page": 1})


def test_the_signature_follows_woocommerces_algorithm():
    # One key/value rawurlencoded once, joined with %3D and %26, over METHOD&url; key "secret&"
    params = {"b": "two words", "a": "1", "oauth_nonce": "n"}
    expected_text = (
        "GET&http%3A%2F%2Fshop.test%2Fwp-json%2Fwc%2Fv3%2Fproducts&a%3D1%26b%3Dtwo%2520words%26oauth_nonce%3Dn"
    )
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"cs&", expected_text.encode(), hashlib.sha256).digest()).decode()
    assert oauth_signature("GET", "http://shop.test/wp-json/wc/v3/products", params, "cs") == expected


def test_over_https_basic_auth_is_used():
    with WooSandbox(tls=True) as shop:
        client = client_for(shop, auth_method="basic")
        client.products_by_sku("X")
        assert [r.auth for r in shop.requests()] == ["basic"]


def test_a_server_that_strips_authorization_gets_the_keys_in_the_query_string_and_keeps_them():
    with WooSandbox(tls=True, strip_authorization=True) as shop:
        client = client_for(shop, auth_method="basic")
        client.products_by_sku("X")
        client.products_by_sku("Y")
        assert [(r.auth, r.status) for r in shop.requests()] == [("none", 401), ("query", 200), ("query", 200)]
        assert client.auth_method == "query"
        assert all(r.query.get("consumer_secret") in (None, "***") for r in shop.requests())


def test_wrong_keys_over_https_are_reported_as_such_not_as_a_stripped_header():
    with WooSandbox(tls=True) as shop, pytest.raises(PermanentChannelError, match="Consumer secret is invalid"):
        client_for(shop, secret="cs_nope", auth_method="basic").products_by_sku("X")


def test_plain_http_to_a_public_host_is_refused_before_any_request_whatever_the_auth():
    for method in ("auto", "basic", "query", "oauth"):
        with pytest.raises(PermanentChannelError, match="plain http on a public address"):
            WooCommerceClient("http://shop.example.com", DEFAULT_KEY, DEFAULT_SECRET, auth_method=method)
    with pytest.raises(PermanentChannelError, match="consumer key and secret"):
        WooCommerceClient("https://shop.example.com", "", "")


def test_a_read_only_key_is_told_to_become_read_write():
    with WooSandbox(keys={"ck_read": ("cs_read", "read")}) as shop:
        client = client_for(shop, key="ck_read", secret="cs_read")
        client.products_by_sku("X")
        with pytest.raises(PermanentChannelError, match="does not have write permissions") as refused:
            client.create_product({"name": "A"})
        assert refused.value.status == 401
        assert shop.products() == []


def test_wordpress_error_bodies_become_typed_errors():
    with WooSandbox() as shop:
        client = client_for(shop)
        with pytest.raises(ListingNotFound, match=r"Invalid ID\. \[woocommerce_rest_product_invalid_id\]"):
            client.get_product(999)
        shop.fail_next("error", path_prefix="/products")
        with pytest.raises(TransientChannelError, match="critical error") as failed:
            client.get_product(999)
        assert failed.value.status == 500 and failed.value.body["code"] == "internal_server_error"
        shop.fail_next("rate_limit")
        with pytest.raises(RateLimited) as limited:
            client.products_by_sku("X")
        assert limited.value.retry_after == 1.0
        client.create_product({"name": "A", "sku": "DUP", "regular_price": "1.00"})
        with pytest.raises(PermanentChannelError, match=r"Invalid or duplicated SKU\. \[product_invalid_sku\]") as dup:
            client.create_product({"name": "B", "sku": "DUP", "regular_price": "1.00"})
        assert dup.value.body["data"]["status"] == 400
        shop.fail_next("timeout", method="POST")
        shop.set_faults(timeout_delay=2.5)
        with pytest.raises(TransientChannelError, match="may have been applied"):
            client.create_product({"name": "C", "sku": "C-1", "regular_price": "1.00"})


def test_a_missing_route_says_what_to_check():
    message = describe_error(404, {"code": "rest_no_route", "message": "No route was found.", "data": {"status": 404}})
    assert "permalinks" in message and "[rest_no_route]" in message


def test_pages_follow_x_wp_totalpages_and_stop_there():
    with WooSandbox() as shop:
        for n in range(205):
            shop.add_external_product(f"P-{n}")
        client = client_for(shop)
        pages = list(client.products())
        assert [(p.page, len(p.items), p.total, p.total_pages) for p in pages] == [
            (1, 100, 205, 3),
            (2, 100, 205, 3),
            (3, 5, 205, 3),
        ]
        assert client.reads == 3
        assert [(r.query["page"], r.query["per_page"]) for r in shop.requests()] == [
            ("1", "100"),
            ("2", "100"),
            ("3", "100"),
        ]


def test_an_answer_that_is_not_json_is_transient(monkeypatch):
    with WooSandbox() as shop:
        client = client_for(shop)

        class Html:
            status_code = 200
            content = b"<html>Maintenance</html>"
            headers = {}
            reason = "OK"

            def json(self):
                raise ValueError

        monkeypatch.setattr(client.session, "request", lambda *a, **k: Html())
        with pytest.raises(TransientChannelError, match="not JSON"):
            client.index()


def test_a_failure_with_the_keys_in_the_query_string_never_carries_the_secret():
    with WooSandbox(tls=True, strip_authorization=True) as shop:
        client = client_for(shop, auth_method="query")
        client.products_by_sku("X")
    # the shop is gone: the connection error must not chain requests' message (it holds the URL)
    with pytest.raises(TransientChannelError) as failed:
        client.products_by_sku("X")
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert DEFAULT_SECRET not in str(failed.value) and DEFAULT_SECRET not in repr(failed.value)
