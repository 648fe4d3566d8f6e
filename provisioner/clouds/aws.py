"""AWS behind the cloud interface (base.Cloud): EC2 through boto3, reaching whatever endpoint
boto3 is told (AWS_ENDPOINT_URL for the sandbox and the tests). The work is split by concept
into aws_*.py beside this file; this class only wires them to the contract."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from . import aws_instances
from .aws_api import AwsApi
from .aws_firewall import ensure_firewall
from .aws_image import find_ami
from .aws_instances import delete_vms, ensure_vms, foreign_vms, known_from, live_instances, to_vm
from .aws_keys import ensure_ssh_key
from .aws_network import ensure_network, ensure_subnet
from .aws_owned import owned
from .aws_teardown import inventory
from .base import Cloud, CloudResource, CloudTarget, ClusterRef, Ensured, Owned, Settings, Vm, VmRequest

# The SDK modules this cloud imports lazily; the registry imports them in the caller's thread
# (concurrent first imports of one package from several threads can deadlock).
SDK_MODULES = ("boto3", "botocore.config", "botocore.exceptions")


class Provider(Cloud):
    """One AWS account in one region. The boto3 session and clients are made on first use and
    shared by every thread."""

    name = "aws"
    settings = aws_instances.SETTINGS
    # EC2 user guide, "Run commands when you launch an EC2 instance with user data input":
    # "User data is limited to 16 KB, in raw form, before it is base64-encoded." (boto3 does
    # the base64 of UserData itself.)
    user_data_limit = 16 * 1024

    @staticmethod
    def image_label(image: Mapping[str, str]) -> str:
        return "ubuntu 24.04 (Canonical SSM)" if "ssm_parameter" in image else image.get("name", "?")

    def __init__(self, region: str, zone: str | None = None, *, settings: Settings | None = None):
        super().__init__(region, zone)
        self.settings = settings or self.settings
        self._api: AwsApi | None = None
        self._amis: dict[tuple[tuple[str, str], ...], str] = {}
        self._ami_lock = threading.Lock()  # one lookup at a time: a caller waits for the one under way
        self._lock = threading.Lock()
        # What this command's steps ensured in a VPC it made itself, by cluster UUID: the VM
        # step launches into them without reading them back (aws_instances.Known).
        self._made: dict[str, dict[str, CloudResource]] = {}
        self._key_names: dict[str, str] = {}  # cluster UUID -> its key pair's name, as ensured

    @property
    def api(self) -> AwsApi:
        with self._lock:
            if self._api is None:
                self._api = AwsApi(self.region)
            return self._api

    def check_credentials(self) -> None:
        zones: dict[str, Any] = {"ZoneNames": [self.zone]} if self.zone else {}
        self.api.ec2("describe_availability_zones", what="checking AWS credentials", **zones)

    def ensure_network(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        uuid = target.cluster.uuid
        with self._lock:
            self._made.pop(uuid, None)

        def new_vpc() -> None:
            # VMs follow, and their image, which needs no network, is looked up meanwhile.
            threading.Thread(target=self._ami_early, args=(target,), name="aws-image", daemon=True).start()
            with self._lock:
                self._made[uuid] = {}

        return ensure_network(self.api, target, dry_run, on_new_vpc=new_vpc)

    def ensure_subnet(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        return self._remember(target, ensure_subnet(self.api, target, dry_run))

    def ensure_firewall(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        return self._remember(target, ensure_firewall(self.api, target, dry_run))

    def ensure_ssh_key(self, target: CloudTarget, public_key: str, *,
                       dry_run: bool = False) -> Ensured:
        ensured = ensure_ssh_key(self.api, target, public_key, dry_run)
        for r in ensured.resources:
            if r.kind == "key-pair":
                with self._lock:  # the pair's own name (one made by cast is key_name's)
                    self._key_names[target.cluster.uuid] = r.name
        return ensured

    def _remember(self, target: CloudTarget, ensured: Ensured) -> Ensured:
        """Keep what the subnet or firewall step ensured in a VPC this command made (for the VM
        step)."""
        with self._lock:
            made = self._made.get(target.cluster.uuid)
            if made is not None:
                for r in ensured.resources:
                    made[f"{r.kind}/{r.extra.get('role', '')}"] = r
        return ensured

    def ensure_vms(self, target: CloudTarget, vms: Sequence[VmRequest], public_key: str) -> list[Vm]:
        # public_key is already in the cluster's key pair (ensure_ssh_key).
        if not vms:
            return []
        with self._lock:
            made = self._made.pop(target.cluster.uuid, None)
            key = self._key_names.get(target.cluster.uuid)
        known = known_from(made, target.cluster, key)
        return ensure_vms(self.api, target, vms, lambda: self.ami(target), self.settings, known)

    def ami(self, target: CloudTarget) -> str:
        """The Ubuntu 24.04 AMI for this region, looked up once per provider (a caller while
        the lookup runs waits for it)."""
        key = tuple(sorted(target.image.items()))
        with self._ami_lock:
            if key not in self._amis:
                self._amis[key] = find_ami(self.api, target.image)
            return self._amis[key]

    def _ami_early(self, target: CloudTarget) -> None:
        # A failure here is the VM step's to report: it looks again.
        with contextlib.suppress(Exception):
            self.ami(target)

    def list_vms(self, cluster: ClusterRef) -> list[Vm]:
        return [to_vm(i) for i in live_instances(self.api, cluster)]

    def delete_vms(self, target: CloudTarget, names: Sequence[str]) -> None:
        if names:
            delete_vms(self.api, target.cluster, names, self.settings)

    def find_foreign_vms(self, target: CloudTarget) -> list[Vm]:
        vpcs = self.api.describe("describe_vpcs", "Vpcs", Filters=owned(target.cluster))
        return foreign_vms(self.api, target.cluster, [v["VpcId"] for v in vpcs])

    def list_resources(self, cluster: ClusterRef) -> list[Owned]:
        return inventory(self.api, cluster, self.settings)
