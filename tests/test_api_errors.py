"""API error answers that schemathesis (tests/test_api_schemathesis.py) found outside the shape."""

import pytest


@pytest.mark.parametrize("path", ["/api/v1/no-such-endpoint/", "/api/v1/items/0.5/"])
def test_unknown_api_addresses_answer_json_in_the_error_shape(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"code", "detail"}


@pytest.mark.parametrize("since", ["0320-07-23T02:39:12.213-21:11", "0001-01-01T00:00:00+23:00"])
def test_a_date_filter_with_an_offset_postgresql_refuses_is_read_as_utc_or_refused(api, since):
    # Found by tests/test_api_schemathesis.py: `placed_since` with a -21:11 offset answered 500.
    response = api.get("/api/v1/orders/", {"placed_since": since})
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert "placed_since" in response.json()
