"""Finding input images and naming outputs for batch commands (upscale, gradmap).

The rules that keep a user's files safe live here, so every batch command shares them:

* folder and glob inputs take image files only (by extension); the others are listed as skipped;
* an output never replaces an input, not even with ``--overwrite``;
* when outputs would land on their inputs (output folder = input folder, no suffix) a default
  suffix (``_x4`` for upscale) is used, and files that already carry that suffix there are taken
  for outputs of an earlier run and skipped, so running twice never upscales its own outputs;
* a suffix is a file-name part: no path separators, no ``..``;
* an output folder that exists as a file fails once, up front; an existing folder where an
  output file should go is an error for that file, never "already done";
* two inputs whose outputs would have one name (``x.jpg`` and ``x.png`` → ``x_grad.png``) fail
  up front, naming both and the option that tells them apart; neither is silently dropped;
* dangling symbolic links and entries that cannot be read are listed (never skipped silently)
  and make the command's exit non-zero, like unreadable images.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from spsr.data.image_io import IMAGE_EXTENSIONS, READ_EXTENSIONS, is_image_file
from spsr.errors import SpsrError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    source: Path
    output: Path


@dataclass
class InputSet:
    """Input files of a batch command.

    Attributes:
        files: image files to process, sorted.
        base: the folder whose layout outputs mirror (None for a single file or a glob).
        skipped: files of a folder or glob left out because they are not images (by extension).
        unreadable: ``(path, reason)`` for dangling symbolic links and entries that could not be
            read (a sub-folder without permission); reported as failures.
    """

    files: list[Path]
    base: Path | None
    skipped: list[Path] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class Plan:
    """Jobs of a batch command and the inputs it deliberately leaves alone.

    Attributes:
        jobs: input → output pairs to consider (existing outputs are sorted out by ``pending``).
        suffix: the suffix actually used (the default one when outputs would land on inputs).
        own_outputs: inputs that look like outputs of an earlier run into the same folder.
        clashes: ``(input, reason)`` for inputs whose output name another input already takes.
    """

    jobs: list[Job]
    suffix: str
    own_outputs: list[Path] = field(default_factory=list)
    clashes: list[tuple[Path, str]] = field(default_factory=list)


def find_inputs(spec: str, recursive: bool = False) -> InputSet:
    """Expand a file, a folder or a glob into input files.

    A file named explicitly is always taken (reading it says whether it is an image); from a
    folder or a glob only image files are taken, hidden files are ignored.
    """
    path = Path(spec)
    if path.is_file():
        return InputSet([path], None)
    unreadable: list[tuple[Path, str]] = []
    if path.is_dir():
        try:
            os.scandir(path).close()
        except OSError as exc:
            raise SpsrError(f"{path}: cannot read the folder ({exc.strerror or exc})") from None
        pattern = "**/*" if recursive else "*"
        entries = [p for p in path.glob(pattern) if not p.name.startswith(".")]
        if recursive:  # Path.glob passes over sub-folders it cannot read without a word
            for _ in os.walk(path, onerror=lambda e: unreadable.append(
                    (Path(e.filename), f"cannot read the folder ({e.strerror or e})"))):
                pass
        base: Path | None = path
        where = f"{path}: folder"
    elif any(ch in spec for ch in "*?["):
        entries = [Path(p) for p in glob.glob(spec, recursive=True)]
        base, where = None, f"{spec}: pattern"
    else:
        raise SpsrError(f"{spec}: no such file, folder or pattern")
    found = sorted(p for p in entries if p.is_file())
    for p in sorted(entries):
        if p.is_symlink() and not p.exists():
            unreadable.append((p, f"dangling symbolic link (to {os.readlink(p)})"))
    images = [p for p in found if is_image_file(p)]
    if not images:
        what = "no files" if not found else f"no image files ({len(found)} other file(s))"
        also = f" ({len(unreadable)} unreadable entries, first: {unreadable[0][0]})" if unreadable else ""
        raise SpsrError(f"{where} holds {what}{also}; images are {', '.join(READ_EXTENSIONS)}")
    return InputSet(images, base, [p for p in found if not is_image_file(p)], unreadable)


def check_suffix(suffix: str) -> None:
    """Refuse a suffix that is not a plain file-name part."""
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(s in suffix for s in seps) or ".." in suffix or "\x00" in suffix:
        raise SpsrError(f"--suffix {suffix!r}: must be part of a file name (no path separators, no '..')")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _normalise_ext(ext: str | None) -> str | None:
    if ext is None:
        return None
    if not ext.startswith("."):
        ext = "." + ext
    if ext.lower() not in IMAGE_EXTENSIONS:
        raise SpsrError(f"unsupported output extension {ext!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    return ext


#: The option of upscale and gradmap that tells apart inputs differing only by extension.
NAME_WITH_EXT = "--name-with-ext"


def plan_jobs(
    inputs: InputSet,
    output: Path,
    suffix: str = "",
    ext: str | None = None,
    default_suffix: str = "",
    name_with_ext: bool = False,
    ext_option: bool = False,
) -> Plan:
    """Map inputs to outputs: a single file may go to a file path, otherwise into a folder.

    Args:
        inputs: what ``find_inputs`` returned.
        output: the output folder, or a file path for a single input.
        suffix: appended to output file stems.
        ext: output extension (default: the input's own).
        default_suffix: used instead of an empty ``suffix`` when outputs would land on their inputs.
        name_with_ext: keep the input's extension in the output name (``x.jpg`` → ``x_jpg`` +
            suffix + extension), so that ``x.jpg`` and ``x.png`` get different outputs.
        ext_option: ``ext`` was given by the user (``--ext``): leaving it out is one more way to
            tell inputs apart, said in a conflict.

    Raises:
        SpsrError: a bad suffix or extension, an output folder that is a file, a single output
            file that is its own input, or two inputs whose outputs would have the same name.
    """
    check_suffix(suffix)
    ext = _normalise_ext(ext)
    files, base = inputs.files, inputs.base
    single_file_out = len(files) == 1 and base is None and output.suffix.lower() in IMAGE_EXTENSIONS
    if single_file_out:
        if _same(files[0], output):
            raise SpsrError(f"{output}: is the input itself; choose another output name")
        return Plan([Job(files[0], output)], suffix)
    if output.exists() and not output.is_dir():
        raise SpsrError(f"{output}: exists and is not a folder (give a folder for the outputs)")

    def target(src: Path, sfx: str) -> Path:
        rel = src.relative_to(base) if base is not None else Path(src.name)
        own = src.suffix if src.suffix.lower() in IMAGE_EXTENSIONS else ".png"  # e.g. GIF → PNG
        stem = f"{rel.stem}_{src.suffix.lstrip('.')}" if name_with_ext and src.suffix else rel.stem
        return output / rel.parent / f"{stem}{sfx}{ext or own}"

    if not suffix and any(_same(src, target(src, "")) for src in files):
        if not default_suffix:
            raise SpsrError(f"{output}: outputs would replace their inputs; give a --suffix or another folder")
        suffix = default_suffix
    plan = Plan([], suffix)
    nested = base is not None and not _same(output, base) and _inside(output, base)
    seen: dict[Path, Path] = {}
    in_place = suffix and any(_same(src.parent, target(src, suffix).parent) for src in files)
    for src in files:
        if in_place and src.stem.endswith(suffix) and _same(src.parent, target(src, suffix).parent):
            plan.own_outputs.append(src)
            continue
        if nested and _inside(src, output):  # an output folder inside the input folder
            plan.own_outputs.append(src)
            continue
        dst = target(src, suffix)
        if _same(src, dst):  # cannot happen with a non-empty suffix; kept as the last guard
            raise SpsrError(f"{dst}: output would replace its input")
        key = Path(os.path.normcase(dst))
        if key in seen:
            plan.clashes.append((src, f"{seen[key]} and {src} would both be written to {dst}"))
            continue
        seen[key] = src
        plan.jobs.append(Job(src, dst))
    if plan.clashes:
        more = f" (and {len(plan.clashes) - 1} more such pair(s))" if len(plan.clashes) > 1 else ""
        ways = f"pass {NAME_WITH_EXT} to keep each input's extension in its output name"
        if ext_option:
            ways = f"leave out --ext so that each output keeps its input's format, or {ways}"
        raise SpsrError(f"output name conflict: {plan.clashes[0][1]}{more}; {ways}")
    return plan


def pending(jobs: list[Job], overwrite: bool) -> tuple[list[Job], int, list[tuple[Path, str]]]:
    """Sort jobs into (to do, number skipped as existing, blocked by a non-file at the output path)."""
    todo, skipped, blocked = [], 0, []
    for job in jobs:
        if job.output.is_dir():
            blocked.append((job.source, f"{job.output} is a folder; cannot write the output there"))
        elif job.output.exists() and not overwrite:
            skipped += 1
        else:
            todo.append(job)
    return todo, skipped, blocked


def describe_left_out(inputs: InputSet, plan: Plan, limit: int = 5) -> list[str]:
    """One line per kind of input left out on purpose, naming the first few files."""

    def names(paths: list[Path]) -> str:
        shown = ", ".join(p.name for p in paths[:limit])
        return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")

    lines = []
    if inputs.skipped:
        lines.append(f"skipped {len(inputs.skipped)} non-image file(s): {names(inputs.skipped)}")
    if plan.own_outputs:
        lines.append(f"skipped {len(plan.own_outputs)} file(s) that look like outputs of an earlier run "
                     f"(in the output folder, named *{plan.suffix}): {names(plan.own_outputs)}")
    return lines


def sample_images() -> list[Path]:
    """The small LR sample photos that ship with the package."""
    return sorted(p for p in SAMPLES_DIR.glob("*") if is_image_file(p))
