"""Checks of text cast renders into files and commands on the nodes (wg0.conf, cloud-config,
/etc/hosts): one line per field, and addresses exactly as cast writes them. What a cloud, a
node or a state file returns passes these before it is rendered anywhere.
"""

from __future__ import annotations

import ipaddress

from .errors import InputError


def is_node_address(value: object, *, public: bool = False) -> bool:
    """Whether `value` is an address cast renders: IPv4, or (when `public`) an IPv6 global
    unicast address; in canonical form, with no scope id (`%...`: Python's ipaddress accepts
    one, newlines included) and no whitespace."""
    if not isinstance(value, str) or not value or "%" in value or value != value.strip():
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if str(address) != value:
        return False
    return address.version == 4 or (public and address.is_global)


def one_line(field: str, value: str) -> str:
    """`value` when it holds no CR or LF (a line break would start a new line, a new key or a
    new section in the rendered file); InputError naming the field otherwise."""
    if "\n" in value or "\r" in value:
        raise InputError(field, "contains a line break (CR or LF)", "one line of text")
    return value
