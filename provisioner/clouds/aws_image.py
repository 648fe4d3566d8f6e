"""The Ubuntu 24.04 AMI of a region: Canonical's public SSM parameter first, then, where that
is missing or not readable, the newest image by Canonical's owner id and name pattern."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import AuthError, NotFoundError
from .aws_api import CLOUD, AwsApi


def find_ami(api: AwsApi, image: Mapping[str, str]) -> str:
    """The AMI id for the region map's image reference (keys ssm_parameter, owner, name).
    Raises NotFoundError when neither way finds one."""
    parameter = image.get("ssm_parameter")
    if parameter:
        try:
            value = api.ssm("get_parameter", what=f"reading SSM parameter {parameter}",
                            Name=parameter)["Parameter"]["Value"]
            if str(value).startswith("ami-"):
                return str(value)
        except (NotFoundError, AuthError):
            # Missing in this partition, or no ssm:GetParameter right: the owner+name search
            # below needs only ec2:DescribeImages.
            pass
    owner, pattern = image.get("owner"), image.get("name")
    if not owner or not pattern:
        raise NotFoundError(CLOUD, f"no AMI: SSM parameter {parameter!r} not found in "
                                   f"{api.region} and no owner/name fallback configured")
    images = api.describe("describe_images", "Images", Owners=[owner],
                          Filters=[{"Name": "name", "Values": [pattern]},
                                   {"Name": "state", "Values": ["available"]}])
    if not images:
        raise NotFoundError(CLOUD, f"no AMI in {api.region}: SSM parameter {parameter!r} not "
                                   f"found and no image of owner {owner} named {pattern}")
    return str(max(images, key=lambda i: str(i.get("CreationDate", "")))["ImageId"])
