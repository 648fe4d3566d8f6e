"""What cast prints, on a terminal or through a pipe: rich consoles that never cut a value
when they do not write to a terminal, and text from elsewhere (clouds, nodes, the user's
files) made literal. rich is imported on first use, so `cast --help` stays fast."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

# Through a pipe a line is as long as its text: rich needs some width, so one no line reaches.
PIPE_WIDTH = 1_000_000
# C0 controls but tab and newline, DEL, and C1 controls (U+009B alone starts an escape sequence).
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
LINE_BREAKS = re.compile("[\r\n]+")


def console(stderr: bool = False) -> Console:
    """A rich console on stdout (data) or stderr (progress, warnings). On a terminal it fits
    the terminal; otherwise no line is wrapped or cut and a table is as wide as its values
    (colours as rich decides: none, unless FORCE_COLOR)."""
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False)
    if not is_tty(out):
        out = Console(stderr=stderr, highlight=False, width=PIPE_WIDTH, soft_wrap=True)
    return out


def is_tty(out: Console) -> bool:
    """Whether `out` writes to a real terminal. (rich takes a pipe for one under FORCE_COLOR or
    TTY_COMPATIBLE=1: right for colours, wrong for a width or a live view.)"""
    try:
        return bool(out.file.isatty())
    except ValueError:  # closed
        return False


def clean(text: Any, *, one_line: bool = False) -> str:
    """`text` as a string without control characters (ESC, CR, the other C0 and C1 codes;
    tab and newline stay), so nothing from elsewhere can move the cursor or recolour the
    terminal. With one_line, line breaks become spaces and the ends are trimmed."""
    text = str(text)
    if one_line:
        return CONTROL.sub("", LINE_BREAKS.sub(" ", text)).strip()
    return CONTROL.sub("", text)


def literal(text: Any, style: str = "", *, one_line: bool = False) -> Text:
    """`text` as rich Text printed as it is: brackets are never markup, controls stripped."""
    from rich.text import Text

    return Text(clean(text, one_line=one_line), style=style)


def whole(table: Table) -> Table:
    """`table` with every column folding a value too long for a narrow terminal onto more
    lines rather than cutting it off with an ellipsis."""
    for column in table.columns:
        column.overflow = "fold"
    return table
