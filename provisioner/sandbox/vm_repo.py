"""An apt repository served on the sandbox's network, for VM hosts: a folder of files (a
flat repository: `Packages`, a signed `InRelease`, the key, the .deb files) served over HTTP
from the internet namespace, at a cloud's gateway address (vm_guest.gateway_of), so that a
guest's cloud-init installs Kubernetes from it as a real node does from pkgs.k8s.io (the
cluster spec's `kubernetes.apt_repository`). The server is a process of the internet
namespace: LocalHosts' close() ends it with the rest.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..retry import wait_until
from .hosts import LocalHosts, _end_recorded, _ip, _record
from .vm_guest import gateway_of

PORT = 8080


@dataclass
class RepoServer:
    """Serves `directory` at http://<gateway of `group`>:PORT/ inside `hosts`' network."""

    hosts: LocalHosts
    group: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return gateway_of(self.hosts.groups[self.group].network)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{PORT}/"

    def start(self) -> str:
        """Start serving; return the repository's URL once it answers."""
        _ip(self.hosts.inet, "addr", "replace", f"{self.address}/32", "dev", self.hosts.groups[self.group].bridge)
        with open(self.hosts.directory / f"repo-{self.group}.log", "wb") as log:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.hosts.inet, sys.executable, "-m", "http.server", "--bind",
                 self.address, "--directory", str(self.directory), str(PORT)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        _record(self.hosts.directory / f"repo-{self.group}.pid", self.process.pid)

        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the repository server exited ({self.process.returncode})")
            try:  # the root namespace routes the pools into the internet namespace
                socket.create_connection((self.address, PORT), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(answers, what="the apt repository server", timeout_s=10.0, initial=0.02, maximum=0.2)
        return self.url

    def stop(self) -> None:
        _end_recorded(self.hosts.directory / f"repo-{self.group}.pid")
        if self.process is not None:
            self.process.wait(timeout=5)
