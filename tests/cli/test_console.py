"""The CLI's consoles: rich on a terminal, plain unwrapped lines into files and pipes."""

from __future__ import annotations

import io

import pytest
from rich.table import Table

from spsr_cli._common import AdaptiveConsole

LONG_PATH = "/tmp/" + "a-very-long-folder-name/" * 8 + "site-key.json"


def test_off_a_terminal_nothing_is_wrapped_at_any_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    out = io.StringIO()
    console = AdaptiveConsole(file=out)
    console.print(f"[green]answer key:[/] {LONG_PATH} (keep it; do not publish it with the folder)")
    table = Table(title="scores")
    table.add_column("model")
    table.add_column("path")
    table.add_row("psnr", LONG_PATH)
    console.print(table)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"answer key: {LONG_PATH} (keep it; do not publish it with the folder)"
    assert "\x1b[" not in out.getvalue()  # no colour codes in a file
    # The table: title, top rule, header, rule, one row holding the whole path, bottom rule.
    assert len(lines) == 1 + 6 and "psnr" in lines[5] and LONG_PATH in lines[5]


def test_on_a_terminal_rich_fits_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    console = AdaptiveConsole(file=io.StringIO(), force_terminal=True, width=40)
    console.print("word " * 30)
    assert console.is_terminal and not console.soft_wrap
    assert max(len(line) for line in console.file.getvalue().splitlines()) <= 40
