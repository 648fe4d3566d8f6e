"""Each cloud's user-data limit and encoding: what cast renders fits every cloud, goes out in
the form its API takes, and a user-data over a limit is refused naming the cloud, the size
and the limit (and no secret)."""

from __future__ import annotations

import base64

import pytest

from provisioner.cloudinit import READ_LIMIT, UserDataTooLargeError, encode_user_data, user_data_limit
from provisioner.clouds import provider_class
from provisioner.errors import ConfigError, InputError
from provisioner.keys import KeyPair
from provisioner.regions import CLOUDS, ROLES

from .conftest import Render


def test_every_cloud_has_a_limit_and_the_sandbox_reads_up_to_the_largest() -> None:
    limits = [user_data_limit(cloud) for cloud in CLOUDS]
    assert all(limit > 0 for limit in limits)
    assert max(limits) == READ_LIMIT


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("role", ROLES)
def test_rendered_user_data_fits_and_encodes_as_the_cloud_wants(render: Render, role: str, cloud: str) -> None:
    text = render(role, cloud)
    assert len(text.encode()) <= user_data_limit(cloud)
    sent = encode_user_data(cloud, text)
    if provider_class(cloud).user_data_base64:  # Azure's customData; its limit counts the decoded bytes
        assert sent != text
        assert base64.b64decode(sent, validate=True).decode() == text
    else:
        assert sent == text
    assert provider_class(cloud).user_data_base64 == (cloud == "azure")


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_limit_is_the_last_byte_allowed(cloud: str) -> None:
    head = "#cloud-config\n# "
    limit = user_data_limit(cloud)
    at_limit = head + "x" * (limit - len(head))
    encode_user_data(cloud, at_limit)
    with pytest.raises(UserDataTooLargeError) as raised:
        encode_user_data(cloud, at_limit + "x")
    message = str(raised.value)
    assert cloud in message and str(limit + 1) in message and str(limit) in message
    assert isinstance(raised.value, ConfigError)


def test_multibyte_text_is_measured_in_bytes() -> None:
    limit = user_data_limit("aws")
    with pytest.raises(UserDataTooLargeError):
        encode_user_data("aws", "é" * (limit // 2 + 1))  # fewer characters than the limit, more bytes


def test_render_refuses_user_data_over_the_clouds_limit(render: Render, host_key: KeyPair) -> None:
    # A long authorized key pushes the user-data past AWS's 16 KB but not GCP's 256 KB.
    huge_key = "ssh-ed25519 " + "A" * user_data_limit("aws")
    assert len(render("worker", "gcp", authorized_key=huge_key)) > user_data_limit("aws")
    with pytest.raises(UserDataTooLargeError) as raised:
        render("worker", "aws", authorized_key=huge_key)
    assert raised.value.cloud == "aws" and raised.value.limit == user_data_limit("aws")
    private_lines = host_key.private.decode().splitlines()[1:-1]
    assert not any(line in str(raised.value) for line in private_lines)


def test_unknown_cloud_and_role_are_refused(render: Render) -> None:
    with pytest.raises(InputError, match="cloud"):
        encode_user_data("linode", "#cloud-config\n")
    with pytest.raises(InputError, match="role"):
        render("etcd", "aws", node="demo-aws-e1")
    with pytest.raises(InputError, match="cloud"):
        render("worker", "linode", node="demo-li-w1")
