"""google-cloud-compute's message types as cast imports them (provisioner.clouds.gcp_types):
only the messages of the services cast calls, in a cached copy of the SDK's own module, and
the SDK's module where that copy cannot be made."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.clouds import gcp_types

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: google-cloud-compute the way the registry opens GCP, then what it got.
PROBE = """
import json, re, sys
from pathlib import Path
from provisioner.clouds import load_cloud
load_cloud("gcp")
from google.cloud import compute_v1
compute = sys.modules["google.cloud.compute_v1.types.compute"]
used = set()
for path in Path("provisioner/clouds").glob("*.py"):
    used.update(re.findall(r"compute_v1\\.([A-Z]\\w*)", path.read_text()))
network = compute_v1.Network(name="n", auto_create_subnetworks=False)
print(json.dumps({"file": compute.__file__, "messages": len(compute.__all__),
                  "missing": sorted(n for n in used if not hasattr(compute_v1, n)),
                  "json": type(network).to_json(network), "done": compute_v1.Operation.Status.DONE.name,
                  "has_unused": hasattr(compute, "AcceleratorType")}))
"""


def probe(cache: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, gcp_types.CACHE_ENV: cache})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cast_gets_only_the_messages_of_its_services_from_a_cached_copy(tmp_path):
    first = probe(str(tmp_path))
    assert Path(first["file"]).is_relative_to(tmp_path)  # the copy, not the SDK's file
    assert first["missing"] == []  # every message cast's code names is there
    assert not first["has_unused"]
    assert 100 < first["messages"] < 1000  # of the SDK's ~2,000
    assert json.loads(first["json"]) == {"name": "n", "autoCreateSubnetworks": False, "peerings": [],
                                         "subnetworks": []}
    assert first["done"] == "DONE"
    again = probe(str(tmp_path))  # the next start finds the copy made by the first
    assert again["file"] == first["file"]
    assert len(list(tmp_path.rglob("compute.py"))) == 1


def test_without_a_writable_cache_the_sdks_own_types_are_used(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    got = probe(str(blocked / "cache"))
    assert got["file"].endswith("google/cloud/compute_v1/types/compute.py")
    assert got["missing"] == [] and got["has_unused"]


def test_a_copy_others_could_have_written_is_not_run(tmp_path):
    made = Path(probe(str(tmp_path))["file"])
    made.chmod(0o666)  # as if another user could have put code in it
    got = probe(str(tmp_path))
    assert got["file"].endswith("google/cloud/compute_v1/types/compute.py")


def test_every_compute_client_cast_makes_is_of_a_service_in_the_list():
    named = set()
    for path in (ROOT / "provisioner").rglob("*.py"):
        named.update(re.findall(r"\"([A-Z][A-Za-z]+)Client\"", path.read_text()))
    services = {re.sub(r"(?<!^)(?=[A-Z])", "_", n).lower() for n in named}
    assert services and services <= set(gcp_types.SERVICES)


SDK_LIKE = '''# header
from __future__ import annotations

import proto  # type: ignore

__protobuf__ = proto.module(
    package="google.cloud.compute.v1",
    manifest={
        "A",
        "B",
        "C",
        "D",
    },
)


class A(proto.Message):
    b: "B" = proto.Field(proto.MESSAGE, number=1, message="B")


class B(proto.Message):
    class Kind(proto.Enum):
        X = 0
    kind: str = proto.Field(proto.ENUM, number=2, enum=Kind)
    c: MutableSequence["C"] = proto.RepeatedField(proto.MESSAGE, number=3,
        message="C",
    )


class C(proto.Message):
    n: int = proto.Field(proto.INT32, number=4)


class D(proto.Message):
    a: "A" = proto.Field(proto.MESSAGE, number=5, message="A")


__all__ = tuple(sorted(__protobuf__.manifest))
'''


def test_trim_keeps_what_the_roots_need_transitively_and_names_exactly_that_in_the_manifest():
    out = gcp_types.trim(SDK_LIKE, {"A"})
    assert re.findall(r"^class (\w+)", out, re.M) == ["A", "B", "C"]
    assert re.findall(r'^        "(\w+)",$', out, re.M) == ["A", "B", "C"]
    assert out.startswith("# header\n") and out.endswith("__all__ = tuple(sorted(__protobuf__.manifest))\n")
    assert 'package="google.cloud.compute.v1"' in out
    assert re.findall(r"^class (\w+)", gcp_types.trim(SDK_LIKE, {"C"}), re.M) == ["C"]


@pytest.mark.parametrize("text, roots", [(SDK_LIKE, {"Missing"}), ("class A(proto.Message):\n    pass\n", {"A"})],
                         ids=["unknown-root", "no-manifest"])
def test_trim_refuses_what_it_cannot_trim_faithfully(text, roots):
    with pytest.raises(ValueError):
        gcp_types.trim(text, roots)
