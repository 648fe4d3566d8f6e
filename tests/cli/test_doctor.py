"""`cast doctor` as a user runs it: the real command line in a child process, against the four
emulators on loopback (no root), and with no credentials at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.sandbox.aws_moto import MotoSandbox
from provisioner.sandbox.azure_emulator import AzureEmulator
from provisioner.sandbox.do_emulator import DigitalOceanEmulator
from provisioner.sandbox.gcp_emulator import GcpEmulator

AWS_SECRET = "doctor-aws-secret-never-printed"
DO_TOKEN = "dop_v1_doctor-token-never-printed"
CLOUDS = ["aws", "gcp", "azure", "digitalocean"]


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, str]]:
    """The four emulators, and the environment that points cast at them."""
    gcp, azure = GcpEmulator().start(), AzureEmulator().start()
    do = DigitalOceanEmulator(token=DO_TOKEN)
    do.start()
    with MotoSandbox(["us-east-1"], access_key="AKIADOCTORTEST", secret_key=AWS_SECRET) as moto:
        yield {
            "AWS_ENDPOINT_URL": moto.endpoint,
            "AWS_ACCESS_KEY_ID": "AKIADOCTORTEST",
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "CAST_GCP_ENDPOINT": gcp.url,
            "CAST_GCP_PROJECT": "cast-doctor",
            "CAST_AZURE_ENDPOINT": azure.url,
            "CAST_DIGITALOCEAN_ENDPOINT": do.url,
            "DIGITALOCEAN_TOKEN": DO_TOKEN,
        }
    for emulator in (gcp, azure, do):
        emulator.stop()


def bare_env(home: Path) -> dict[str, str]:
    """This machine's environment without any cloud's credentials, endpoint or config: HOME
    is an empty directory, so no shared credential file is found either."""
    prefixes = ("AWS_", "AZURE_", "GOOGLE_", "CLOUDSDK_", "CAST_", "DIGITALOCEAN_", "GCE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), AWS_EC2_METADATA_DISABLED="true", NO_GCE_CHECK="true", COLUMNS="250")
    return env


def doctor(env: dict[str, str], state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioner", "--state-dir", str(state), "doctor", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_every_emulated_cloud_is_usable_with_its_source_and_sandbox_endpoint(emulators, tmp_path):
    env = {**bare_env(tmp_path / "home"), **emulators}
    result = doctor(env, tmp_path / "state", "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["usable"] is True
    clouds = {c["cloud"]: c for c in report["clouds"]}
    assert list(clouds) == CLOUDS
    assert all(c["usable"] and c["sandbox"] and c["fix"] is None for c in clouds.values())
    assert clouds["aws"]["credentials"] == "env"  # botocore's own name of the source
    assert clouds["aws"]["endpoint"] == emulators["AWS_ENDPOINT_URL"]
    assert clouds["aws"]["detail"] == "EC2 answered in us-east-1"
    assert clouds["gcp"]["endpoint"] == emulators["CAST_GCP_ENDPOINT"]
    assert "cast-doctor" in clouds["gcp"]["detail"]
    assert clouds["azure"]["endpoint"] == emulators["CAST_AZURE_ENDPOINT"]
    assert clouds["digitalocean"]["credentials"] == "DIGITALOCEAN_TOKEN (environment)"
    assert clouds["digitalocean"]["endpoint"] == emulators["CAST_DIGITALOCEAN_ENDPOINT"]
    assert report["sandbox"] == {"running": False}
    assert {c["name"] for c in report["local"]} >= {"root", "ip", "wireguard-go", "wg", "/usr/sbin/sshd", "ping",
                                                     "tun", "netns"}
    assert not (tmp_path / "state").exists()  # a check writes nothing

    table = doctor(env, tmp_path / "state")
    assert table.returncode == 0, table.stderr
    assert "(sandbox)" in table.stdout and "every cloud asked about is usable" in table.stdout
    for output in (result.stdout + result.stderr, table.stdout + table.stderr):
        assert AWS_SECRET not in output and DO_TOKEN not in output


def test_missing_credentials_say_what_is_missing_and_what_to_do(tmp_path):
    result = doctor(bare_env(tmp_path / "home"), tmp_path / "state", "--output", "json")
    assert result.returncode == 1, result.stderr
    clouds = {c["cloud"]: c for c in json.loads(result.stdout)["clouds"]}
    assert not any(c["usable"] for c in clouds.values())
    assert clouds["aws"]["credentials"] is None and "no credentials found" in clouds["aws"]["detail"]
    assert "AWS_PROFILE" in clouds["aws"]["fix"] and "aws configure" in clouds["aws"]["fix"]
    assert "application-default" in clouds["gcp"]["detail"] and "gcloud auth" in clouds["gcp"]["fix"]
    assert "AZURE_SUBSCRIPTION_ID is not set" in clouds["azure"]["detail"]
    assert "az login" in clouds["azure"]["fix"]
    assert clouds["digitalocean"]["detail"] == "DIGITALOCEAN_TOKEN is not set"
    assert all('eval "$(cast sandbox env)"' in c["fix"] for c in clouds.values())
    assert clouds["aws"]["endpoint"] == "https://ec2.us-east-1.amazonaws.com" and not clouds["aws"]["sandbox"]


def test_one_unusable_cloud_fails_the_check_and_only_it_is_named(emulators, tmp_path):
    env = {**bare_env(tmp_path / "home"), **emulators, "DIGITALOCEAN_TOKEN": "dop_v1_a-wrong-token"}
    result = doctor(env, tmp_path / "state", "aws", "digitalocean")
    assert result.returncode == 1
    assert "refused (HTTP 401)" in result.stdout and "dop_v1_a-wrong-token" not in result.stdout
    assert "aws: EC2 answered" in result.stdout
    assert "to fix" in result.stdout.split("digitalocean:", 2)[-1]


def test_an_emulator_that_does_not_answer_is_reported_within_the_timeout(tmp_path):
    import socket

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        env = {**bare_env(tmp_path / "home"), "CAST_DIGITALOCEAN_ENDPOINT": url, "DIGITALOCEAN_TOKEN": DO_TOKEN}
        result = doctor(env, tmp_path / "state", "digitalocean", "--timeout", "1", "--output", "json")
    assert result.returncode == 1
    (access,) = json.loads(result.stdout)["clouds"]
    assert access["sandbox"] and not access["usable"]
    assert "cast sandbox up" in access["fix"]


def test_an_unknown_cloud_is_bad_input_naming_the_allowed_ones(tmp_path):
    result = doctor(bare_env(tmp_path / "home"), tmp_path / "state", "nosuch")
    assert result.returncode == 2
    assert "'nosuch' is not one of 'aws', 'gcp', 'azure', 'digitalocean'" in result.stderr
    assert not (tmp_path / "state").exists()
