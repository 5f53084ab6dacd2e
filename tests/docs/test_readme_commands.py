"""Every ``spsr`` command shown in README.md and the docs site exists, and so does every option.

The ```bash``` (and ```sh```/```shell```) blocks of README.md and of every page under docs/ (the
guides and the generated CLI reference alike) are read; lines continued with a
trailing backslash are joined; each command line is split with ``shlex`` at ``&&``, ``||``, ``;``,
``|`` and ``&``. A piece that runs spsr (``spsr …``, ``.venv/bin/spsr …``, any ``…/spsr …``,
``python -m spsr_cli.app …``, ``torchrun … -m spsr_cli.app …``) is checked against the live Click
command tree: every subcommand word exists, ``spsr <subcommand> --help`` exits 0, and every
option on the line (long, short, ``--opt=value``, combined short flags) belongs to that
subcommand. Nothing but ``--help`` is run.

GPU-only commands: end a command line with a comment starting with ``gpu`` (``… # gpu`` or
``… # gpu: about 2 days on one A100``) to skip that line; a block whose first line is such a
comment (``# gpu``) is skipped whole. Use it only for commands that cannot be checked here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from spsr_cli.app import app

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
_SHELL_LANGS = ("bash", "sh", "shell")
_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;", "|&"}
_REDIRECTIONS = {">", ">>", "<", "<<", "<<<", ">&", "&>", "&>>", ">|"}


@dataclass(frozen=True)
class ReadmeCommand:
    """One spsr invocation found in a Markdown file.

    Args:
        line: 1-based line of the file where the command starts.
        text: the shell line it comes from (continuations joined).
        args: the words after the program, e.g. ``["upscale", "in/", "out/", "--tile", "128"]``.
    """

    line: int
    text: str
    args: tuple[str, ...]


def _split_comment(line: str) -> tuple[str, str]:
    """``(code, comment)``: the comment starts at an unquoted ``#`` at a word start."""
    quote = ""
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :].strip()
    return line, ""


def _is_gpu_marker(comment: str) -> bool:
    return re.match(r"gpu\b", comment, flags=re.IGNORECASE) is not None


def _logical_lines(block: str, first_line: int) -> list[tuple[int, str]]:
    """Join backslash-continued lines; returns ``(line number in the file, text)`` pairs."""
    out: list[tuple[int, str]] = []
    pending, start = "", first_line
    for offset, raw in enumerate(block.split("\n")):
        if not pending:
            start = first_line + offset
        code, _ = _split_comment(raw)
        if code.rstrip().endswith("\\"):
            pending += code.rstrip()[:-1] + " "
            continue
        out.append((start, pending + raw))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _spsr_args(words: list[str]) -> list[str] | None:
    """The words after the program when ``words`` runs spsr, else None."""
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]  # VAR=value prefixes
    while words and words[0] in ("env", "time", "nohup", "exec"):
        words = words[1:]
    if not words:
        return None
    if words[0] == "spsr" or words[0].endswith("/spsr"):
        return words[1:]
    for i, word in enumerate(words[:-1]):
        if word == "-m" and words[i + 1] in ("spsr_cli.app", "spsr_cli"):
            return words[i + 2 :]
    return None


