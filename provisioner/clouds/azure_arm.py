"""Reading compute and network resources through azure-mgmt-resource alone, for the commands
that only check and delete (delete-cluster): the compute and network SDKs (about 0.4 s of CPU
to import) stay out.

A resource is read with the generic resources API (`resources.get_by_id`, which returns a
GenericResource with the provider's `properties`); a provider's list of a group's resources
of one type (the VMs with their network profiles, the VNets with their subnets' IP
configurations: what the safety check needs in one call each) goes through the same client's
pipeline (`send_request`: its credential, retries and API log), page by page along
`nextLink`, each item a GenericResource too. The API versions are the ones the installed SDKs
send (tests/clouds/azure checks that they agree).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import CloudError
from .azure_session import CLOUD

if TYPE_CHECKING:
    from .azure import Provider

NETWORK_API = "2026-03-01"  # azure-mgmt-network's default
COMPUTE_API = "2026-04-01"  # azure-mgmt-compute's default for virtual machines
VM_TYPE = "Microsoft.Compute/virtualMachines"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
API_OF = {VM_TYPE.lower(): COMPUTE_API, VNET_TYPE.lower(): NETWORK_API,
          "microsoft.network/networkinterfaces": NETWORK_API}


def list_in_group(p: Provider, group: str, rtype: str) -> list[Any]:
    """Every resource of type `rtype` (e.g. VM_TYPE) in `group`, with its properties, as
    GenericResource models (NotFoundError when the group does not exist)."""
    path = f"/subscriptions/{p.session.subscription_id}/resourceGroups/{group}/providers/{rtype}"
    what = f"list {rtype.rsplit('/', 1)[-1]} in {group}"
    return p.call(what, lambda: list(_pages(p, path, API_OF[rtype.lower()])))


def read(p: Provider, rid: str) -> Any:
    """The resource with ARM id `rid` (a VM or a network resource), with its properties: the
    generic resources API's GenericResource."""
    rtype = "/".join(rid.strip("/").split("/")[5:7]).lower()
    api = API_OF.get(rtype)
    if api is None:  # e.g. a scale set's VM or NIC: not one cast reads
        raise CloudError(CLOUD, f"read {rid}: a resource of type {rtype} is not one cast knows how to check")
    rc = p.session.resources
    return p.call(f"read {rid}", lambda: rc.resources.get_by_id(rid, api_version=api))


def _pages(p: Provider, path: str, api_version: str) -> Iterator[Any]:
    """The items of the list at `path`, page by page along nextLink (azure-core's ItemPaged,
    as the SDKs' own list operations page)."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.paging import ItemPaged
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat
    from azure.mgmt.resource.resources.models import GenericResource

    rc = p.session.resources

    def get_next(link: str | None) -> Any:
        # ARM's nextLink carries the api-version; the SDKs' own paging adds it where it does not
        url = link or path
        response = rc.send_request(HttpRequest("GET", url, params={} if "api-version=" in url
                                               else {"api-version": api_version}))
        if response.status_code != 200:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)  # the caller maps it
        return response

    def extract(response: Any) -> tuple[str | None, Iterator[Any]]:
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise CloudError(CLOUD, f"GET {path}: the answer is not a list")
        return body.get("nextLink") or None, iter(GenericResource(item) for item in body["value"])

    return iter(ItemPaged(get_next, extract))


def props(resource: Any) -> dict[str, Any]:
    """A GenericResource's properties (empty when it has none)."""
    found = resource.properties if resource is not None else None
    return found if isinstance(found, dict) else {}


def subnets(vnet: Any) -> list[dict[str, Any]]:
    """A VNet's subnets (GenericResource of a VNet), each {"id", "name", "properties"}."""
    return [s for s in props(vnet).get("subnets") or [] if isinstance(s, dict)]


def ip_configuration_ids(vnet: Any) -> list[str]:
    """The ids of the NIC IP configurations on the VNet's subnets."""
    return [c["id"] for s in subnets(vnet) for c in (s.get("properties") or {}).get("ipConfigurations") or []
            if isinstance(c, dict) and c.get("id")]


def nic_ids_of_vm(vm: Any) -> list[str]:
    """The ids of the NICs a VM (GenericResource) holds."""
    refs = (props(vm).get("networkProfile") or {}).get("networkInterfaces") or []
    return [r["id"] for r in refs if isinstance(r, dict) and r.get("id")]


def vm_of_nic(nic: Any) -> str | None:
    """The id of the VM a NIC (GenericResource) is attached to, None when free."""
    vm = props(nic).get("virtualMachine")
    return vm.get("id") if isinstance(vm, dict) else None
