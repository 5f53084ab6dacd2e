"""Tallying votes: label → method mapping, bad and duplicate files, statistics, chart, CLI."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from _text import flat
from _votes import METHODS, key_path, write_votes  # noqa: F401  (key_path: the fixture)
from PIL import Image
from scipy import stats
from typer.testing import CliRunner

from spsr.errors import ConfigError
from spsr.user_study import collect_votes, draw_rank_chart, load_key, tally_files
from spsr.user_study.chart import rank_colours
from spsr.user_study.stats import friedman, holm, pairwise_wilcoxon
from spsr_cli.cmd_user_study_sheet import app


def test_tally_maps_labels_back_to_methods(tmp_path: Path, key_path: Path) -> None:  # noqa: F811
    key = load_key(key_path)
    votes = tmp_path / "votes"
    everyone_agrees = {i: [1, 2, 3] for i in range(4)}
    for rater in ("ann", "bo", "Zoë 測試"):
        write_votes(votes / f"{rater}.json", key, rater, everyone_agrees)
    write_votes(votes / "dee.json", key, "dee", {0: [2, 1, 3], 2: [1, 3, 2]})  # partial, 2 images
    result = tally_files(key_path, [votes])
    assert result.n_votes == 14 and result.n_raters == 4 and result.n_images_voted == 4
    assert result.counts.tolist() == [[13, 1, 0], [1, 12, 1], [0, 1, 13]]
    assert [METHODS[m] for m in result.method_order()] == ["SPSR", "ESRGAN", "SRGAN"]
    assert result.mean_ranks[0] == pytest.approx((13 + 2) / 14)
    assert result.friedman is not None and result.friedman.p_value < 1e-4
    pair = {(p.method_a, p.method_b): p for p in result.pairwise}
    assert pair[("SPSR", "SRGAN")].a_better == 14 and pair[("SPSR", "SRGAN")].significant
    as_json = result.to_json()
    assert as_json["rank_counts"]["ESRGAN"] == {"1": 1, "2": 12, "3": 1}
    assert as_json["ranking"] == ["SPSR", "ESRGAN", "SRGAN"]
    assert {f["rater"]: f["complete"] for f in as_json["files"]}["dee"] is False


def test_bad_files_are_reported_not_counted(tmp_path: Path, key_path: Path) -> None:  # noqa: F811
    key = load_key(key_path)
    votes = tmp_path / "votes"
    good = write_votes(votes / "good.json", key, "ann", {0: [1, 2, 3]})
    (votes / "broken.json").write_text("{not json", encoding="utf-8")
    (votes / "list.json").write_text("[1, 2]", encoding="utf-8")
    write_votes(votes / "other-study.json", key, "bo", {0: [1, 2, 3]}, study_id="zzz")
    write_votes(votes / "other-seed.json", key, "bo", {0: [1, 2, 3]}, seed=78)
    write_votes(votes / "tie.json", key, "cy", {0: [1, 1, 3]})
    write_votes(votes / "range.json", key, "cy", {}, votes=[{"image": 9, "ranks": [1, 2, 3]}])
    write_votes(votes / "twice.json", key, "cy", {}, votes=[{"image": 1, "ranks": [1, 2, 3]}] * 2)
    write_votes(votes / "empty.json", key, "cy", {})
    write_votes(votes / "norater.json", key, "", {0: [1, 2, 3]})
    write_votes(votes / "bool.json", key, "cy", {}, votes=[{"image": True, "ranks": [1, 2, 3]}])
    (votes / "notes.txt").write_text("ignored: not .json", encoding="utf-8")
    collection = collect_votes(
        [votes, good], key, key_path=key_path
    )  # the file given twice counts once
    assert [f.rater for f in collection.files] == ["ann"]
    reasons = {r.path.name: r.reason for r in collection.rejected}
    assert set(reasons) == {
        "broken.json",
        "list.json",
        "other-study.json",
        "other-seed.json",
        "tie.json",
        "range.json",
        "twice.json",
        "empty.json",
        "norater.json",
        "bool.json",
    }
    assert "not JSON" in reasons["broken.json"] and "another study" in reasons["other-study.json"]
    assert "permutation" in reasons["tie.json"] and "index below 4" in reasons["range.json"]
    assert "voted twice" in reasons["twice.json"] and "no votes" in reasons["empty.json"]
    with pytest.raises(ConfigError, match="no such vote file"):
        collect_votes([tmp_path / "missing.json"], key)


def test_a_rater_exporting_twice_counts_once_with_the_latest_export(
    tmp_path: Path, key_path: Path  # noqa: F811
) -> None:
    key = load_key(key_path)
    votes = tmp_path / "votes"
    late = write_votes(
        votes / "a-late.json", key, "ann", {0: [3, 2, 1], 1: [3, 2, 1]}, "2026-01-02T09:00:00Z"
    )
    early = write_votes(votes / "b-early.json", key, "ann", {0: [1, 2, 3]}, "2026-01-01T09:00:00Z")
    os.utime(early, (2e9, 2e9))  # newer on disk, but exported earlier: export time wins
    write_votes(votes / "bo.json", key, "bo", {0: [1, 2, 3]})
    result = tally_files(key_path, [votes])
    assert result.n_raters == 2 and result.n_votes == 3
    assert result.counts[2].tolist() == [2, 0, 1]  # SRGAN: ann's two rank-1 votes + bo's rank 3
    (dup,) = result.collection.duplicates
    assert dup.rater == "ann" and dup.kept == late.resolve() and dup.ignored == (early.resolve(),)


def test_friedman_matches_the_textbook_formula() -> None:
    rng = np.random.default_rng(5)
    ranks = np.array([rng.permutation(4) + 1 for _ in range(30)])
    ranks[:10, :] = [1, 2, 3, 4]
    n, k = ranks.shape
    statistic = 12 / (n * k * (k + 1)) * (ranks.sum(0) ** 2).sum() - 3 * n * (k + 1)
    result = friedman(ranks)
    assert result is not None and result.statistic == pytest.approx(statistic)
    assert result.p_value == pytest.approx(stats.chi2.sf(statistic, k - 1))
    assert friedman(ranks[:, :2]) is None and friedman(ranks[:1]) is None


def test_holm_adjustment_known_values() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    adjusted = holm([0.02, math.nan, 0.01])
    assert (
        adjusted[0] == pytest.approx(0.02)
        and math.isnan(adjusted[1])
        and adjusted[2] == pytest.approx(0.02)
    )


def test_pairwise_wilcoxon_separates_a_clear_winner_only() -> None:
    ranks = np.array([[1, 2, 3], [1, 3, 2]] * 10)  # method 0 always first; 1 and 2 split evenly
    pairs = {(p.method_a, p.method_b): p for p in pairwise_wilcoxon(ranks, ("a", "b", "c"))}
    assert pairs[("a", "b")].significant and pairs[("a", "b")].a_better == 20
    assert pairs[("b", "c")].p_value == pytest.approx(1.0) and not pairs[("b", "c")].significant
    assert pairs[("a", "b")].p_holm >= pairs[("a", "b")].p_value
    assert pairwise_wilcoxon(ranks[:1], ("a", "b", "c")) == []


def test_chart_stacks_ranks_with_best_at_the_bottom() -> None:
    counts = np.array([[10, 0, 0], [0, 5, 5], [0, 5, 5]])
    image = draw_rank_chart(["SPSR", "ESRGAN", "SRGAN"], counts, "30 votes")
    colours = rank_colours(3)
    pixels = np.asarray(image)
    # The first bar is all rank-1 colour over the full plot height; find its columns.
    mask = np.all(pixels == colours[0], axis=2)
    columns = mask.sum(axis=0) > 250  # 100 % of the 320 px plot, minus outlines
    first = np.flatnonzero(columns)
    assert first.size > 40
    bar = slice(first.min(), first.max() + 1)
    assert first.max() - first.min() + 1 == first.size  # one contiguous bar, not the legend swatch
    assert not np.all(
        pixels[:, bar] == colours[2], axis=2
    ).any()  # nothing of the worst rank in bar 1
    # Bar 2: half rank 2 (lower), half rank 3 (upper).
    rows2 = np.nonzero(
        np.all(pixels[:, first.max() + 40 : first.max() + 60] == colours[1], axis=2).any(1)
    )[0]
    rows3 = np.nonzero(
        np.all(pixels[:, first.max() + 40 : first.max() + 60] == colours[2], axis=2).any(1)
    )[0]
    assert rows3.max() < rows2.min() and abs(len(rows2) - len(rows3)) <= 3


def test_cli_tally_tables_json_chart_and_failures(tmp_path: Path, key_path: Path) -> None:  # noqa: F811
    key = load_key(key_path)
    votes = tmp_path / "votes"
    for rater in ("ann", "bo"):
        write_votes(votes / f"{rater}.json", key, rater, {i: [1, 2, 3] for i in range(4)})
    (votes / "bad.json").write_text("nope", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["tally", str(votes), "--key", str(key_path)])
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "8 votes from 2 raters on 4 of 4 images" in out and "skipped" in out
    assert "Friedman" in out and "Holm" in out
    chart = tmp_path / "study-ranks.png"
    assert chart.is_file() and Image.open(chart).size[0] > 300

    out = runner.invoke(
        app,
        ["tally", str(votes), "-k", str(key_path), "--json", "--chart", str(tmp_path / "c.png")],
    )
    data = json.loads(out.stdout)
    assert (
        data["votes"] == 8
        and data["rank_counts"]["SRGAN"]["3"] == 8
        and data["chart"].endswith("c.png")
    )
    assert [r["path"].endswith("bad.json") for r in data["rejected"]] == [True]

    none = runner.invoke(
        app, ["tally", str(votes / "bad.json"), "--key", str(key_path), "--no-chart"]
    )
    assert none.exit_code == 1 and "no vote could be counted" in none.output
    nokey = runner.invoke(app, ["tally", str(votes), "--key", str(tmp_path / "nokey.json")])
    assert (
        nokey.exit_code == 1
        and "key file not found" in flat(nokey.output)
        and "Traceback" not in nokey.output
    )
    notkey = runner.invoke(app, ["tally", str(votes), "--key", str(votes / "ann.json")])
    assert notkey.exit_code == 1 and "not a valid user-study key" in notkey.output
