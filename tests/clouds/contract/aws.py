"""AWS under the contract: boto3 against a seeded moto server behind the call-counting proxy."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provisioner.clouds.aws import Provider
from provisioner.clouds.base import CloudTarget
from provisioner.regions import load_region_map
from provisioner.sandbox.aws_fault_proxy import FaultProxy
from provisioner.sandbox.aws_moto import MotoSandbox, ami_id

from ...conftest import cloud_target
from .backend import FAST, Backend

REGION, ZONE = "us-east-1", "us-east-1a"
KEY, SECRET = "AKIACASTCONTRACT", "contract-not-a-real-secret"


class Aws(Backend):
    name = "aws"
    sizes = {"master": "t3.medium", "worker": "t3.medium"}
    unset = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
             "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_DEFAULT_REGION", "AWS_REGION")

    @contextmanager
    def start(self) -> Iterator[None]:
        with MotoSandbox(access_key=KEY, secret_key=SECRET) as sandbox, FaultProxy(sandbox.endpoint) as proxy, \
                tempfile.TemporaryDirectory() as home:
            self.sandbox, self.proxy = sandbox, proxy
            self.env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ENDPOINT_URL": proxy.endpoint,
                        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(Path(home) / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(Path(home) / "none")}
            self.watch(proxy)
            yield

    def reset(self) -> None:
        self.proxy.clear()
        super().reset()

    def provider(self) -> Provider:
        return Provider(REGION, ZONE, settings=FAST)

    def target(self, name: str) -> CloudTarget:
        image = load_region_map().region("us-east").clouds["aws"].image
        return cloud_target(REGION, ZONE, "10.10.0.0/16", "10.10.1.0/24", image, name=name)

    def add_foreign_vm(self, provider: Any, target: CloudTarget) -> Callable[[], None]:
        import boto3

        ec2 = boto3.client("ec2", endpoint_url=self.sandbox.endpoint, region_name=REGION,
                           aws_access_key_id=KEY, aws_secret_access_key=SECRET)
        owned = [{"Name": "tag:cast-cluster-uuid", "Values": [target.cluster.uuid]}]
        subnet = ec2.describe_subnets(Filters=owned)["Subnets"][0]["SubnetId"]
        made = ec2.run_instances(ImageId=ami_id(REGION), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                 SubnetId=subnet)["Instances"][0]["InstanceId"]
        return lambda: ec2.terminate_instances(InstanceIds=[made]) and None
