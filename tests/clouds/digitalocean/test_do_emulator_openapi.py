"""The DigitalOcean emulator checks every request against DigitalOcean's OpenAPI description."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from provisioner.sandbox.do_openapi import ENV, spec_path

from .conftest import REGION, raw


def test_a_request_outside_the_description_is_refused_and_recorded(emulator):
    if emulator.checker is None:
        pytest.skip(f"DigitalOcean's OpenAPI description is not on this machine (set {ENV}); "
                    "requests are not checked against it")
    status, body = raw(emulator, "POST", "/v2/vpcs", {"name": "bad_name", "regoin": REGION})
    assert status == 422 and body["id"] == "unprocessable_entity"
    recorded = " ".join(emulator.errors)
    assert "'region' missing" in recorded and "bad_name" in recorded
    assert "regoin" not in recorded  # an unknown property is ignored, as the API ignores it, but noted:
    assert [p for p in emulator.unknown_properties if "regoin" in p]
    emulator.unknown_properties.clear()
    status, _ = raw(emulator, "DELETE", "/v2/droplets")  # destroy_by_tag without its tag_name
    assert status == 422 and "tag_name" in emulator.errors[-1]
    status, body = raw(emulator, "GET", "/v2/no-such-collection")
    assert status == 404 and body["id"] == "not_found"
    status, body = raw(emulator, "POST", "/v2/droplets", {"name": "under_score!", "size": "s-2vcpu-4gb",
                                                           "image": "ubuntu-24-04-x64"})
    assert (status, body["message"]) == (422, "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
    assert len(emulator.errors) == 4
    emulator.errors.clear()  # these violations were the point of this test


def test_the_description_is_found_where_ci_puts_it(emulator):
    if spec_path() is None:
        pytest.skip(f"DigitalOcean's OpenAPI description is not on this machine (set {ENV})")
    assert emulator.checker is not None


def test_unauthenticated_requests_get_401(emulator):
    status, body = raw(emulator, "GET", "/v2/account", token="")
    assert status == 401 and body["id"] == "unauthorized"
    assert body["message"] == "Unable to authenticate you."


def test_a_malformed_or_wrong_authorization_gets_401(emulator):
    req = urllib.request.Request(f"{emulator.url}/v2/account", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 401
    emulator.token = "the-one"
    assert raw(emulator, "GET", "/v2/account", token="another")[0] == 401
    assert raw(emulator, "GET", "/v2/account", token="the-one")[0] == 200


def test_every_route_the_emulator_serves_is_an_operation_of_the_description(emulator):
    """No handler answers a call the API does not have: each maps to a (method, path) of the
    description, load balancers and domains included."""
    if emulator.checker is None:
        pytest.skip(f"DigitalOcean's OpenAPI description is not on this machine (set {ENV})")
    methods = ("get", "post", "put", "patch", "delete")
    served = {
        f"{method.upper()} {template}"
        for template, item in emulator.checker.document["paths"].items()
        for method in item
        if method in methods and emulator.serves(method, template)
    }
    handlers = {name for name in dir(emulator)
                if name.startswith("_") and name.split("_")[1:2] and name.split("_")[1] in methods}
    assert handlers == {_handler(op) for op in served}, "a handler without an operation of the description"
    assert {"POST /v2/load_balancers", "DELETE /v2/load_balancers/{lb_id}/droplets", "GET /v2/domains",
            "PATCH /v2/domains/{domain_name}/records/{domain_record_id}"} <= served


def _handler(operation: str) -> str:
    from provisioner.sandbox.do_wire import shape

    method, template = operation.split()
    parts = [("1" if p.startswith("{") else p) for p in template.split("/") if p][1:]
    return f"_{method.lower()}_{'_'.join(shape(parts))}"
