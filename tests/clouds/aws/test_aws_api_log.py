"""Every attempt botocore makes is one line of the command log: operation, HTTP status,
duration and AWS's request id; botocore's own retries show as lines of their own."""

from __future__ import annotations

import re

from provisioner.clouds.aws import Provider
from provisioner.sandbox.aws_fault_proxy import Fault, FaultProxy

from .conftest import REGION, SECRET, ZONE, make_target

API = re.compile(r"^\S+Z api   aws (\w+\.\w+) status=(\d{3}) ms=(\d+)(?: error=(\S+))? request_id=(\S+)", re.M)


def test_each_api_call_is_logged_with_operation_status_duration_and_request_id(
        aws_env: FaultProxy, command_log) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    p.ensure_network(t)
    text = command_log()
    calls = API.findall(text)
    operations = {c[0] for c in calls}
    assert {"ec2.DescribeVpcs", "ec2.CreateVpc"} <= operations
    assert all(status == "200" and request_id for _, status, _, _, request_id in calls)
    assert len(calls) == text.count(" api   aws ")  # every API line has all its fields
    assert SECRET not in text and "AKIACASTTEST" not in text  # no header, no signature, no credential


def test_botocore_retries_are_logged_with_the_reason_and_the_wait(aws_env: FaultProxy, command_log) -> None:
    aws_env.faults.append(Fault("ServiceUnavailable", 503, frozenset({"DescribeVpcs"}), times=2))
    Provider(REGION, ZONE).ensure_network(make_target(), dry_run=True)
    text = command_log()
    statuses = [(status, error) for op, status, _, error, _ in API.findall(text) if op == "ec2.DescribeVpcs"]
    assert statuses[:3] == [("503", "ServiceUnavailable"), ("503", "ServiceUnavailable"), ("200", "")]
    retries = re.findall(r" retry aws ec2\.DescribeVpcs attempt=(\d) after status=503 error=ServiceUnavailable, "
                         r"waited ms=\d+", text)
    assert retries == ["2", "3"]
