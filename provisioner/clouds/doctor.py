"""Whether each cloud can be used from here (`cast doctor`): which credential source its SDK's
own chain finds (named, never shown), one cheap authenticated call with a short timeout and no
retry, and the endpoint in use (the sandbox when it is on loopback). Cloud knowledge only;
the command and its report are provisioner/doctor.py's.
"""

from __future__ import annotations

import importlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import AuthError, CastError, CloudError, TransientError
from . import load_cloud
from .loopback import is_loopback

TIMEOUT_S = 10.0
SANDBOX_FIX = 'or `eval "$(cast sandbox env)"` to use the sandbox'


@dataclass(frozen=True)
class Access:
    """One cloud as cast would reach it now."""

    cloud: str
    region: str  # the region the check ran in
    usable: bool
    credentials: str | None  # the source found (e.g. "env"), never the secret; None when none was
    endpoint: str
    sandbox: bool  # the endpoint is on loopback: the sandbox or an emulator
    detail: str  # what the check call answered, or why the cloud cannot be used
    fix: str | None = None  # what to do about it, when it cannot

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Cloud:
    probe: Callable[[str, float], Access]  # (region, timeout_s) -> Access; blocks at most about timeout_s
    endpoint_env: str
    default_endpoint: str  # "{region}" is replaced by the region
    fix: str  # how to give cast credentials
    modules: tuple[str, ...] = ()  # SDK modules the probe imports beyond the cloud module's own


def _result(cloud: str, region: str, endpoint: str, credentials: str | None, outcome: str | CastError) -> Access:
    """An Access from a probe's outcome: a line of what answered, or the error that stopped it."""
    sandbox = is_loopback(endpoint)
    if isinstance(outcome, str):
        return Access(cloud, region, True, credentials, endpoint, sandbox, outcome)
    if isinstance(outcome, TransientError):
        env = CLOUDS[cloud].endpoint_env
        fix = ('start the sandbox with `cast sandbox up` and point cast at it: eval "$(cast sandbox env)"' if sandbox
               else f"check the network, and {env} if it is set (unset it to use the cloud's own API)")
    else:
        fix = f"{CLOUDS[cloud].fix}; {SANDBOX_FIX}"
    detail = str(outcome).removeprefix(f"{cloud}: ")
    return Access(cloud, region, False, credentials, endpoint, sandbox, detail, fix)


def _endpoint(cloud: str, region: str) -> str:
    spec = CLOUDS[cloud]
    return os.environ.get(spec.endpoint_env) or spec.default_endpoint.format(region=region)


# --- the probes ------------------------------------------------------------------------


def _aws(region: str, timeout_s: float) -> Access:
    from .aws_api import CLOUD, AwsApi

    endpoint, source = _endpoint(CLOUD, region), None
    try:
        api = AwsApi(region, timeout_s=timeout_s)
        source, endpoint = api.credential_source, api.ec2_client.meta.endpoint_url
        if source is None:
            raise AuthError(CLOUD, "no credentials found (tried environment variables, shared credentials and "
                                   "config files, SSO, container and instance metadata)")
        api.ec2("describe_regions", what=f"describe region {region}", RegionNames=[region])
    except CastError as exc:
        return _result(CLOUD, region, endpoint, source, exc)
    return _result(CLOUD, region, endpoint, source, f"EC2 answered in {region}")


def _gcp_file_source() -> str | None:
    """The file google.auth.default reads credentials from, in words; None when there is none
    (it then asks the metadata server, which answers only on Google Cloud)."""
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path:
        return f"GOOGLE_APPLICATION_CREDENTIALS file {path}"
    from google.auth import _cloud_sdk

    adc = _cloud_sdk.get_application_default_credentials_path()
    return f"gcloud application-default credentials ({adc})" if os.path.exists(adc) else None


def _gcp(region: str, timeout_s: float) -> Access:
    from google.cloud import compute_v1

    from .gcp_api import CLOUD, GcpApi, map_error

    endpoint = _endpoint(CLOUD, region)
    source = None if is_loopback(endpoint) else _gcp_file_source()
    try:
        api = GcpApi(transient_budget_s=0)
        source = api.credential_source if api.sandbox else (source or "the GCE metadata server")
        request = compute_v1.ListNetworksRequest(project=api.project, max_results=1)
        try:
            api.client("NetworksClient").list(request=request, retry=None, timeout=timeout_s)
        except Exception as exc:
            raise map_error(exc, f"list networks in project {api.project}") from None
    except CastError as exc:
        return _result(CLOUD, region, endpoint, source, exc)
    return _result(CLOUD, region, endpoint, source, f"Compute Engine answered for project {api.project}")


