"""The Azure emulator's own promises: the specification check, ARM's request rules."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from provisioner import tags
from provisioner.sandbox.azure_emulator import AzureEmulator
from provisioner.sandbox.azure_specs import default_specs_dir, specs_missing_reason

from .conftest import arm_call

SPECS_MISSING = specs_missing_reason()
SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"





@pytest.mark.skipif(SPECS_MISSING is not None, reason=SPECS_MISSING or "")
def test_spec_check_refuses_an_unknown_property_and_records_it(emulator):
    status, body = arm_call(emulator, "PUT", f"{SUB}/resourcegroups/spec-check?api-version=2025-04-01",
                         {"location": "eastus"})
    assert status == 201
    status, body = arm_call(emulator, "PUT", f"{SUB}/resourceGroups/spec-check/providers/Microsoft.Network/"
                         "virtualNetworks/v?api-version=2026-03-01",
                         {"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
                                                               "adressSpace": {}}})
    assert status == 400
    assert "adressSpace" in body["error"]["message"]
    status, _ = arm_call(emulator, "PUT", f"{SUB}/resourcegroups/spec-check-2?api-version=2025-04-01", {"tags": {}})
    assert status == 400  # a resource group needs a location
    recorded = list(emulator.errors)
    emulator.errors.clear()
    assert len(recorded) == 2
    assert "unknown property 'adressSpace'" in recorded[0]
    assert "required property 'location' is missing" in recorded[1]


def test_spec_check_is_skipped_without_the_specs(tmp_path: Path):
    with AzureEmulator(specs_dir=tmp_path) as emu:
        assert isinstance(emu, AzureEmulator)
        assert emu.specs is None
        assert emu.spec_check_off and str(tmp_path) in emu.spec_check_off


def test_default_specs_dir_can_be_overridden(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CAST_AZURE_SPECS", str(tmp_path))
    assert default_specs_dir() == tmp_path


def test_api_version_is_required_and_paths_ignore_case(emulator):
    status, body = arm_call(emulator, "GET", f"{SUB}/resourcegroups")
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    emulator.errors.clear()  # the spec check saw it too; that is expected here
    arm_call(emulator, "PUT", f"{SUB}/resourcegroups/Case-Test?api-version=2025-04-01", {"location": "eastus"})
    status, body = arm_call(emulator, "GET", f"{SUB.upper()}/RESOURCEGROUPS/case-test?api-version=2025-04-01")
    assert status == 200 and body["name"] == "Case-Test"


def test_missing_things_answer_arm_errors(emulator):
    status, body = arm_call(emulator, "GET", f"{SUB}/resourcegroups/nowhere?api-version=2025-04-01")
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")
    arm_call(emulator, "PUT", f"{SUB}/resourcegroups/here?api-version=2025-04-01", {"location": "eastus"})
    status, body = arm_call(emulator, "GET", f"{SUB}/resourceGroups/here/providers/Microsoft.Network/"
                         "virtualNetworks/none?api-version=2026-03-01")
    assert (status, body["error"]["code"]) == (404, "ResourceNotFound")


def test_throttle_fault_answers_429_with_retry_after(emulator):
    emulator.faults.add("throttle", next_n=1)
    req = urllib.request.Request(f"{emulator.url}{SUB}/resourcegroups?api-version=2025-04-01",
                                 headers={"Authorization": "Bearer test"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=5)
    assert caught.value.code == 429
    assert caught.value.headers["Retry-After"] == str(emulator.throttle_retry_after)
    assert json.loads(caught.value.read())["error"]["code"] == "TooManyRequests"


def test_head_tells_whether_a_resource_group_exists(emulator):
    arm_call(emulator, "PUT", f"{SUB}/resourcegroups/headed?api-version=2025-04-01", {"location": "eastus"})
    for name, expected in (("headed", 204), ("never-made", 404)):
        req = urllib.request.Request(f"{emulator.url}{SUB}/resourcegroups/{name}?api-version=2025-04-01",
                                     method="HEAD", headers={"Authorization": "Bearer test"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        assert status == expected


def test_a_resource_being_deleted_refuses_updates_with_409(emulator, monkeypatch):
    monkeypatch.setattr(emulator, "op_seconds", 5.0)  # the delete is still at work when the PUT comes
    vnet = (f"{SUB}/resourceGroups/conflict/providers/Microsoft.Network/virtualNetworks/v"
            "?api-version=2026-03-01")
    body = {"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}}}
    arm_call(emulator, "PUT", f"{SUB}/resourcegroups/conflict?api-version=2025-04-01", {"location": "eastus"})
    assert arm_call(emulator, "PUT", vnet, body)[0] == 201
    assert arm_call(emulator, "DELETE", vnet)[0] == 202
    status, answer = arm_call(emulator, "PUT", vnet, body)
    assert (status, answer["error"]["code"]) == (409, "Conflict")


@pytest.mark.parametrize(("auth", "code", "message"), [
    (None, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."),
    ("Basic dXNlcjpwdw==", "AuthenticationFailedInvalidHeader",
     "Authentication failed. The 'Authorization' header is provided in an invalid format."),
    ("Bearer ", "AuthenticationFailedInvalidHeader",
     "Authentication failed. The 'Authorization' header is provided in an invalid format."),
])
def test_requests_without_a_bearer_token_get_arms_401(emulator, auth, code, message):
    before = len(emulator.state.groups)
    status, body = arm_call(emulator, "PUT", f"{SUB}/resourcegroups/no-auth?api-version=2025-04-01",
                         {"location": "eastus"}, auth=auth)
    assert (status, body) == (401, {"error": {"code": code, "message": message}})
    assert len(emulator.state.groups) == before  # nothing was created


def test_a_set_token_is_the_only_one_accepted():
    with AzureEmulator(token="s3cret") as emu:
        assert isinstance(emu, AzureEmulator)
        status, body = arm_call(emu, "GET", f"{SUB}/resourcegroups?api-version=2025-04-01", auth="Bearer other")
        assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
        status, body = arm_call(emu, "GET", f"{SUB}/resourcegroups?api-version=2025-04-01", auth="Bearer s3cret")
        assert (status, body) == (200, {"value": []})


def test_unknown_query_parameters_and_a_body_on_delete_are_ignored_as_arm_does(emulator):
    arm_call(emulator, "PUT", f"{SUB}/resourcegroups/lenient?api-version=2025-04-01", {"location": "eastus"})
    status, body = arm_call(emulator, "GET", f"{SUB}/resourcegroups/lenient?api-version=2025-04-01&per_page=200")
    assert (status, body["name"]) == (200, "lenient")
    vnet = f"{SUB}/resourceGroups/lenient/providers/Microsoft.Network/virtualNetworks/v?api-version=2026-03-01"
    arm_call(emulator, "PUT", vnet, {"location": "eastus",
                                  "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}}})
    assert arm_call(emulator, "DELETE", vnet, {})[0] == 202
    assert emulator.errors == []


def test_an_operation_works_its_time_whether_polled_or_not_and_hints_the_rest(emulator, monkeypatch):
    monkeypatch.setattr(emulator, "op_seconds", 1.6)
    monkeypatch.setattr(emulator, "lro_polls", 0)
    nsg = (f"{SUB}/resourceGroups/timed/providers/Microsoft.Network/networkSecurityGroups/n"
           "?api-version=2026-03-01")
    arm_call(emulator, "PUT", f"{SUB}/resourcegroups/timed?api-version=2025-04-01", {"location": "eastus"})
    request = urllib.request.Request(f"{emulator.url}{nsg}", data=json.dumps({"location": "eastus"}).encode(),
                                     method="PUT", headers={"Authorization": "Bearer test",
                                                            "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        hint = resp.headers["Retry-After"]
    assert hint == "2"  # the time the operation still needs, in whole seconds as ARM sends it
    assert arm_call(emulator, "GET", nsg)[1]["properties"]["provisioningState"] != "Succeeded"
    time.sleep(1.7)
    assert arm_call(emulator, "GET", nsg)[1]["properties"]["provisioningState"] == "Succeeded"  # nobody polled


def test_the_generic_resource_list_expands_what_it_is_asked_for(provider, emulator):
    from provisioner.clouds import azure_build as build

    from .conftest import build_cluster, make_target

    target = make_target("expanded")
    build_cluster(provider, target, masters=1, workers=0)
    group, rc = build.group_name(target.cluster), provider.session.resources

    plain = list(rc.resources.list_by_resource_group(group))
    expanded = {r.name: r for r in rc.resources.list_by_resource_group(
        group, expand="provisioningState,createdTime,changedTime")}
    disks = list(rc.resources.list_by_resource_group(group, filter="resourceType eq 'Microsoft.Compute/disks'"))

    assert {r.name for r in plain} == set(expanded)
    assert all(r.provisioning_state is None and r.created_time is None for r in plain)  # only when asked
    vm = expanded[f"{target.cluster.name}-az-m1"]
    assert vm.provisioning_state == "Succeeded"
    assert vm.created_time is not None and vm.changed_time >= vm.created_time
    assert vm.tags[tags.CLUSTER_UUID] == target.cluster.uuid and "zones" not in vm  # not in GenericResource
    assert expanded[f"{target.cluster.name}-az-m1-ip"].sku.name == "Standard"
    assert [d.managed_by for d in disks] == [vm.id]  # an attached disk names its VM
