"""The seed's four steps, end to end, over HTTP."""

from tests.support.flow import api, exchange, get_code, refresh, tokens
from tests.support.server import Server


def test_seed_flow_json_body_code_refresh_and_api(server: Server) -> None:
    code = get_code(server)
    response = exchange(server, code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"].startswith("cxa_")
    assert body["refresh_token"].startswith("cxr_")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    users = {"users": [{"name": "John Smith", "attributes": {"Email": "john@example.com"}}], "verify": False}
    imported = api(server, body["access_token"], json=users)
    assert imported.status_code == 200, imported.text
    assert imported.json()["rows"] == 1
    again = refresh(server, body["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] != body["refresh_token"]


def test_pkce_flow_with_form_body(server: Server) -> None:
    issued = tokens(server)
    assert issued["scope"] == "all"
