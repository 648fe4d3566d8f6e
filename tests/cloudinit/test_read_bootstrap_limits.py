"""The sandbox's root supervisor reads every VM's user-data: it must stay small and fast on
whatever a client sends (nested YAML aliases once made 503 bytes into 72 M characters)."""

from __future__ import annotations

import time

from provisioner.cloudinit import AUTHORIZED_KEYS_LIMIT, READ_LIMIT, read_bootstrap

GOOD = ("#cloud-config\nssh_keys:\n  ed25519_private: host-key\n  ed25519_public: ssh-ed25519 AAAA host\n"
        "ssh_authorized_keys: [ssh-ed25519 AAAA cluster]\n")


def _laughs(levels: int = 9) -> str:
    lines = ["#cloud-config", "a: &a [\"" + "x" * 64 + "\"]"]
    for i in range(1, levels):
        previous, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    lines += ["ssh_keys: {ed25519_private: k, ed25519_public: ssh-ed25519 AAAA h}",
              f"ssh_authorized_keys: *{chr(ord('a') + levels - 1)}"]
    return "\n".join(lines) + "\n"


def test_good_user_data_is_read() -> None:
    boot = read_bootstrap(GOOD)
    assert boot is not None and boot.authorized_keys == ("ssh-ed25519 AAAA cluster",)


def test_yaml_aliases_are_refused_at_once() -> None:
    bomb = _laughs()
    assert len(bomb) < 1024
    started = time.monotonic()
    assert read_bootstrap(bomb) is None
    assert time.monotonic() - started < 0.5


def test_oversized_user_data_and_non_string_keys_are_refused() -> None:
    assert read_bootstrap(GOOD + "#" * READ_LIMIT) is None
    assert read_bootstrap(GOOD.replace("[ssh-ed25519 AAAA cluster]", "[{nested: map}]")) is None
    assert read_bootstrap(GOOD.replace("[ssh-ed25519 AAAA cluster]", "[12345]")) is None
    many = "[" + ", ".join(["ssh-ed25519 AAAA k"] * (AUTHORIZED_KEYS_LIMIT + 1)) + "]"
    assert read_bootstrap(GOOD.replace("[ssh-ed25519 AAAA cluster]", many)) is None
    assert read_bootstrap(GOOD.replace("[ssh-ed25519 AAAA cluster]", '["ssh-ed25519 AAAA k\\ncommand=id"]')) is None
