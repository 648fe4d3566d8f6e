"""A moto server on loopback that looks enough like AWS for cast: the Ubuntu 24.04 AMI and
Canonical's SSM parameter exist in every region the region map uses, and instances get public
IPs from the sandbox's AWS pool (198.18.0.0/24 unless given another) instead of moto's 54.214.x.y.

It refuses what EC2 refuses at launch: moto's AMI and instance-type validation are on while
the server runs (moto's settings `MOTO_ENABLE_AMI_VALIDATION` and
`MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION`, read by moto 5.2 at import time, so set here on its
settings module): an unknown ImageId is `InvalidAMIID.NotFound` ("The image id '[ami-…]' does
not exist"), an InstanceType not offered in the region is EC2's `InvalidParameterValue`
("Invalid value 'x9.fake' for InstanceType.", where moto itself would say
`InvalidInstanceType.NotFound`). The AMIs known are moto's own set plus the seeded Ubuntu 24.04
builds the region map's image reference resolves to.

Credentials are checked as AWS checks them: moto's IAM authentication is on (its setting
INITIAL_NO_AUTH_ACTION_COUNT = 0), with one IAM user allowed everything whose access key is
the sandbox's (`access_key`/`secret_key`, default "sandbox"/"sandbox", as the sandbox's
environment sets them); any other key, a wrong secret or an unsigned request is refused
(EC2: HTTP 401 AuthFailure "AWS was not able to validate the provided access credentials").

moto runs in a thread of this process (ThreadedMotoServer), so its backends are reachable
here: that is how the AMI, the parameter, the address pool and the settings are put in (and
given back on stop). A reset through `reset()` seeds them again; a bare POST to
/moto-api/reset would lose them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import threading
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..regions import load_region_map
from .pools import DEFAULT_POOLS

UBUNTU_OWNER = "099720109477"
UBUNTU_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-{date}"
# An older build is seeded too, so the owner+name fallback has to pick the newest.
BUILDS = (("20240423", datetime(2024, 4, 23, tzinfo=UTC)),
          ("20250610", datetime(2025, 6, 10, tzinfo=UTC)))
PUBLIC_POOL = DEFAULT_POOLS["aws"]


def map_regions() -> list[str]:
    """Every AWS region the region map uses."""
    regions = load_region_map().regions.values()
    return sorted({r.clouds["aws"].region for r in regions if "aws" in r.clouds})


def ssm_parameter() -> str:
    """Canonical's SSM parameter name for Ubuntu 24.04, as the region map spells it."""
    for region in load_region_map().regions.values():
        if "aws" in region.clouds:
            return region.clouds["aws"].image["ssm_parameter"]
    raise LookupError("the region map names no AWS region")


def ami_id(region: str, build: str = BUILDS[-1][0]) -> str:
    """The seeded AMI id of a build in a region (stable, different per region like AWS)."""
    return "ami-0" + hashlib.sha256(f"{region}/{build}".encode()).hexdigest()[:16]


class PublicAddressPool:
    """Hands moto's network interfaces and Elastic IPs addresses from `network`: the next one,
    after the last handed out and round the pool, that no live interface or Elastic IP holds.
    Not the lowest free one: a cloud does not hand a released address out again at once, and
    the supervisor may still be taking down the host of the VM that held it. The network's
    first host is left for the sandbox's router, its last for the sandbox's DNS server
    (pools.dns_address)."""

    def __init__(self, network: str = PUBLIC_POOL):
        self.hosts = list(ipaddress.ip_network(network).hosts())[1:-1]
        self._lock = threading.Lock()
        self._next = 0

    def __call__(self) -> str:
        with self._lock:
            used = _public_ips_in_use()
            for step in range(len(self.hosts)):
                index = (self._next + step) % len(self.hosts)
                if str(self.hosts[index]) not in used:
                    self._next = index + 1
                    return str(self.hosts[index])
        raise RuntimeError(f"sandbox AWS address pool exhausted ({len(self.hosts)} addresses)")


