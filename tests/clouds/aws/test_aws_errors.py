"""AWS error codes onto our errors, and the launch token: pure tables, no server."""

from __future__ import annotations

import pytest

from provisioner.clouds.aws_api import classify
from provisioner.clouds.aws_instances import client_token
from provisioner.clouds.base import ClusterRef
from provisioner.errors import (
    AuthError,
    CapacityError,
    CloudError,
    DependencyError,
    NotFoundError,
    TransientError,
)


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("RequestLimitExceeded", 503, TransientError),
    ("Throttling", 400, TransientError),
    ("InternalError", 500, TransientError),
    ("", 502, TransientError),
    ("InsufficientInstanceCapacity", 500, CapacityError),
    ("InstanceLimitExceeded", 400, CapacityError),
    ("VcpuLimitExceeded", 400, CapacityError),
    ("VpcLimitExceeded", 400, CapacityError),
    ("DependencyViolation", 400, DependencyError),
    ("InvalidGroup.InUse", 400, DependencyError),
    ("InvalidVpcID.NotFound", 400, NotFoundError),
    ("InvalidInstanceID.NotFound", 400, NotFoundError),
    ("ParameterNotFound", 400, NotFoundError),
    ("Gateway.NotAttached", 400, NotFoundError),
    ("AuthFailure", 401, AuthError),
    ("UnauthorizedOperation", 403, AuthError),
    ("InvalidClientTokenId", 403, AuthError),
    ("InvalidParameterValue", 400, CloudError),
])
def test_codes_map_to_our_errors(code: str, status: int, expected: type) -> None:
    assert classify(code, status) is expected


def test_launch_token_is_stable_per_node_and_fits_ec2() -> None:
    a, b = ClusterRef("demo", "uuid-a"), ClusterRef("demo", "uuid-b")
    token = client_token(a, "demo-aws-m1")
    assert token == client_token(a, "demo-aws-m1") and len(token) <= 64 and token.isascii()
    assert len({token, client_token(a, "demo-aws-m2"), client_token(b, "demo-aws-m1")}) == 3
