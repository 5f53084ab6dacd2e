"""The checked-in completions/, man/ and docs/reference/cli/ match the live CLI, render, and parse.

When this fails after you changed a command: run ``python -m spsr_cli.docgen`` and commit
completions/, man/ and docs/reference/cli/.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spsr_cli import docgen
from spsr_cli.app import app

REPO = Path(__file__).resolve().parents[2]
FIX = f"run `{docgen.REGENERATE_COMMAND}` and commit completions/, man/ and docs/reference/cli/"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return docgen.generate()


@pytest.fixture(scope="module")
def man_pages() -> list[Path]:
    pages = sorted((REPO / docgen.MAN_DIR).glob("spsr*.1"))
    assert pages, f"no man pages under {REPO / docgen.MAN_DIR}: {FIX}"
    return pages


def _diff(old: Path, new: Path, rel: str, limit: int = 30) -> str:
    before = old.read_text(encoding="utf-8").splitlines() if old.is_file() else []
    lines = difflib.unified_diff(
        before, new.read_text(encoding="utf-8").splitlines(), rel, f"{rel} (fresh)", lineterm=""
    )
    return "\n".join(list(lines)[:limit])


def test_checked_in_files_are_current(generated: dict[str, str], tmp_path: Path) -> None:
    docgen.write_files(tmp_path, generated)
    fresh = docgen.owned_files(tmp_path)
    assert fresh == sorted(generated)
    stale = [
        rel
        for rel in fresh
        if not (REPO / rel).is_file() or (REPO / rel).read_bytes() != (tmp_path / rel).read_bytes()
    ]
    extra = [rel for rel in docgen.owned_files(REPO) if rel not in generated]
    diffs = "\n".join(_diff(REPO / rel, tmp_path / rel, rel) for rel in stale[:3])
    assert not stale and not extra, (
        f"generated files are stale: {FIX}.\n"
        f"  out of date or missing: {stale}\n  no longer generated: {extra}\n{diffs}"
    )


def test_check_mode_names_stale_files(generated: dict[str, str], tmp_path: Path) -> None:
    docgen.write_files(tmp_path, generated)
    assert docgen.stale_files(tmp_path, generated) == []
    (tmp_path / "man" / "spsr-upscale.1").write_text("old\n", encoding="utf-8")
    (tmp_path / "man" / "spsr-removed.1").write_text("old\n", encoding="utf-8")
    (tmp_path / "completions" / "spsr.zsh").unlink()
    cli_docs = tmp_path / "docs" / "reference" / "cli"
    (cli_docs / "spsr-eval.md").write_text("old\n", encoding="utf-8")
    (cli_docs / "spsr-removed.md").write_text("old\n", encoding="utf-8")
    (cli_docs / "index.md").write_text("hand-written\n", encoding="utf-8")  # not the generator's
    assert docgen.stale_files(tmp_path, generated) == [
        "completions/spsr.zsh (missing)",
        "docs/reference/cli/spsr-eval.md (out of date)",
        "man/spsr-upscale.1 (out of date)",
        "docs/reference/cli/spsr-removed.md (no longer generated)",
        "man/spsr-removed.1 (no longer generated)",
    ]
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 1
    assert sorted(docgen.write_files(tmp_path, generated)) == [
        "completions/spsr.zsh",
        "docs/reference/cli/spsr-eval.md",
        "docs/reference/cli/spsr-removed.md",
        "man/spsr-removed.1",
        "man/spsr-upscale.1",
    ]
    assert not (tmp_path / "man" / "spsr-removed.1").exists()
    assert not (cli_docs / "spsr-removed.md").exists()
    assert (cli_docs / "index.md").read_text(encoding="utf-8") == "hand-written\n"
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 0


def test_output_is_deterministic_and_portable(generated: dict[str, str]) -> None:
    assert docgen.generate() == generated
    machine_paths = {str(REPO), str(Path.home()), sys.prefix, os.getcwd(), "/tmp/"}
    for rel, text in generated.items():
        for path in (p for p in machine_paths if len(p) > 1):
            assert path not in text, f"{rel} embeds the machine path {path}"
        assert "\r" not in text and text.endswith("\n")


def test_one_man_page_per_command_with_every_option(generated: dict[str, str]) -> None:
    nodes = docgen.command_tree()
    pages = {rel for rel in generated if rel.startswith("man/")}
    assert pages == {f"man/{node.page}.1" for node in nodes}
    paths = {" ".join(node.path) for node in nodes}
    assert {"spsr", "spsr upscale", "spsr user-study-sheet build"} <= paths
    for node in nodes:
        text = generated[f"man/{node.page}.1"]
        for param in node.command.get_params(node.context):
            if param.param_type_name == "option" and not getattr(param, "hidden", False):
                for name in [*param.opts, *param.secondary_opts]:
                    assert name.replace("-", r"\-") in text, f"{node.page}.1 lacks {name}"
        for child in node.children:
            assert f"\\fB{node.page}-{child}".replace("-", r"\-") in text


def test_man_page_sections_from_docstrings(generated: dict[str, str]) -> None:
    upscale = generated["man/spsr-upscale.1"]
    assert ".SH NAME\nspsr\\-upscale \\- Upscale images\n" in upscale
    assert "\\fBspsr upscale\\fR [\\fIOPTIONS\\fR] \\fIINPUTS\\fR [\\fIOUTPUT\\fR]" in upscale
    # the docstring's Examples paragraph, verbatim, with roff-escaped hyphens
    assert ".SH EXAMPLES\n.RS 4\n.nf\nspsr upscale photo.png photo_x4.png\n" in upscale
    assert "\\fB\\-\\-tile\\fR \\fI<int>\\fR\nTile size in input pixels" in upscale
    assert "[default: 256]" in upscale and "[bold]" not in upscale
    build = generated["man/spsr-user-study-sheet-build.1"]
    assert "\\fB\\-\\-hr\\fR \\fIHR\\fR" in build  # a required option is in the synopsis
    assert "\\fBspsr\\fR(1), \\fBspsr\\-user\\-study\\-sheet\\fR(1)" in build
    assert "[default: random]" in build  # Rich's \[ escape undone, as --help shows it
    for rel, text in generated.items():
        if rel.startswith("man/"):
            assert all(ord(ch) < 128 for ch in text)  # non-ASCII goes as \[uXXXX]


def test_one_markdown_page_per_command_with_every_option(generated: dict[str, str]) -> None:
    nodes = docgen.command_tree()
    pages = {rel for rel in generated if rel.startswith(f"{docgen.CLI_DOCS_DIR}/")}
    assert pages == {f"{docgen.CLI_DOCS_DIR}/{node.page}.md" for node in nodes}
    for node in nodes:
        text = generated[f"{docgen.CLI_DOCS_DIR}/{node.page}.md"]
        assert text.splitlines()[2] == f"# {' '.join(node.path)}"
        options = [line for line in text.splitlines() if line.startswith("- `-")]
        for param in node.command.get_params(node.context):
            if param.param_type_name == "option" and not getattr(param, "hidden", False):
                for name in [*param.opts, *param.secondary_opts]:
                    assert any(
                        re.search(rf"[`, /]{re.escape(name)}[`, =]", line) for line in options
                    ), f"{node.page}.md lacks {name}"
        for child in node.children:  # a group links to its subcommands' pages
            assert f"]({node.page}-{child}.md)" in text


def test_markdown_page_sections_from_docstrings(generated: dict[str, str]) -> None:
    upscale = generated[f"{docgen.CLI_DOCS_DIR}/spsr-upscale.md"]
    assert upscale.startswith("<!-- Generated by `python -m spsr_cli.docgen`")
    assert "```text\nspsr upscale [OPTIONS] INPUTS [OUTPUT]\n```" in upscale
    # the docstring's Examples paragraph as a bash block (checked by test_readme_commands.py)
    assert "## Examples\n\n```bash\nspsr upscale photo.png photo_x4.png\n" in upscale
    assert "- `--tile <int>`: Tile size in input pixels (0 = whole image). \\[default: 256\\]" in upscale
    # outside code, <…> are entities (not HTML tags) and _ is escaped (not emphasis)
    assert "\\_x&lt;scale&gt; when writing into the input folder" in upscale
    assert "[bold]" not in upscale
    build = generated[f"{docgen.CLI_DOCS_DIR}/spsr-user-study-sheet-build.md"]
    synopsis = build.split("```text\n", 1)[1].split("\n", 1)[0]
    assert synopsis.startswith("spsr user-study-sheet build [OPTIONS] --hr HR")  # required option
    assert "## See also\n\n[`spsr`](spsr.md), [`spsr user-study-sheet`](spsr-user-study-sheet.md)" in build
    root = generated[f"{docgen.CLI_DOCS_DIR}/spsr.md"]
    assert "- [`spsr upscale`](spsr-upscale.md): Upscale images." in root


def test_markdown_escaping_keeps_code_and_neutralises_markup() -> None:
    assert docgen._md_inline("a *b* [c](d) <int> & `x*y <z>`") == (
        "a \\*b\\* \\[c\\](d) &lt;int&gt; &amp; `x*y <z>`"
    )
    assert docgen._md_inline("# not a heading") == "\\# not a heading"
    assert docgen._md_code("-m, --method NAME=DIR") == "`-m, --method NAME=DIR`"
    assert docgen._md_code("a `b`") == "`` a `b` ``"


def _renderer() -> list[str] | None:
    if shutil.which("groff"):
        return ["groff", "-man", "-Tutf8", "-ww"]
    if shutil.which("man"):
        return ["man", "-l"]
    return None


def test_man_pages_render(man_pages: list[Path]) -> None:
    renderer = _renderer()
    if renderer is None:
        pytest.skip("neither groff nor man is installed, so the pages cannot be rendered here")
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"}
    for page in man_pages:
        result = subprocess.run(
            [*renderer, str(page)], check=False, capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, f"{page.name}: {result.stderr}"
        assert not result.stderr.strip(), f"{page.name} renders with warnings:\n{result.stderr}"
        plain = re.sub(r".\x08", "", result.stdout)  # undo overstrike bold/underline
        name = page.stem
        assert "NAME" in plain and "SYNOPSIS" in plain and "OPTIONS" in plain, page.name
        assert f"{name} -" in plain.replace("\u2010", "-").replace("\u2212", "-"), page.name


def _shell_syntax(shell: str, *flags: str) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed, so its completion script cannot be parsed here")
    script = REPO / docgen.COMPLETIONS_DIR / f"spsr.{shell}"
    assert script.is_file(), f"{script} is missing: {FIX}"
    result = subprocess.run(
        [exe, *flags, str(script)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stderr, result.stderr


def test_bash_completion_is_valid_bash() -> None:
    _shell_syntax("bash", "-n")


def test_zsh_completion_is_valid_zsh() -> None:
    _shell_syntax("zsh", "-n")


def test_fish_completion_is_valid_fish() -> None:
    _shell_syntax("fish", "--no-execute")


def test_bash_completion_asks_spsr_with_typers_protocol(tmp_path: Path) -> None:
    """The bash script calls the typed program with the words; a stand-in spsr echoes them."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    fake = tmp_path / "spsr"
    fake.write_text('#!/bin/sh\necho "$_SPSR_COMPLETE"\necho "$COMP_CWORD:$(echo $COMP_WORDS)"\n')
    fake.chmod(0o755)
    script = REPO / docgen.COMPLETIONS_DIR / "spsr.bash"
    probe = (
        f"source {shlex.quote(str(script))}; complete -p spsr; COMP_WORDS=(spsr user-study-sheet b); "
        f'COMP_CWORD=2; _spsr_completion {shlex.quote(str(fake))}; printf "<%s>\\n" "${{COMPREPLY[@]}}"'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "complete -o default -F _spsr_completion spsr",
        "<complete_bash>",
        "<2:spsr user-study-sheet b>",
    ]


def test_spsr_answers_the_completion_protocol() -> None:
    """What the scripts ask spsr for, answered in-process: subcommands and options by prefix."""
    runner = CliRunner()

    def complete(words: str, cword: int) -> list[str]:
        env = {"_SPSR_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        result = runner.invoke(app, [], env=env, prog_name="spsr")
        assert result.exit_code == 0, result.output
        return result.stdout.split()

    assert complete("spsr user-study-sheet b", 2) == ["build"]
    assert complete("spsr upscale --ti", 2) == ["--tile", "--tile-overlap"]
    assert "upscale" in complete("spsr ", 1)
