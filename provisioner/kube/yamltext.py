"""YAML text for files people read: keys in the order written, block style, and multi-line
strings as literal blocks (`|`), so an embedded JSON or patch reads as it will on the node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: Mapping[str, Any] | list[Any]) -> str:
    """One YAML document as text, keys in insertion order."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=120)


def dump_all(documents: list[Mapping[str, Any]], header: str = "") -> str:
    """Several documents separated by `---`, the first opened by `header` (comment lines,
    `# ` added). The comments belong to the first document: a stream that opened with a
    document holding only comments would make kubeadm reject the file (a document without
    apiVersion and kind)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    text = "\n".join(lines) + "\n" if lines else ""
    return text + "---\n".join(dump(d) for d in documents)
