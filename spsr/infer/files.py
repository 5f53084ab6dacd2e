"""Finding input images and naming outputs for batch commands (upscale, gradmap)."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from spsr.data.image_io import IMAGE_EXTENSIONS, is_image_file
from spsr.errors import SpsrError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    source: Path
    output: Path


def find_inputs(spec: str, recursive: bool = False) -> tuple[list[Path], Path | None]:
    """Expand a file, a folder or a glob into input files.

    Returns:
        The files (sorted) and the base folder outputs mirror (None for a single file).
    """
    path = Path(spec)
    if path.is_file():
        return [path], None
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(p for p in path.glob(pattern) if p.is_file() and not p.name.startswith("."))
        if not files:
            raise SpsrError(f"{path}: folder holds no files")
        return files, path
    if any(ch in spec for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise SpsrError(f"{spec}: pattern matches no files")
        return files, None
    raise SpsrError(f"{spec}: no such file, folder or pattern")


def plan_jobs(
    files: list[Path], base: Path | None, output: Path, suffix: str = "", ext: str | None = None
) -> list[Job]:
    """Map inputs to outputs: a single file may go to a file path, otherwise into a folder.

    Non-image files are kept in the list (they are reported as failures when read), except
    hidden files. The output extension is ``ext`` or the input's own.
    """
    if ext is not None and not ext.startswith("."):
        ext = "." + ext
    if ext is not None and ext.lower() not in IMAGE_EXTENSIONS:
        raise SpsrError(f"unsupported output extension {ext!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    single_file_out = len(files) == 1 and base is None and output.suffix.lower() in IMAGE_EXTENSIONS
    jobs = []
    seen: dict[Path, Path] = {}
    for src in files:
        if single_file_out:
            dst = output
        else:
            rel = src.relative_to(base) if base is not None else Path(src.name)
            out_ext = ext or (src.suffix if is_image_file(src) else ".png")
            dst = output / rel.parent / f"{rel.stem}{suffix}{out_ext}"
        if dst in seen:
            raise SpsrError(f"{src} and {seen[dst]} would both write {dst}; use --ext or --suffix")
        seen[dst] = src
        jobs.append(Job(src, dst))
    return jobs


def sample_images() -> list[Path]:
    """The small LR sample photos that ship with the package."""
    return sorted(p for p in SAMPLES_DIR.glob("*") if is_image_file(p))
