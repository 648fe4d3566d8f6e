"""A throw-away Kubernetes apt repository for the real-boot test: stand-in kubeadm, kubelet and
kubectl packages (dpkg-deb), a flat repository index, signed with a key made for this run
(gpg), so that the template's key, fingerprint, repository, install and hold steps run for real
against something the sandbox's network can reach."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import textwrap
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

_KUBEADM = """#!/bin/sh
# stand-in kubeadm: knows its version, pulls no images
case "$*" in
  "version -o short") echo v{version} ;;
  "config images pull"*) echo "stand-in kubeadm: no images to pull" ;;
  *) echo "stand-in kubeadm: $* is not supported" >&2; exit 1 ;;
esac
"""
_KUBELET = "#!/bin/sh\n# stand-in kubelet: runs, does nothing\nexec sleep infinity\n"
_KUBELET_UNIT = """[Unit]
Description=stand-in kubelet

[Service]
ExecStart=/usr/bin/kubelet
Restart=always

[Install]
WantedBy=multi-user.target
"""
_KUBECTL = "#!/bin/sh\necho 'Client Version: v{version}'\n"


@dataclass(frozen=True)
class StandInRepo:
    directory: Path
    version: str  # the Kubernetes version the stand-in kubeadm reports (without the v)
    key_url_path: str  # the key's file name in the repository
    fingerprint: str


def _run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def _deb(work: Path, out: Path, package: str, version: str, files: dict[str, tuple[str, int]]) -> Path:
    root = work / package
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(textwrap.dedent(f"""\
        Package: {package}
        Version: {version}
        Architecture: amd64
        Maintainer: cast tests <tests@cast.invalid>
        Description: stand-in {package} for cast's real-boot test
        """))
    for path, (content, mode) in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)
    deb = out / f"{package}_{version}_amd64.deb"
    _run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb))
    return deb


def _stanza(deb: Path, repo: Path) -> str:
    control = _run("dpkg-deb", "-f", str(deb)).stdout.strip()
    data = deb.read_bytes()
    return (f"{control}\nFilename: ./{deb.relative_to(repo)}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")


def build(work: Path, version: str = "1.36.0") -> StandInRepo:
    """The repository under `work`/repo (and a gpg home under `work`/gnupg)."""
    repo, debs, gnupg = work / "repo", work / "debs", work / "gnupg"
    for d in (repo, debs, gnupg):
        d.mkdir(parents=True, mode=0o700)
    package_version = f"{version}-1.1"
    made = [
        _deb(debs, repo, "kubeadm", package_version, {"/usr/bin/kubeadm": (_KUBEADM.format(version=version), 0o755)}),
        _deb(debs, repo, "kubelet", package_version, {"/usr/bin/kubelet": (_KUBELET, 0o755),
                                                      "/lib/systemd/system/kubelet.service": (_KUBELET_UNIT, 0o644)}),
        _deb(debs, repo, "kubectl", package_version, {"/usr/bin/kubectl": (_KUBECTL.format(version=version), 0o755)}),
    ]
    packages = "\n".join(_stanza(d, repo) for d in made).encode()
    (repo / "Packages").write_bytes(packages)
    (repo / "Packages.gz").write_bytes(gzip.compress(packages))
    sums = "".join(f" {hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_size} {p.name}\n"
                   for p in (repo / "Packages", repo / "Packages.gz"))
    (repo / "Release").write_text(f"Origin: cast-test\nLabel: cast-test\nArchitectures: amd64\n"
                                  f"Date: {formatdate(usegmt=True)}\nSHA256:\n{sums}")
    gpg = ("gpg", "--homedir", str(gnupg), "--batch", "--pinentry-mode", "loopback", "--passphrase", "")
    _run(*gpg, "--quick-gen-key", "cast stand-in repository <repo@cast.invalid>", "ed25519", "sign", "1d")
    listed = _run(*gpg, "--with-colons", "--list-keys").stdout
    fingerprint = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))
    (repo / "Release.key").write_text(_run(*gpg, "--armor", "--export", fingerprint).stdout)
    _run(*gpg, "--yes", "--clearsign", "-o", str(repo / "InRelease"), str(repo / "Release"))
    _run(*gpg, "--yes", "-abs", "-o", str(repo / "Release.gpg"), str(repo / "Release"))
    _run("gpgconf", "--homedir", str(gnupg), "--kill", "all")
    return StandInRepo(repo, version, "Release.key", fingerprint)
