"""The Python environment is installed from a lock with hashes: requirements/lock.txt (made by
scripts/lock.sh) pins every requirement pyproject.toml names, at a version its specifier allows,
with a SHA-256 for each file; scripts/setup.sh installs only from it, with --require-hashes, and
builds the editable install from the locked setuptools and wheel."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"
SETUP = REPO / "scripts" / "setup.sh"
PYTHON_311 = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux",
              "platform_system": "Linux", "platform_python_implementation": "CPython",
              "implementation_name": "cpython", "os_name": "posix", "platform_machine": "x86_64"}


def lock_entries() -> list[tuple[Requirement, list[str]]]:
    """Each entry of the lock (its continued lines joined): the pinned requirement and its hashes."""
    joined = re.sub(r"\\\n", " ", LOCK.read_text(encoding="utf-8"))
    entries = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not line:
            continue
        requirement, *hashes = re.split(r"\s+--hash=", line)
        entries.append((Requirement(requirement), hashes))
    return entries


def declared() -> list[Requirement]:
    """What pyproject.toml asks for: dependencies, the test extra, and the build requirements."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = (project["project"]["dependencies"] + project["project"]["optional-dependencies"]["test"]
             + project["build-system"]["requires"])
    return [Requirement(n) for n in names]


def test_every_lock_entry_is_pinned_with_sha256_hashes() -> None:
    entries = lock_entries()
    assert len(entries) > 50
    for requirement, hashes in entries:
        (spec,) = requirement.specifier
        assert spec.operator == "==", requirement
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), requirement


def test_every_declared_requirement_is_locked_at_an_allowed_version() -> None:
    locked: dict[str, list[Version]] = {}
    for requirement, _ in lock_entries():
        if requirement.marker is None or requirement.marker.evaluate(PYTHON_311):
            locked.setdefault(canonicalize_name(requirement.name), []).append(
                Version(next(iter(requirement.specifier)).version))
    for requirement in declared():
        versions = locked.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement} is not in {LOCK.relative_to(REPO)}: run scripts/lock.sh"
        assert len(versions) == 1 and requirement.specifier.contains(versions[0], prereleases=True), \
            f"{requirement}: the lock has {versions}; run scripts/lock.sh"
    assert "pip" in locked, "pip itself comes from the lock"


def test_setup_installs_only_from_the_lock_with_hashes() -> None:
    lines = [line for line in SETUP.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]
    commands = [c for line in lines for c in re.findall(r"(?:/pip|-m pip) install[^;&|}]*", line)]
    assert len(commands) >= 2
    assert any("--require-hashes -r requirements/lock.txt" in command for command in commands)
    for command in commands:
        assert "--require-hashes" in command or ("--no-deps" in command and "--no-build-isolation" in command
                                                 and command.rstrip().endswith("-e .")), command