def _commands_on_line(text: str) -> list[list[str]]:
    """Argument lists of every spsr invocation on one shell line."""
    code, _ = _split_comment(text)
    lexer = shlex.shlex(code, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found: list[list[str]] = []
    piece: list[str] = []
    skip_next = False
    for token in [*lexer, ";"]:
        if skip_next:
            skip_next = False
        elif token in _SEPARATORS:
            args = _spsr_args(piece)
            if args is not None:
                found.append(args)
            piece = []
        elif token in _REDIRECTIONS:
            skip_next = True
            if piece and piece[-1].isdigit():
                piece.pop()  # the fd of "2>"
        else:
            piece.append(token)
    return found


def extract_commands(markdown: str) -> tuple[list[ReadmeCommand], list[ReadmeCommand]]:
    """spsr commands in the shell blocks of a Markdown text.

    Returns:
        ``(checked, gpu_only)``: commands to check, and those skipped by a ``# gpu`` marker.
    """
    checked: list[ReadmeCommand] = []
    gpu_only: list[ReadmeCommand] = []
    fence = re.compile(r"^```[ \t]*(\w*)[^\n]*\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
    for match in fence.finditer(markdown):
        if match.group(1) not in _SHELL_LANGS:
            continue
        first_line = markdown.count("\n", 0, match.start(2)) + 1
        lines = _logical_lines(match.group(2).rstrip("\n"), first_line)
        first_comment = next((_split_comment(t)[1] for _, t in lines if t.strip()), "")
        first_code = next((_split_comment(t)[0] for _, t in lines if t.strip()), "")
        whole_block_gpu = not first_code.strip() and _is_gpu_marker(first_comment)
        for number, text in lines:
            gpu = whole_block_gpu or _is_gpu_marker(_split_comment(text)[1])
            for args in _commands_on_line(text):
                command = ReadmeCommand(number, text.strip(), tuple(args))
                (gpu_only if gpu else checked).append(command)
    return checked, gpu_only


# ---------------------------------------------------------------------------------------------
# Checking against the Click tree


def _option_table(command: Any, ctx: Any) -> dict[str, Any]:
    table = {}
    for param in command.get_params(ctx):
        if param.param_type_name == "option":
            for name in [*param.opts, *param.secondary_opts]:
                table[name] = param
    return table


def _takes_value(param: Any) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


def check_command(
    args: list[str] | tuple[str, ...], root: Any = None
) -> tuple[list[str], list[str]]:
    """Resolve ``args`` against the spsr command tree.

    Args:
        args: the words after ``spsr``.
        root: the Click root command (default: the live app's).

    Returns:
        ``(subcommand path, problems)``: problems is empty when every word checks out.
    """
    command = root if root is not None else typer.main.get_command(app)
    ctx = command.context_class(command, info_name="spsr")
    path: list[str] = []
    problems: list[str] = []
    words = list(args)
    i = 0
    options_done = False
    while i < len(words):
        word = words[i]
        i += 1
        table = _option_table(command, ctx)
        where = " ".join(["spsr", *path])
        if word == "--" and not options_done:
            options_done = True
        elif word.startswith("--") and not options_done:
            name, has_value, _ = word.partition("=")
            param = table.get(name)
            if param is None:
                problems.append(f"`{where}` has no option {name}")
            elif _takes_value(param) and not has_value:
                i += 1
        elif re.fullmatch(r"-[A-Za-z].*", word) and not options_done:
            for k in range(1, len(word)):  # -q, -j4, -qr
                param = table.get("-" + word[k])
                if param is None:
                    problems.append(f"`{where}` has no option -{word[k]}")
                    break
                if _takes_value(param):
                    i += 1 if k == len(word) - 1 else 0
                    break
        elif hasattr(command, "list_commands"):
            sub = command.get_command(ctx, word)
            if sub is None:
                problems.append(f"`{where}` has no subcommand {word!r}")
                break
            path.append(word)
            command = sub
            ctx = command.context_class(command, info_name=word, parent=ctx)
    return path, problems


_runner = CliRunner()
_help_exit_codes: dict[tuple[str, ...], tuple[int, str]] = {}


def _help(path: list[str]) -> tuple[int, str]:
    key = tuple(path)
    if key not in _help_exit_codes:
        result = _runner.invoke(app, [*path, "--help"])
        _help_exit_codes[key] = (result.exit_code, result.output)
    return _help_exit_codes[key]


def markdown_files() -> list[Path]:
    """README.md, then every Markdown page of the docs site in path order."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _extract_all() -> tuple[list[tuple[str, ReadmeCommand]], list[tuple[str, ReadmeCommand]]]:
    checked: list[tuple[str, ReadmeCommand]] = []
    gpu_only: list[tuple[str, ReadmeCommand]] = []
    for path in markdown_files():
        found, gpu = extract_commands(path.read_text(encoding="utf-8"))
        checked += [(_rel(path), c) for c in found]
        gpu_only += [(_rel(path), c) for c in gpu]
    return checked, gpu_only


CHECKED, GPU_ONLY = _extract_all()


def _subcommands(found: list[tuple[str, ReadmeCommand]], where: str) -> set[str]:
    return {c.args[0] for rel, c in found if c.args and rel.startswith(where)}


def test_readme_has_an_example_of_every_main_task() -> None:
    """The short README keeps one example per main task (so the checks below are not vacuous)."""
    readme = [c for rel, c in CHECKED if rel == "README.md"]
    assert len(readme) >= 10, f"only {len(readme)} spsr commands found in README.md"
    tasks = {"upscale", "gradmap", "prepare-data", "pretrain-psnr", "train", "eval", "ablate",
             "user-study-sheet"}
    assert tasks <= _subcommands(CHECKED, "README.md"), tasks - _subcommands(CHECKED, "README.md")


def test_the_guides_show_every_command() -> None:
    """Every subcommand of the CLI appears in a checked block of the hand-written docs pages."""
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="spsr")
    every = {name for name in root.list_commands(ctx) if not root.get_command(ctx, name).hidden}
    guides = [(rel, c) for rel, c in CHECKED if not rel.startswith("docs/reference/")]
    shown = _subcommands(guides, "docs/")
    assert every <= shown, f"no docs page shows {sorted(every - shown)}"
    assert any(rel.startswith("docs/reference/cli/") for rel, _ in CHECKED)  # generated examples


def test_readme_quick_start_is_what_ci_runs() -> None:
    """The second quick-start command (install + whole suite) is the one .ci/run runs."""
    text = README.read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/spsr upscale --samples out/",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q",
    ]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    install, _, run = lines[1].rpartition(" && ")
    assert install + "\n" in ci
    assert re.search(r"^COLUMNS=40 " + re.escape(run) + r" ", ci, flags=re.MULTILINE), run


@pytest.mark.parametrize(
    ("where", "command"),
    CHECKED,
    ids=[f"{rel}:L{c.line}-{'-'.join(c.args[:2])}" for rel, c in CHECKED],
)
def test_documented_command_exists_with_its_options(where: str, command: ReadmeCommand) -> None:
    path, problems = check_command(command.args)
    place = f"{where} line {command.line}: {command.text}"
    assert not problems, f"{place}\n  " + "\n  ".join(problems)
    code, output = _help(path)
    assert code == 0, f"{place}\n  `spsr {' '.join(path)} --help` exited {code}:\n{output}"


# ---------------------------------------------------------------------------------------------
# The checker itself: it must be able to fail


def test_checker_flags_unknown_subcommands_and_options() -> None:
    assert check_command(["upscale", "a.png", "b.png", "--tile", "64"]) == (["upscale"], [])
    assert check_command(["nosuch", "x"])[1] == ["`spsr` has no subcommand 'nosuch'"]
    assert check_command(["upscale", "x", "--no-such-option"])[1] == [
        "`spsr upscale` has no option --no-such-option"
    ]
    assert check_command(["upscale", "x", "-Z"])[1] == ["`spsr upscale` has no option -Z"]
    # an option of another subcommand is not accepted
    assert check_command(["gradmap", "a", "b", "--samples"])[1] == [
        "`spsr gradmap` has no option --samples"
    ]
    # nested groups, --opt=value, values that look like options, combined short flags
    path, problems = check_command(
        ["user-study-sheet", "tally", "votes/", "--key=k.json", "--alpha", "0.1", "--json"]
    )
    assert (path, problems) == (["user-study-sheet", "tally"], [])
    assert check_command(["eval", "out/", "--json", "-", "-qs", "4"]) == (["eval"], [])
    assert check_command(["--version"]) == ([], [])
    assert check_command(["user-study-sheet", "nosuch"])[1] == [
        "`spsr user-study-sheet` has no subcommand 'nosuch'"
    ]


def test_extraction_handles_chains_continuations_and_gpu_markers() -> None:
    markdown = textwrap.dedent(
        """\
        text
        ```bash
        # a comment line
        python3 -m venv .venv && .venv/bin/spsr upscale --samples out/  # trailing
        spsr user-study-sheet build --hr HR \\
            -m A=a -m B=b -o study
        CUDA_VISIBLE_DEVICES=0 spsr eval out/ --hr hr/ 2> log.txt | tee x
        torchrun --nproc_per_node 4 -m spsr_cli.app train d.h5 -o runs/x  # gpu: 4 GPUs
        echo spsr is not run here; python -m http.server
        ```
        ```bash
        # gpu
        spsr train d.h5 -o r
        ```
        ```python
        spsr upscale not shell
        ```
        """
    )
    checked, gpu_only = extract_commands(markdown)
    assert [(c.line, c.args) for c in checked] == [
        (4, ("upscale", "--samples", "out/")),
        (5, ("user-study-sheet", "build", "--hr", "HR", "-m", "A=a", "-m", "B=b", "-o", "study")),
        (7, ("eval", "out/", "--hr", "hr/")),
    ]
    assert [(c.line, c.args[0]) for c in gpu_only] == [(8, "train"), (13, "train")]


# ---------------------------------------------------------------------------------------------
# The pipeline script that trains the built-in models is checked the same way

PIPELINE = REPO / "spsr" / "tools" / "train_default_models.sh"


def test_the_built_in_models_pipeline_script_uses_real_commands_and_options() -> None:
    commands, _ = extract_commands("```bash\n" + PIPELINE.read_text(encoding="utf-8") + "\n```")
    stages = [c.args[0] for c in commands]
    assert stages == ["prepare-data", "pretrain-psnr", "pretrain-psnr", "pretrain-psnr", "train", "eval"], stages
    for command in commands:
        _, problems = check_command(command.args)
        assert not problems, f"{PIPELINE.name}: {command.text}\n  " + "\n  ".join(problems)
    syntax = subprocess.run(["bash", "-n", str(PIPELINE)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