def _azure_source() -> str | None:
    """Which source of DefaultAzureCredential's chain the environment offers, in words."""
    if os.environ.get("AZURE_TENANT_ID") and os.environ.get("AZURE_CLIENT_ID"):
        for variable, what in (("AZURE_CLIENT_SECRET", "service principal with a client secret"),
                               ("AZURE_CLIENT_CERTIFICATE_PATH", "service principal with a certificate"),
                               ("AZURE_FEDERATED_TOKEN_FILE", "workload identity")):
            if os.environ.get(variable):
                return f"environment: {what} ({variable})"
    return "Azure CLI (az login)" if shutil.which("az") else None


def _azure(region: str, timeout_s: float) -> Access:
    from .azure_session import CLOUD, ENDPOINT_ENV, AzureSession, mapped_errors

    endpoint = _endpoint(CLOUD, region)
    source = f"emulator token ({ENDPOINT_ENV} is loopback)" if is_loopback(endpoint) else _azure_source()
    try:
        session = AzureSession.from_env(retry_total=0, connection_timeout=timeout_s, read_timeout=timeout_s)
        subscription = session.subscription_id
        with mapped_errors(f"list resource groups of subscription {subscription}"):
            next(iter(session.resources.resource_groups.list(top=1)), None)
    except CastError as exc:
        return _result(CLOUD, region, endpoint, source, exc)
    source = source or "DefaultAzureCredential (managed identity or another source of its chain)"
    return _result(CLOUD, region, endpoint, source, f"Resource Manager answered for subscription {subscription}")


def _digitalocean(region: str, timeout_s: float) -> Access:
    from .do_client import CLOUD, TOKEN_ENV, DoApi

    api = DoApi()
    api.transient_budget_s = 0.0  # one attempt
    source = f"{TOKEN_ENV} (environment)" if os.environ.get(TOKEN_ENV) else None
    try:
        if source is None:
            raise AuthError(CLOUD, f"{TOKEN_ENV} is not set")
        body = api.call("read the account", lambda c: c.account.get,
                        connection_timeout=timeout_s, read_timeout=timeout_s)
    except CastError as exc:
        return _result(CLOUD, region, api.endpoint, source, exc)
    status = ((body or {}).get("account") or {}).get("status", "unknown")
    return _result(CLOUD, region, api.endpoint, source, f"the account answered (status {status})")


CLOUDS: dict[str, _Cloud] = {
    "aws": _Cloud(_aws, "AWS_ENDPOINT_URL", "https://ec2.{region}.amazonaws.com",
                  "set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run `aws configure`"),
    "gcp": _Cloud(_gcp, "CAST_GCP_ENDPOINT", "https://compute.googleapis.com",
                  "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a "
                  "service-account key file, and set CAST_GCP_PROJECT", ("google.auth._cloud_sdk",)),
    "azure": _Cloud(_azure, "CAST_AZURE_ENDPOINT", "https://management.azure.com",
                    "run `az login` (or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET) and set "
                    "AZURE_SUBSCRIPTION_ID"),
    "digitalocean": _Cloud(_digitalocean, "CAST_DIGITALOCEAN_ENDPOINT", "https://api.digitalocean.com",
                           "export DIGITALOCEAN_TOKEN, a read-write personal access token (control panel, "
                           "API > Tokens)"),
}


def check_clouds(regions: Mapping[str, str], timeout_s: float = TIMEOUT_S) -> list[Access]:
    """Each cloud of `regions` (cloud -> the cloud region to check in), in that order, checked
    in parallel. Every network call waits at most `timeout_s`; a check still running a moment
    after that is reported as not answering. Imports the SDKs in the calling thread first.
    Raises KeyError for an unknown cloud."""
    for cloud in regions:
        load_cloud(cloud)
        for module in CLOUDS[cloud].modules:
            importlib.import_module(module)
    results: dict[str, Access] = {}

    def run(cloud: str) -> None:
        try:
            results[cloud] = CLOUDS[cloud].probe(regions[cloud], timeout_s)
        except Exception as exc:  # a probe's bug or an SDK's surprise: still a report, not a crash
            first = (str(exc).splitlines() or [""])[0][:200]
            outcome = CloudError(cloud, f"the check failed: {type(exc).__name__}: {first}")
            results[cloud] = _result(cloud, regions[cloud], _endpoint(cloud, regions[cloud]), None, outcome)

    # Daemon threads: a check stuck past its deadline (a hung credential helper) must not
    # keep the command from ending.
    threads = [threading.Thread(target=run, args=(c,), name=f"doctor-{c}", daemon=True) for c in regions]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s + 2.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [results.get(c) or _result(c, regions[c], _endpoint(c, regions[c]), None,
                                      TransientError(c, f"no answer within {timeout_s:g} s")) for c in regions]
