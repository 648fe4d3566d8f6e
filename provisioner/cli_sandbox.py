"""`cast sandbox up|down|env|status`: the emulated clouds on this machine (see provisioner/sandbox)."""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import emit_json, output_option, store_of
from .errors import CastError
from .terminal import console, literal


@click.group("sandbox")
def sandbox_group() -> None:
    """Emulated clouds on this machine (Linux, root): AWS (moto), GCP, Azure and DigitalOcean
    APIs on loopback whose VMs boot as network-namespace hosts with their own sshd and
    WireGuard, with delay lines between clouds. cast reaches it only through the SDKs'
    endpoint settings: `eval "$(cast sandbox env)"`."""


def _sandbox_dir(ctx: click.Context) -> Path:
    from .sandbox.control import sandbox_dir

    return sandbox_dir(store_of(ctx).root)


@sandbox_group.command("up")
@click.option("--region", default="us-east", show_default=True, help="Whose expected RTTs the delay lines use.")
@click.option("--api-delay-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Hold every cloud API request this long before it is answered, like a real cloud's API.")
@click.option("--boot-delay-s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="A VM answers SSH this long after its create was accepted, like a real VM booting.")
@click.option("--pool", default="198.18.0.0/15", show_default=True, metavar="CIDR",
              help="The block the emulated clouds' public IPs come from (a /24 each); refused when this "
              "machine uses an address in it.")
@click.option("--pacing", default="flat", show_default=True, metavar="PROFILE",
              help="flat (the two delays above), or cloud / cloud:F: each cloud's measured latencies per kind "
              "of call, F times faster (default 10).")
@click.option("--hosts", "hosts", type=click.Choice(["namespace", "vm"]), default="namespace", show_default=True,
              help="What a VM boots as: a network-namespace host (fast), or a QEMU virtual machine running the "
              "VM's own cloud-init on a real kernel (KVM where it works, else emulation: minutes per boot; the "
              "guest image is built once, in about 3 minutes).")
@click.pass_context
def sandbox_up(ctx: click.Context, region: str, api_delay_ms: float, boot_delay_s: float, pool: str,
               pacing: str, hosts: str) -> None:
    """Start the sandbox in the background (no-op when it runs with the same settings)."""
    from .errors import InputError
    from .regions import load_region_map
    from .sandbox import control
    from .sandbox.pacing import parse

    regions = load_region_map()
    if region not in regions.regions:
        raise InputError("--region", f"unknown region {region!r}", ", ".join(regions.regions))
    parse(pacing)  # InputError (exit 2, nothing started) for a profile that does not exist

    def say(message: str) -> None:
        console(stderr=True).print(literal(message))

    if hosts == "vm" and control.read_state(_sandbox_dir(ctx)) is None:
        control.choose_pools(pool, say)  # bad input: refused before the image is built, nothing written
        _ensure_guest_image(_sandbox_dir(ctx))
    state = control.start(_sandbox_dir(ctx), region, api_delay_ms=api_delay_ms, boot_delay_s=boot_delay_s,
                          pool=pool, pacing=pacing, hosts=hosts,
                          say=say)
    paced = ""
    if state.get("pacing", "flat") != "flat":
        paced = f", the clouds' own latencies ({state['pacing']})"
    elif state.get("api_delay_ms") or state.get("boot_delay_s"):
        paced = (f", API calls held {state['api_delay_ms']:g} ms, "
                 f"VMs answer SSH {state['boot_delay_s']:g} s after create")
    if state.get("hosts") == "vm":
        paced += f", VMs boot as QEMU guests ({state.get('accel')})"
    console(stderr=True).print(literal(
        f"sandbox up (pid {state['pid']}, delays of {state['region']}{paced}, public IPs from {_pools_told(state)}); "
        f'point cast at it with: eval "$(cast sandbox env)"'
    ))


def _pools_told(state: dict[str, object]) -> str:
    """The block the sandbox's public IPs come from, and its /24s when not the block's first four
    (those held something this machine uses)."""
    from .sandbox.pools import pools_of

    block, pools = str(state.get("pool")), state.get("pools")
    if not isinstance(pools, dict) or pools == pools_of(block):
        return block
    return f"{block}: {', '.join(str(p) for p in pools.values())}"


def _ensure_guest_image(directory: Path) -> None:
    """Build the VM hosts' guest image when its recipe has none yet (needs root and the Debian
    mirror), saying so: the supervisor then finds it cached."""
    import os
    import time

    from .sandbox import vm_guest, vm_image

    if os.geteuid() != 0:
        raise CastError("the sandbox needs root: it makes network namespaces for its VMs")
    missing = vm_image.missing_tools() + vm_guest.missing_tools()
    if missing:
        raise CastError(f"--hosts vm needs {', '.join(sorted(set(missing)))}: apt-get install qemu-system-x86 "
                        "qemu-utils mmdebstrap genisoimage")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cache = vm_image.image_cache(directory)
    if not (cache / vm_image.recipe_key() / "recipe.json").exists():
        started = time.monotonic()
        with console(stderr=True).status("building the VM guest image from Debian packages (once per recipe)"):
            image = vm_image.ensure_image(cache)
        console(stderr=True).print(literal(f"guest image {image.key} built in {time.monotonic() - started:.0f}s"))


@sandbox_group.command("down")
@click.pass_context
def sandbox_down(ctx: click.Context) -> None:
    """Stop the sandbox and remove every host, namespace and emulator it started."""
    from .sandbox import control

    stopped = control.stop(_sandbox_dir(ctx))
    console(stderr=True).print("sandbox down" if stopped else "no sandbox was running (leftovers removed)")


@sandbox_group.command("env")
@output_option
@click.pass_context
def sandbox_env(ctx: click.Context, output: str) -> None:
    """The environment that points cast at the sandbox, as shell `export` lines (keys checked,
    values quoted: control.shell_exports)."""
    from .sandbox import control

    state = control.read_state(_sandbox_dir(ctx))
    if state is None:
        raise CastError("no sandbox is running: start it with `cast sandbox up`")
    if output == "json":
        emit_json(state["env"])
        return
    for line in control.shell_exports(state["env"]):
        click.echo(line)


@sandbox_group.command("status")
@output_option
@click.pass_context
def sandbox_status(ctx: click.Context, output: str) -> None:
    """Whether the sandbox runs, its endpoints, and the VMs each emulated cloud runs."""
    from .sandbox import control

    state = control.read_state(_sandbox_dir(ctx))
    if state is None:
        if output == "json":
            emit_json({"running": False})
        else:
            console().print("sandbox: not running")
        return
    vms = control.vm_hosts(state)
    if output == "json":
        emit_json({"running": True, "pid": state["pid"], "region": state["region"], "env": state["env"], "vms": vms,
                   "dns": state.get("dns")})
        return
    out = console()
    out.print(literal(f"sandbox: running (pid {state['pid']}, up {control.uptime(state):.0f}s, "
                      f"delays of {state['region']}, public IPs from {state.get('pool')})"))
    for key, value in state["env"].items():
        if key.endswith("ENDPOINT") or key.endswith("ENDPOINT_URL"):
            out.print(literal(f"  {key}={value}"))
    for cloud, listed in vms.items():
        out.print(literal(f"  {cloud}: {len(listed) if isinstance(listed, list) else listed} VMs"))
    if state.get("dns"):
        out.print(literal(f"  DNS server (the DNS emulators' zones): {state['dns']} port 53"))
