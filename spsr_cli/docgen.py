"""Shell completions, man pages and the docs site's CLI reference, generated from the ``spsr`` app.

``python -m spsr_cli.docgen`` rewrites ``completions/spsr.{bash,zsh,fish}``, ``man/spsr*.1`` and
``docs/reference/cli/spsr*.md`` from the command tree that ``spsr --help`` shows;
``python -m spsr_cli.docgen --check`` writes nothing and exits 1 naming the files that differ. Run
it after adding or changing a subcommand or an option (``tests/docs/test_docs_generated.py`` fails until
you do).

Completion scripts are what Typer's own completion machinery prints for
``_SPSR_COMPLETE=source_<shell> spsr``: small shims that ask ``spsr`` itself for the candidates,
so they stay right as commands change. The zsh one also works when autoloaded from ``$fpath``.

Man pages are roff written here from the Click command tree: NAME and DESCRIPTION from the
docstring, SYNOPSIS, COMMANDS (groups), ARGUMENTS and OPTIONS (help, default, required), EXAMPLES
(the docstring paragraphs after one reading ``Examples``), SEE ALSO. A docstring paragraph whose
lines are all indented is shown verbatim; ```code``` is set in bold. The output depends only on
the app and the package version: no dates, no paths of this machine.

Markdown pages (one per command, for the MkDocs site) hold the same sections as the man pages,
from the same blocks: a synopsis, the description, subcommands and see-also as links between the
pages, arguments and options as lists, the examples as ``bash`` blocks (which
``tests/docs/test_readme_commands.py`` checks like every other command in the docs).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import typer.main

from spsr.atomic import write_text_atomic

PROG = "spsr"
SHELLS = ("bash", "zsh", "fish")
COMPLETIONS_DIR = "completions"
MAN_DIR = "man"
CLI_DOCS_DIR = "docs/reference/cli"
REGENERATE_COMMAND = "python -m spsr_cli.docgen"
REPO_ROOT = Path(__file__).resolve().parents[1]

_INSTALL_HINTS = {
    "bash": [
        "Install: copy to ~/.local/share/bash-completion/completions/spsr",
        "(loaded on first use), or `source` this file from ~/.bashrc.",
    ],
    "zsh": [
        "Install: copy as _spsr into a folder listed in $fpath before compinit runs",
        "(e.g. fpath=(~/.zfunc $fpath) in ~/.zshrc), or `source` this file after compinit.",
        "spsr must be on PATH: every completion asks it for the candidates.",
    ],
    "fish": [
        "Install: copy to ~/.config/fish/completions/spsr.fish.",
        "spsr must be on PATH: every completion asks it for the candidates.",
    ],
}


@dataclass(frozen=True)
class CommandNode:
    """One command of the tree, with the Click context man pages are rendered in.

    Args:
        path: command words from the program name, e.g. ``("spsr", "user-study-sheet", "build")``.
        command: the Click command (a group when it has subcommands).
        context: its Click context, parents included, as when the command runs.
        children: names of its visible subcommands, in ``--help`` order.
    """

    path: tuple[str, ...]
    command: Any
    context: Any
    children: tuple[str, ...]

    @property
    def page(self) -> str:
        """Man page name: ``spsr-user-study-sheet-build``."""
        return "-".join(self.path)

    @property
    def is_group(self) -> bool:
        return hasattr(self.command, "list_commands")


def command_tree(app: typer.Typer | None = None) -> list[CommandNode]:
    """Every visible command of the app, depth first in ``--help`` order, the root first.

    Args:
        app: the Typer app (default: ``spsr_cli.app.app``).

    Returns:
        The nodes; hidden commands are left out.
    """
    if app is None:
        from spsr_cli.app import app as default_app

        app = default_app
    nodes: list[CommandNode] = []

    def visit(command: Any, path: tuple[str, ...], parent: Any) -> None:
        ctx = command.context_class(command, info_name=path[-1], parent=parent)
        subcommands: list[tuple[str, Any]] = []
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not getattr(sub, "hidden", False):
                    subcommands.append((name, sub))
        nodes.append(CommandNode(path, command, ctx, tuple(name for name, _ in subcommands)))
        for name, sub in subcommands:
            visit(sub, (*path, name), ctx)

    visit(typer.main.get_command(app), (PROG,), None)
    return nodes


# ---------------------------------------------------------------------------------------------
# Completions


def completion_script(shell: str, app: typer.Typer | None = None) -> str:
    """The completion script Typer prints for ``_SPSR_COMPLETE=source_<shell> spsr``, with a header.

    Args:
        shell: ``bash``, ``zsh`` or ``fish``.
        app: the Typer app (default: ``spsr_cli.app.app``).

    Returns:
        The script text, ending with a newline.
    """
    from typer.testing import CliRunner

    if app is None:
        from spsr_cli.app import app as default_app

        app = default_app
    try:  # Click < 8.2 mixes stderr into the output unless told not to
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    complete_var = f"_{PROG.upper()}_COMPLETE"
    result = runner.invoke(app, [], env={complete_var: f"source_{shell}"}, prog_name=PROG)
    body = result.stdout.strip()
    if result.exit_code != 0 or not body:
        raise RuntimeError(f"Typer printed no {shell} completion script (exit {result.exit_code})")
    header = [
        f"# {shell} completion for {PROG}, generated by `{REGENERATE_COMMAND}`: do not edit.",
        *(f"# {line}" for line in _INSTALL_HINTS[shell]),
    ]
    lines = body.splitlines()
    if lines[0].startswith("#compdef"):  # zsh reads #compdef only on the first line
        lines = [lines[0], *header, *lines[1:]]
    else:
        lines = [*header, *lines]
    script = "\n".join(lines) + "\n"
    return _zsh_autoload_friendly(script) if shell == "zsh" else script


def _zsh_autoload_friendly(script: str) -> str:
    """Make Typer's zsh script complete at once when autoloaded from ``$fpath`` as ``_spsr``.

    Sourced, the script registers its function with ``compdef``; autoloaded, zsh runs the file as
    the body of ``_spsr`` on every completion, so the body must complete rather than register.
    """
    match = re.search(rf"^compdef (\S+) {PROG}$", script, flags=re.MULTILINE)
    if match is None:
        return script
    func = match.group(1)
    block = (
        f'if [[ "${{funcstack[1]}}" == _{PROG} ]]; then\n'
        f'  {func} "$@"  # autoloaded from $fpath: complete now\n'
        "else\n"
        f"  compdef {func} {PROG}  # sourced: register for later\n"
        "fi"
    )
    return script[: match.start()] + block + script[match.end() :]


# ---------------------------------------------------------------------------------------------
# Roff text


def _escape(text: str) -> str:
    """Roff-escape plain text: backslash, hyphen-minus (``\\-`` so options copy-paste right),
    and every non-ASCII character as ``\\[uXXXX]`` (no reliance on the renderer's input encoding).
    """
    out = []
    for ch in text:
        if ch == "\\":
            out.append(r"\e")
        elif ch == "-":
            out.append(r"\-")
        elif ch == "\t":
            out.append(" ")
        elif ord(ch) > 127:
            out.append(f"\\[u{ord(ch):04X}]")
        else:
            out.append(ch)
    return "".join(out)


def _inline(text: str) -> str:
    """Escape text and set ```code``` spans in bold."""
    pieces = re.split(r"`([^`]+)`", text)
    return "".join(
        rf"\fB{_escape(piece)}\fR" if i % 2 else _escape(piece) for i, piece in enumerate(pieces)
    )


def _safe_line(line: str) -> str:
    """A roff text line that cannot be read as a request (leading ``.`` or ``'``)."""
    return "\\&" + line if line.startswith((".", "'")) else line


def _bold(text: str) -> str:
    return rf"\fB{_escape(text)}\fR"


def _italic(text: str) -> str:
    return rf"\fI{_escape(text)}\fR"


def _plain(text: str, command: Any) -> str:
    """Help text as ``--help`` shows it: Rich markup (``[bold]…[/]``, ``\\[``) removed in rich mode."""
    if getattr(command, "rich_markup_mode", None) != "rich" or "[" not in text:
        return text
    from rich.errors import MarkupError
    from rich.text import Text

    try:
        return Text.from_markup(text).plain
    except MarkupError:
        return text


@dataclass(frozen=True)
class _Block:
    kind: str  # "text" | "verbatim" | "bullets"
    lines: tuple[str, ...]


def _help_blocks(help_text: str) -> tuple[list[_Block], list[_Block]]:
    """Split a docstring into description blocks and example blocks.

    Returns:
        ``(description, examples)``: examples are the paragraphs after one whose first line is
        ``Examples`` (or ``Example:`` …).
    """
    text = inspect.cleandoc(help_text).partition("\f")[0].strip()
    description: list[_Block] = []
    examples: list[_Block] = []
    target = description
    for paragraph in re.split(r"\n[ \t]*\n", text) if text else []:
        lines = paragraph.rstrip().split("\n")
        if re.fullmatch(r"examples?:?", lines[0].strip(), flags=re.IGNORECASE):
            target = examples
            lines = lines[1:]
            if not lines:
                continue
        target.append(_classify(lines))
    return description, examples


def _classify(lines: list[str]) -> _Block:
    if lines[0].strip() == "\b":  # Click's "do not rewrap" marker
        return _Block("verbatim", tuple(textwrap.dedent("\n".join(lines[1:])).split("\n")))
    if all(line.startswith("  ") or not line.strip() for line in lines):
        return _Block("verbatim", tuple(textwrap.dedent("\n".join(lines)).split("\n")))
    if lines[0].lstrip().startswith(("- ", "* ")):
        return _Block("bullets", tuple(line.strip() for line in lines))
    return _Block("text", tuple(line.strip() for line in lines))


def _render_blocks(blocks: Sequence[_Block]) -> list[str]:
    out: list[str] = []
    for i, block in enumerate(blocks):
        if block.kind == "verbatim":
            out += [".PP"] if i else []
            out += [".RS 4", ".nf"]
            out += [_safe_line(_escape(line.rstrip())) for line in block.lines]
            out += [".fi", ".RE"]
        elif block.kind == "bullets":
            for line in block.lines:
                if line.startswith(("- ", "* ")):
                    out += [r".IP \(bu 2", _safe_line(_inline(line[2:].strip()))]
                elif line:
                    out.append(_safe_line(_inline(line)))
        else:
            out += [".PP"] if i else []
            out += [_safe_line(_inline(line)) for line in block.lines if line]
    return out


def _summary(node: CommandNode) -> str:
    """The first sentence of the command's help (or its ``short_help``), for NAME and COMMANDS."""
    command = node.command
    if getattr(command, "short_help", None):
        return _plain(command.short_help, command).strip()
    text = _plain(inspect.cleandoc(command.help or ""), command).partition("\f")[0].strip()
    first = " ".join(re.split(r"\n[ \t]*\n", text)[0].split()) if text else ""
    match = re.match(r"(.+?[.!?])(?=\s+[A-Z(]|$)", first)
    return match.group(1) if match else first


# ---------------------------------------------------------------------------------------------
# Man pages


def _params(node: CommandNode, kind: str) -> list[tuple[Any, tuple[str, str]]]:
    """Visible parameters of one kind (``argument`` / ``option``) with their help records."""
    found = []
    for param in node.command.get_params(node.context):
        if param.param_type_name != kind:
            continue
        record = param.get_help_record(node.context)
        if record is not None:
            found.append((param, record))
    return found


def _param_help(param: Any, record: tuple[str, str], node: CommandNode) -> str:
    """Help text plus the ``[default: …; required]`` note exactly as ``--help`` derives it."""
    raw = getattr(param, "help", None) or ""
    shown = record[1] or ""
    extra = shown[len(raw) :].strip() if shown.startswith(raw) else ""
    text = " ".join(_plain(raw, node.command).split())
    return f"{text} {extra}".strip()


def _option_tag(declaration: str) -> str:
    """``-w, --weights <str>`` → bold option names, italic value."""
    parts = re.split(r"(, | / |; )", declaration)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
            continue
        name, _, value = part.partition(" ")
        out.append(_bold(name) + (" " + _italic(value) if value else ""))
    return "".join(out)


def _argument_name(param: Any) -> str:
    name = param.metavar or (param.name or "").upper()
    return name + ("..." if param.nargs != 1 else "")


def _synopsis(node: CommandNode) -> str:
    pieces = [_bold(" ".join(node.path)), r"[\fIOPTIONS\fR]"]
    for param, _ in _params(node, "option"):
        if getattr(param, "required", False):
            long_names = [o for o in param.opts if o.startswith("--")] or list(param.opts)
            value = "" if getattr(param, "is_flag", False) else " " + _italic(param.name.upper())
            pieces.append(_bold(long_names[0]) + value + ("..." if param.multiple else ""))
    if node.is_group:
        pieces.append(r"\fICOMMAND\fR [\fIARGS\fR]...")
    for param, _ in _params(node, "argument"):
        name = param.metavar or (param.name or "").upper()
        dots = "..." if param.nargs != 1 else ""
        pieces.append(_italic(name) + dots if param.required else f"[{_italic(name)}]{dots}")
    return " ".join(pieces)


def _related(node: CommandNode, nodes: Sequence[CommandNode]) -> list[tuple[str, ...]]:
    """Commands a page refers to: every command from the root; else the parents, the
    subcommands of a group and the siblings of a nested command."""
    by_path = {n.path: n for n in nodes}
    if len(node.path) == 1:
        related = [n.path for n in nodes if n.path != node.path]
    else:
        related = [node.path[:i] for i in range(1, len(node.path))]
        if node.is_group:
            related += [(*node.path, child) for child in node.children]
        elif len(node.path) > 2:
            parent = by_path[node.path[:-1]]
            related += [(*parent.path, s) for s in parent.children if s != node.path[-1]]
    return related


def _see_also(node: CommandNode, nodes: Sequence[CommandNode]) -> list[str]:
    return [rf"\fB{_escape('-'.join(path))}\fR(1)" for path in _related(node, nodes)]


def man_page(node: CommandNode, nodes: Sequence[CommandNode], version: str) -> str:
    """The roff man page (section 1) of one command.

    Args:
        node: the command.
        nodes: the whole tree (for SEE ALSO).
        version: the package version, shown in the footer in place of a date.

    Returns:
        The page text, ending with a newline.
    """
    command = node.command
    description, examples = _help_blocks(_plain(command.help or "", command))
    title = _escape(node.page.upper())
    out = [
        rf".\" Generated by `{REGENERATE_COMMAND}` from the {PROG} command: do not edit.",
        f'.TH "{title}" "1" "version {_escape(version)}" "{PROG}" "{PROG} manual"',
        ".nh",  # no hyphenation: option names must not break at their hyphens
        ".ad l",  # ragged right: no stretched spaces in narrow terminals
        ".SH NAME",
        f"{_escape(node.page)} \\- {_inline(_summary(node).rstrip('.'))}",
        ".SH SYNOPSIS",
        _synopsis(node),
    ]
    if description:
        out += [".SH DESCRIPTION", *_render_blocks(description)]
    if node.is_group and node.children:
        out.append(".SH COMMANDS")
        for child in node.children:
            sub = next(n for n in nodes if n.path == (*node.path, child))
            out += [".TP", _bold(child), _safe_line(_inline(_summary(sub)))]
            out.append(rf"See \fB{_escape(sub.page)}\fR(1).")
    arguments = _params(node, "argument")
    if arguments:
        out.append(".SH ARGUMENTS")
        for param, record in arguments:
            out += [".TP", _italic(_argument_name(param))]
            out.append(_safe_line(_inline(_param_help(param, record, node))))
    options = _params(node, "option")
    if options:
        out.append(".SH OPTIONS")
        for param, record in options:
            out += [".TP", _option_tag(record[0])]
            help_line = _param_help(param, record, node)
            if help_line:
                out.append(_safe_line(_inline(help_line)))
    if examples:
        out += [".SH EXAMPLES", *_render_blocks(examples)]
    if len(node.path) == 1:
        out += [
            ".SH SHELL COMPLETION",
            f"Scripts for bash, zsh and fish are in the \\fBcompletions/\\fR folder of the {PROG}",
            f"source tree; \\fB{PROG} \\-\\-show\\-completion\\fR prints the one for the",
            "current shell.",
        ]
    see_also = _see_also(node, nodes)
    if see_also:
        out += [".SH SEE ALSO", ", ".join(see_also)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Markdown pages (the docs site's CLI reference)

_MD_SPECIAL = re.compile(r"([\\*_\[\]#!])")


def _md_escape(text: str) -> str:
    """Markdown-escape plain text: emphasis, link and heading characters, and ``<``/``>``/``&``
    as entities (so ``<int>`` is not read as an HTML tag)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_inline(text: str) -> str:
    """Escape text and keep ```code``` spans as code."""
    pieces = re.split(r"`([^`]+)`", text)
    return "".join(
        f"`{piece}`" if i % 2 else _md_escape(piece) for i, piece in enumerate(pieces)
    )


def _md_code(text: str) -> str:
    """An inline code span that holds ``text`` even when it contains backticks."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_blocks(blocks: Sequence[_Block], code_lang: str) -> list[str]:
    """Description or example blocks as Markdown paragraphs, lists and fenced code."""
    out: list[str] = []
    for block in blocks:
        if block.kind == "verbatim":
            lines = [line.rstrip() for line in block.lines]
            while lines and not lines[-1]:
                lines.pop()
            out += [f"```{code_lang}", *lines, "```", ""]
        elif block.kind == "bullets":
            items: list[str] = []
            for line in block.lines:
                if line.startswith(("- ", "* ")):
                    items.append(line[2:].strip())
                elif line and items:
                    items[-1] += " " + line
            out += [f"- {_md_inline(item)}" for item in items]
            out.append("")
        else:
            out += [_md_inline(" ".join(line for line in block.lines if line)), ""]
    return out


def _md_link(path: tuple[str, ...]) -> str:
    return f"[`{' '.join(path)}`]({'-'.join(path)}.md)"


def markdown_page(node: CommandNode, nodes: Sequence[CommandNode]) -> str:
    """The docs site's Markdown reference page of one command.

    Args:
        node: the command.
        nodes: the whole tree (for the subcommand and see-also links).

    Returns:
        The page text, ending with a newline.
    """
    command = node.command
    description, examples = _help_blocks(_plain(command.help or "", command))
    synopsis = " ".join(node.path) + " [OPTIONS]"
    for param, _ in _params(node, "option"):
        if getattr(param, "required", False):
            long_names = [o for o in param.opts if o.startswith("--")] or list(param.opts)
            value = "" if getattr(param, "is_flag", False) else " " + param.name.upper()
            synopsis += f" {long_names[0]}{value}" + ("..." if param.multiple else "")
    if node.is_group:
        synopsis += " COMMAND [ARGS]..."
    for param, _ in _params(node, "argument"):
        name = _argument_name(param)
        synopsis += f" {name}" if param.required else f" [{name}]"
    summary = _summary(node)
    first = " ".join(" ".join(description[0].lines).split()) if description else ""
    # the summary is the description's first sentence: shown once, at the top
    lead = [] if summary and first.startswith(summary) else [_md_inline(summary), ""]
    out = [
        f"<!-- Generated by `{REGENERATE_COMMAND}` from the {PROG} command: do not edit. -->",
        "",
        f"# {' '.join(node.path)}",
        "",
        *lead,
        "```text",
        synopsis,
        "```",
        "",
    ]
    if description:
        out += _md_blocks(description, "text")
    if node.is_group and node.children:
        out += ["## Commands", ""]
        for child in node.children:
            sub = next(n for n in nodes if n.path == (*node.path, child))
            out.append(f"- {_md_link(sub.path)}: {_md_inline(_summary(sub))}")
        out.append("")
    arguments = _params(node, "argument")
    if arguments:
        out += ["## Arguments", ""]
        for param, record in arguments:
            help_line = _param_help(param, record, node)
            out.append(f"- {_md_code(_argument_name(param))}: {_md_inline(help_line)}".rstrip())
        out.append("")
    options = _params(node, "option")
    if options:
        out += ["## Options", ""]
        for param, record in options:
            help_line = _param_help(param, record, node)
            item = f"- {_md_code(record[0])}"
            out.append(f"{item}: {_md_inline(help_line)}" if help_line else item)
        out.append("")
    if examples:
        out += ["## Examples", "", *_md_blocks(examples, "bash")]
    if len(node.path) == 1:
        out += [
            "## Shell completion",
            "",
            f"Scripts for bash, zsh and fish are in the `completions/` folder of the {PROG} "
            f"source tree; `{PROG} --show-completion` prints the one for the current shell.",
            "",
        ]
    related = _related(node, nodes)
    if related:
        out += ["## See also", "", ", ".join(_md_link(path) for path in related), ""]
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Files


def generate(app: typer.Typer | None = None) -> dict[str, str]:
    """Every generated file, fresh from the app.

    Args:
        app: the Typer app (default: ``spsr_cli.app.app``).

    Returns:
        ``{relative posix path: text}``, e.g. ``"man/spsr-upscale.1"`` or
        ``"docs/reference/cli/spsr-upscale.md"``.
    """
    import spsr

    nodes = command_tree(app)
    files = {f"{COMPLETIONS_DIR}/{PROG}.{shell}": completion_script(shell, app) for shell in SHELLS}
    for node in nodes:
        files[f"{MAN_DIR}/{node.page}.1"] = man_page(node, nodes, spsr.__version__)
        files[f"{CLI_DOCS_DIR}/{node.page}.md"] = markdown_page(node, nodes)
    return files


def owned_files(root: Path) -> list[str]:
    """Files under ``root`` that the generator owns (``completions/spsr.*``, ``man/spsr*.1``,
    ``docs/reference/cli/spsr*.md``)."""
    found = [p for p in (root / COMPLETIONS_DIR).glob(f"{PROG}.*") if p.suffix[1:] in SHELLS]
    found += list((root / MAN_DIR).glob(f"{PROG}*.1"))
    found += list((root / CLI_DOCS_DIR).glob(f"{PROG}*.md"))
    return sorted(p.relative_to(root).as_posix() for p in found if p.is_file())


def stale_files(root: Path, files: dict[str, str]) -> list[str]:
    """What differs between ``root`` and freshly generated ``files``.

    Returns:
        One ``"path (reason)"`` per file that is out of date, missing, or no longer generated.
    """
    stale = []
    for rel, text in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            stale.append(f"{rel} (missing)")
        elif path.read_text(encoding="utf-8") != text:
            stale.append(f"{rel} (out of date)")
    stale += [f"{rel} (no longer generated)" for rel in owned_files(root) if rel not in files]
    return stale


def write_files(root: Path, files: dict[str, str]) -> list[str]:
    """Write ``files`` under ``root`` (each atomically) and remove owned files no longer generated.

    Returns:
        The relative paths written or removed; unchanged files are not rewritten.
    """
    changed = []
    for rel in owned_files(root):
        if rel not in files:
            (root / rel).unlink()
            changed.append(rel)
    for rel, text in sorted(files.items()):
        path = root / rel
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        write_text_atomic(path, text)
        changed.append(rel)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spsr_cli.docgen [--check] [--root DIR]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m spsr_cli.docgen",
        description="Regenerate completions/, man/ and docs/reference/cli/ from the spsr command.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any file is stale"
    )
    parser.add_argument(
        "--root", type=Path, default=REPO_ROOT, help="repository root (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        stale = stale_files(args.root, files)
        if stale:
            print("stale generated files:", *stale, sep="\n  ", file=sys.stderr)
            print(f"run `{REGENERATE_COMMAND}` and commit the result", file=sys.stderr)
            return 1
        print(f"{len(files)} generated files are up to date")
        return 0
    changed = write_files(args.root, files)
    for rel in changed:
        print(f"updated {rel}")
    print(f"{len(files)} files generated, {len(changed)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
