"""A newcomer's rough edges (#30 item 6), each pinned: shell completion of fixed-choice options,
help that wraps only at the terminal's width, whole URLs in `fetch --list`, prepare-data's hints,
the user study's same-folder warning, `upscale --tile 32` and a non-image's single error line,
and the image_skip advice where a newcomer looks."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from _text import flat
from rich.console import Console
from typer.testing import CliRunner

from spsr.data.image_io import write_image
from spsr_cli.app import app

RUNNER = CliRunner()


def _complete(line: str) -> list[str]:
    """What bash completion offers for the last word of ``line`` (click's real machinery)."""
    words = line.split(" ")
    result = RUNNER.invoke(app, [], prog_name="spsr", env={
        "_SPSR_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)})
    return [w for w in result.output.splitlines() if w]


@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("spsr eval --precision ", ["auto", "fp32", "bf16", "fp16"]),
        ("spsr eval --precision b", ["bf16"]),
        ("spsr upscale --device c", ["cpu", "cuda", "cuda:0"]),
        ("spsr eval --protocol ", ["spsr", "basicsr"]),
        ("spsr ablate --protocol b", ["basicsr"]),
        ("spsr train --amp ", ["auto", "off", "bf16", "fp16"]),
        ("spsr train --perceptual l", ["lpips"]),
        ("spsr pretrain-psnr --arch ", ["rrdb", "spsr", "edsr", "srresnet"]),
        ("spsr pretrain-nse --task j", ["jigsaw"]),
        ("spsr gradmap --device a", ["auto"]),
    ],
)
def test_fixed_choice_options_complete_their_values(line: str, offered: list[str]) -> None:
    assert _complete(line) == offered


def test_variant_completion_lists_what_train_trains() -> None:
    from spsr.variant_catalog import trained_by

    assert _complete("spsr train --variant ") == [v.name for v in trained_by("train")]
    assert "g" in _complete("spsr train --variant g")


def test_completion_value_sets_match_the_library() -> None:
    from spsr.infer.precision import AMP_MODES, PRECISIONS
    from spsr.metrics.conventions import PROTOCOLS
    from spsr_cli import _common

    assert _common.PRECISIONS == PRECISIONS and _common.AMP_MODES == AMP_MODES
    assert set(_common.PROTOCOLS) == set(PROTOCOLS)


def _panel_entries(text: str) -> list[list[str]]:
    """The rows of `spsr --help`'s command panel: each entry's help lines (box drawing stripped)."""
    entries: list[list[str]] = []
    inside = False
    for line in text.splitlines():
        if "Commands" in line and line.startswith("╭"):
            inside = True
            continue
        if inside and line.startswith("╰"):
            break
        if inside:
            body = line.strip("│").rstrip()
            if body[:2].strip():  # a command name in the first column starts an entry
                entries.append([body])
            elif entries:
                entries[-1].append(body)
    return entries


@pytest.mark.parametrize("width", [60, 100])
def test_command_descriptions_break_only_at_the_terminal_width(width: int) -> None:
    result = RUNNER.invoke(app, ["--help"], env={"COLUMNS": str(width)}, terminal_width=width)
    entries = _panel_entries(result.output)
    assert len(entries) >= 10
    inner = width - 4  # the box's borders and padding
    for entry in entries:
        for line, following in itertools.pairwise(entry):
            next_word = following.split()[0]
            # A line ends only where the next word would not have fitted on it.
            assert len(line.rstrip()) + 1 + len(next_word) > inner - 1, entry


def test_prose_paragraphs_are_one_line_but_examples_keep_theirs() -> None:
    from spsr_cli._common import reflow

    text = "First line\ngoes on.\n\nSecond para\nwraps too.\n\nExamples:\n\n  spsr a\n  spsr b\n\n- one\n- two"
    assert reflow(text) == ("First line goes on.\n\nSecond para wraps too.\n\nExamples:\n\n"
                            "  spsr a\n  spsr b\n\n- one\n- two")


def test_fetch_list_keeps_urls_and_paths_whole_on_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import spsr_cli.cmd_fetch as cmd

    screen = Console(file=io.StringIO(), width=40, force_terminal=True, record=True, color_system=None)
    monkeypatch.setattr(cmd, "console", screen)
    result = RUNNER.invoke(app, ["fetch", "lpips", "--list"])
    assert result.exit_code == 0, result.output
    lines = screen.export_text().splitlines()
    url = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert any(url in line for line in lines)  # one line holds the whole URL
    assert any(line.strip().startswith("cache ") and line.rstrip().endswith("alexnet-owt-7be5be79.pth")
               for line in lines)
    assert max(len(line) for line in lines if "│" in line) <= 40  # the table fits


def _images(folder: Path, count: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(1)
    for i in range(count):
        write_image(folder / f"im{i}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return folder


def test_prepare_data_says_which_patch_fits_when_every_image_is_too_small(tmp_path: Path) -> None:
    src = _images(tmp_path / "src", 2, (100, 130))
    result = RUNNER.invoke(app, ["prepare-data", str(src), "-o", str(tmp_path / "a.h5"), "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the largest is 100 px on its short side: try --patch 100" in flat(result.output)


def test_prepare_data_info_names_the_images_held_out_for_validation(tmp_path: Path) -> None:
    import json

    src = _images(tmp_path / "src", 3, (64, 64))
    store = tmp_path / "b.h5"
    result = RUNNER.invoke(app, ["prepare-data", str(src), "-o", str(store), "--patch", "48",
                                 "--val", "1", "-q"])
    assert result.exit_code == 0, result.output
    info = RUNNER.invoke(app, ["prepare-data", "--info", str(store), "--json"])
    held = json.loads(info.stdout)["val_images"]
    assert len(held) == 1 and Path(held[0]).parent == src and Path(held[0]).name.startswith("im")
    text = RUNNER.invoke(app, ["prepare-data", "--info", str(store)], env={"COLUMNS": "200"}).output
    assert "held out for val" in text and held[0] in text


def test_user_study_warns_about_two_methods_reading_one_folder(tmp_path: Path) -> None:
    hr = _images(tmp_path / "hr", 2, (24, 24))
    a = _images(tmp_path / "a", 2, (24, 24))
    args = ["user-study-sheet", "build", "--hr", str(hr), "-o", str(tmp_path / "site"), "-q",
            "--method", f"A={a}", "--method", f"B={a}/"]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "method B reads the same folder as method A" in flat(result.stderr)
    result = RUNNER.invoke(app, [*args[:-2], "--method", f"B={hr}", "--force"])
    assert "reads the same folder as the HR references" in flat(result.stderr)


def test_upscale_takes_tile_32_as_eval_does(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    src = _images(tmp_path / "in", 1, (40, 36))
    result = RUNNER.invoke(app, ["upscale", str(src), str(tmp_path / "out"), "--weights",
                                 str(tiny_spsr_weights), "--tile", "32"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "im0.png").is_file()
    result = RUNNER.invoke(app, ["upscale", str(src), str(tmp_path / "o2"), "--weights",
                                 str(tiny_spsr_weights), "--tile", "32", "--tile-overlap", "16"])
    assert result.exit_code == 1 and "overlap 16 is too large for tile 32" in flat(result.output)


def test_upscale_of_a_non_image_prints_only_its_error(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    result = RUNNER.invoke(app, ["upscale", str(bad), str(tmp_path / "out"), "--weights",
                                 str(tiny_spsr_weights)])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert not any(re.match(r"\[\d+/\d+\]", line) for line in lines), lines
    assert lines[-1].startswith("error:") and "bad.png" in flat(result.stderr)


def test_image_skip_advice_is_in_pretrain_psnr_help() -> None:
    result = RUNNER.invoke(app, ["pretrain-psnr", "--help"], env={"COLUMNS": "300"})
    assert "--arch spsr --set model.extra.image_skip=true" in flat(result.output)