def _public_ips_in_use() -> set[str]:
    from moto.ec2.models import ec2_backends

    used: set[str] = set()
    for account in list(ec2_backends.values()):
        for backend in list(account.values()):
            used.update(e.public_ip for e in list(backend.enis.values()) if e.public_ip)
            used.update(a.public_ip for a in list(backend.addresses) if a.public_ip)
    return used


def invalid_instance_type(instance_type: Any, error_type: str = "") -> Exception:
    """EC2's own refusal of an instance type it does not offer, in place of moto's."""
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError("InvalidParameterValue", f"Invalid value '{instance_type}' for InstanceType.")


VALIDATIONS = {"ENABLE_AMI_VALIDATION": True, "EC2_ENABLE_INSTANCE_TYPE_VALIDATION": True,
               "INITIAL_NO_AUTH_ACTION_COUNT": 0}  # 0: every request is authenticated
SANDBOX_USER = "cast-sandbox"
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


class MotoSandbox:
    """A seeded moto server on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(self, regions: Iterable[str] | None = None, *, port: int = 0,
                 public_pool: str = PUBLIC_POOL, access_key: str = "sandbox", secret_key: str = "sandbox"):
        self.regions = list(regions) if regions is not None else map_regions()
        self.access_key, self.secret_key = access_key, secret_key
        self.port = port
        self.pool = PublicAddressPool(public_pool)
        self._server: Any = None
        self._saved_ip_source: Any = None
        self._saved: dict[str, Any] = {}  # moto settings and hooks to give back on stop
        self.mapped: dict[str, list[str]] = {}  # load balancer ARN -> its subnet mappings' AllocationIds

    @property
    def endpoint(self) -> str:
        """The URL to give boto3 (AWS_ENDPOINT_URL)."""
        if self._server is None:
            raise RuntimeError("the moto sandbox is not running")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Start the server, seed it, and return its endpoint URL."""
        import moto.ec2.models.elastic_network_interfaces as enis
        import moto.ec2.models.instances as instances
        from moto import settings
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._saved_ip_source = enis.random_public_ip
        enis.random_public_ip = self.pool
        self._saved = {name: getattr(settings, name) for name in VALIDATIONS}
        self._saved["InvalidInstanceTypeError"] = instances.InvalidInstanceTypeError
        for name, value in VALIDATIONS.items():
            setattr(settings, name, value)
        instances.InvalidInstanceTypeError = invalid_instance_type  # type: ignore[assignment,misc]
        self._patch_ingress()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.seed()
        return self.endpoint

    def _patch_ingress(self) -> None:
        """What the load balancers and Route 53 need of moto: Elastic IPs from the sandbox's pool
        (moto draws them from 127.x.y.z), the Elastic IP of each subnet mapping remembered by
        load balancer (moto keeps no AllocationId; `mapped_addresses` gives them), and Route 53's
        bodiless requests (GET, DELETE) signed as sent (moto checks them as if their headers were
        the payload, refusing every one with SignatureDoesNotMatch)."""
        import moto.ec2.models.elastic_ip_addresses as eips
        from moto.elbv2.models import ELBv2Backend
        from moto.iam.access_control import IAMRequestBase

        self._saved["eips.random_ip"] = eips.random_ip
        eips.random_ip = self.pool
        create_aws_request = IAMRequestBase._create_aws_request
        self._saved["IAMRequestBase._create_aws_request"] = create_aws_request

        def signed_as_sent(request: Any) -> Any:
            made = create_aws_request(request)
            if request._service == "route53" and not request._body:
                made.data = b""
            return made

        IAMRequestBase._create_aws_request = signed_as_sent  # type: ignore[method-assign,assignment]
        create_lb = ELBv2Backend.create_load_balancer
        self._saved["ELBv2Backend.create_load_balancer"] = create_lb
        mapped = self.mapped

        def remember_mappings(backend: Any, *args: Any, **kwargs: Any) -> Any:
            lb = create_lb(backend, *args, **kwargs)
            allocations = [m["AllocationId"] for m in kwargs.get("subnet_mappings") or [] if m.get("AllocationId")]
            mapped[lb.arn] = allocations
            return lb

        ELBv2Backend.create_load_balancer = remember_mappings  # type: ignore[method-assign,assignment]

    def mapped_addresses(self, arn: str) -> list[str]:
        """The AllocationIds a load balancer's subnet mappings were created with."""
        return list(self.mapped.get(arn, []))

    def _unpatch_ingress(self) -> None:
        import moto.ec2.models.elastic_ip_addresses as eips
        from moto.elbv2.models import ELBv2Backend
        from moto.iam.access_control import IAMRequestBase

        if "eips.random_ip" in self._saved:
            eips.random_ip = self._saved.pop("eips.random_ip")
            IAMRequestBase._create_aws_request = self._saved.pop(  # type: ignore[method-assign]
                "IAMRequestBase._create_aws_request")
            ELBv2Backend.create_load_balancer = self._saved.pop(  # type: ignore[method-assign]
                "ELBv2Backend.create_load_balancer")

    def stop(self) -> None:
        """Stop the server and give moto back its own address source."""
        import moto.ec2.models.elastic_network_interfaces as enis

        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._saved_ip_source is not None:
            enis.random_public_ip = self._saved_ip_source
            self._saved_ip_source = None
        self._unpatch_ingress()
        if self._saved:
            import moto.ec2.models.instances as instances
            from moto import settings

            instances.InvalidInstanceTypeError = self._saved.pop("InvalidInstanceTypeError")  # type: ignore[misc]
            for name, value in self._saved.items():
                setattr(settings, name, value)
            self._saved = {}

    def reset(self) -> None:
        """Forget every resource (moto's own reset), then seed again."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        self.seed()

    def seed(self) -> None:
        """Register the sandbox's IAM user and key, and the Ubuntu 24.04 AMIs and the SSM
        parameter in every region."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends
        from moto.ec2.models.amis import Ami
        from moto.iam.models import iam_backends
        from moto.ssm.models import Parameter, ssm_backends

        iam = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
        # moto's backends are per process, shared by every MotoSandbox in it: one user per key
        user_name = f"{SANDBOX_USER}-{hashlib.sha256(self.access_key.encode()).hexdigest()[:8]}"
        if user_name not in iam.users:
            user = iam.create_user(region_name="us-east-1", user_name=user_name, path="/", tags=[])
            iam.put_user_policy(user_name, "allow-all", ALLOW_ALL)
            key = user.create_access_key(prefix="AKIA")
            key.access_key_id, key.secret_access_key = self.access_key, self.secret_key
            iam.access_keys[key.physical_resource_id] = key

        parameter = ssm_parameter()
        for region in self.regions:
            ec2 = ec2_backends[DEFAULT_ACCOUNT_ID][region]
            for build, created in BUILDS:
                image = ami_id(region, build)
                if image not in ec2.amis:
                    ec2.amis[image] = Ami(
                        ec2, ami_id=image, name=UBUNTU_NAME.format(date=build),
                        owner_id=UBUNTU_OWNER, public=True, architecture="x86_64",
                        virtualization_type="hvm", hypervisor="xen", root_device_type="ebs",
                        root_device_name="/dev/sda1", creation_date=created,
                        description=f"Canonical, Ubuntu, 24.04, amd64 noble image build {build}",
                        region_name=f"{region}a",
                    )
            params = ssm_backends[DEFAULT_ACCOUNT_ID][region]._parameters
            if not params.get(parameter):
                params[parameter].append(Parameter(  # type: ignore[abstract]
                    account_id=DEFAULT_ACCOUNT_ID, name=parameter, value=ami_id(region),
                    parameter_type="String", description=None, allowed_pattern=None, keyid=None,
                    last_modified_date=datetime.now(UTC), version=1,
                    data_type="aws:ec2:image",
                ))

    def __enter__(self) -> MotoSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
