"""Folder-level evaluation: pairing by name, degrade-upscale-score, best rows, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from skimage import data as skdata

from spsr.data.image_io import write_image
from spsr.errors import ConfigError
from spsr.metrics import EvalSettings, MetricInputError, MetricSuite, calculate_psnr, parse_metrics
from spsr.metrics.score_folders import (
    DatasetResult,
    best_models,
    bicubic_upscaler,
    dataset_name,
    match_hr_size,
    pair_images,
    pairing_key,
    results_csv,
    results_json,
    score_pairs,
    score_upscaler,
)
from spsr.ops import bicubic_degrade, imresize_np


def _img(seed: int, h: int = 40, w: int = 44) -> np.ndarray:
    astro = skdata.astronaut()
    return np.ascontiguousarray(astro[seed * 30 : seed * 30 + h, seed * 20 : seed * 20 + w])


@pytest.mark.parametrize(
    "stem, key",
    [("baby_x4_SR", "baby"), ("Baby", "baby"), ("0801x4", "0801"), ("img_001_out", "img_001"),
     ("butterfly-SPSR", "butterfly"), ("head_GT", "head"), ("x4", "x4"), ("SR_out", "sr")],
)
def test_pairing_key_strips_sr_tool_suffixes(stem, key):
    assert pairing_key(stem) == key


def test_pair_images_by_stem_and_suffix_lists_unmatched(tmp_path):
    sr_dir, hr_dir = tmp_path / "sr", tmp_path / "hr"
    for name in ("baby_x4_SR.png", "bird.png", "stray_out.png", "notes.txt"):
        (sr_dir).mkdir(exist_ok=True)
        if name.endswith(".png"):
            write_image(sr_dir / name, _img(1))
        else:
            (sr_dir / name).write_text("not an image")
    for name in ("baby.png", "bird.png", "woman.png"):
        hr_dir.mkdir(exist_ok=True)
        write_image(hr_dir / name, _img(1))
    pairing = pair_images(sr_dir, hr_dir)
    assert [(n, s.name, h.name) for n, s, h in pairing.pairs] == [
        ("baby", "baby_x4_SR.png", "baby.png"), ("bird", "bird.png", "bird.png")
    ]
    assert [p.name for p in pairing.unmatched_sr] == ["stray_out.png"]
    assert [p.name for p in pairing.unmatched_hr] == ["woman.png"]


def test_pairing_errors(tmp_path):
    sr_dir, hr_dir, empty = tmp_path / "sr", tmp_path / "hr", tmp_path / "empty"
    for d in (sr_dir, hr_dir, empty):
        d.mkdir()
    write_image(sr_dir / "a.png", _img(0))
    write_image(hr_dir / "b.png", _img(0))
    with pytest.raises(MetricInputError, match=r"no file in .* matches"):
        pair_images(sr_dir, hr_dir)
    with pytest.raises(MetricInputError, match="holds no image files"):
        pair_images(sr_dir, empty)
    with pytest.raises(MetricInputError, match="is not a folder"):
        pair_images(tmp_path / "missing", hr_dir)
    write_image(sr_dir / "b_x4.png", _img(0))
    write_image(sr_dir / "b_SR.png", _img(0))
    with pytest.raises(MetricInputError, match=r"both match b\.png"):
        pair_images(sr_dir, hr_dir)


def test_dataset_name_skips_generic_folder_names(tmp_path):
    assert dataset_name(tmp_path / "Set5" / "HR") == "Set5"
    assert dataset_name(tmp_path / "Urban100") == "Urban100"


def test_hr_is_mod_cropped_to_the_sr_size_or_refused():
    hr = _img(0, 42, 45)
    assert match_hr_size(hr[:40, :44], hr, 4, "x").shape == (40, 44, 3)
    assert match_hr_size(hr, hr, 4, "x") is hr
    with pytest.raises(MetricInputError, match="is --scale right"):
        match_hr_size(hr[:20, :22], hr, 4, "a.png / b.png")


def test_score_pairs_and_upscaler_give_the_same_numbers_for_bicubic(tmp_path):
    hr_dir, sr_dir = tmp_path / "Set" / "HR", tmp_path / "sr"
    suite = MetricSuite(EvalSettings.for_protocol(parse_metrics("psnr,ssim"), 4))
    paths = []
    for i in range(2):
        paths.append(hr_dir / f"im{i}.png")
        write_image(paths[-1], _img(i, 43, 50))  # not multiples of 4: mod-crop needed
        hr, lr = bicubic_degrade(_img(i, 43, 50), 4)
        write_image(sr_dir / f"im{i}_x4.png", imresize_np(lr, 4))
    seen: list[str] = []
    direct = score_upscaler(paths, bicubic_upscaler(4), suite, 4, "Set", "Bicubic",
                            save_dir=tmp_path / "saved", on_image=seen.append)
    assert seen == ["im0", "im1"]
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == ["im0.png", "im1.png"]
    from_files = score_pairs(pair_images(sr_dir, hr_dir), suite, 4, "Set", "files")
    assert [n for n, _ in from_files.images] == ["im0", "im1"]
    for (_, a), (_, b) in zip(direct.images, from_files.images, strict=True):
        assert a == b
    hr, lr = bicubic_degrade(_img(1, 43, 50), 4)
    assert direct.images[1][1]["psnr"] == calculate_psnr(imresize_np(lr, 4), hr, 4)
    with pytest.raises(MetricInputError, match="expected 48x40"):
        score_upscaler(paths[:1], bicubic_upscaler(2), suite, 4, "Set", "x2 model")


def test_best_rows_follow_each_metrics_direction():
    a = DatasetResult("S", "A", [("i", {"psnr": 30.0, "lpips": 0.2, "pi": 3.0})])
    b = DatasetResult("S", "B", [("i", {"psnr": 29.0, "lpips": 0.1, "pi": 3.0})])
    assert best_models([a, b]) == {"psnr": {"A"}, "lpips": {"B"}, "pi": {"A", "B"}}
    inf = DatasetResult("S", "C", [("i", {"psnr": math.inf, "lpips": 0.3, "pi": 9.0})])
    assert best_models([a, inf])["psnr"] == {"A"}  # identical images do not win the table


def test_csv_and_json_hold_every_score_and_the_conventions():
    suite = MetricSuite(EvalSettings.for_protocol(("psnr", "ssim"), 4))
    rows = [
        DatasetResult("Set5", "A", [("baby", {"psnr": 30.5, "ssim": 0.9}),
                                    ("bird", {"psnr": math.inf, "ssim": 1.0})]),
        DatasetResult("Set5", "B", [("baby", {"psnr": 29.0, "ssim": 0.8}),
                                    ("bird", {"psnr": 31.0, "ssim": 0.85})]),
    ]
    table = list(csv.reader(io.StringIO(results_csv(rows))))
    assert table[0] == ["dataset", "model", "image", "psnr", "ssim"]
    assert table[1] == ["Set5", "A", "baby", "30.5", "0.9"] and table[2][3] == "inf"
    payload = json.loads(results_json(rows, suite, {"scale": 4}))
    assert payload["scale"] == 4
    assert payload["settings"]["crop_border"] == 4 and payload["settings"]["y_channel"] is True
    assert "rgb2ycbcr" in payload["conventions"]["y_channel"]
    assert payload["better"] == {"psnr": "higher", "ssim": "higher"}
    set5 = payload["datasets"]["Set5"]
    assert set5["models"]["B"]["mean"] == {"psnr": 30.0, "ssim": 0.825}
    assert set5["models"]["A"]["images"]["bird"]["psnr"] == "inf"
    assert set5["models"]["A"]["mean"]["psnr"] == "inf"
    assert set5["best"] == {"psnr": ["B"], "ssim": ["A"]}  # an infinite mean does not compete


def test_metric_names_are_parsed_in_canonical_order():
    assert parse_metrics("ssim, psnr") == ("psnr", "ssim")
    assert parse_metrics("all") == ("psnr", "ssim", "lpips", "niqe", "ma", "pi", "gradmap_l1")
    with pytest.raises(ConfigError, match="unknown metric"):
        parse_metrics("psnr,fid")
    with pytest.raises(ConfigError, match="no metric"):
        parse_metrics(" , ")


def test_protocols_resolve_in_one_place_and_options_override_single_conventions():
    from spsr.metrics.conventions import resolve_protocol

    spsr = resolve_protocol("spsr", 4)
    assert (spsr.crop_border, spsr.y_channel, spsr.pi_border, spsr.ssim_downsample) == (4, True, 4, True)
    assert spsr.overrides == () and spsr.label == "spsr"
    basicsr = resolve_protocol("BasicSR", 3)
    assert basicsr.protocol == "basicsr" and basicsr.crop_border == 3 and not basicsr.ssim_downsample
    # An option equal to the preset is no override; a different one is, and the label says so.
    same = resolve_protocol("spsr", 4, crop_border=4, ssim_downsample=True)
    assert same.overrides == ()
    mixed = resolve_protocol("spsr", 4, crop_border=0, ssim_downsample=False, y_channel=False)
    assert mixed.overrides == ("crop_border", "y_channel", "ssim_downsample")
    assert mixed.label == "spsr + crop_border=0, y_channel=off, ssim_downsample=off"
    with pytest.raises(ConfigError, match="unknown protocol 'matlab'; choose from spsr, basicsr"):
        resolve_protocol("matlab", 4)
    with pytest.raises(ConfigError, match="pi border must be >= 0"):
        resolve_protocol("spsr", 4, pi_border=-1)


def test_the_protocol_decides_the_ssim_and_is_recorded_in_csv_and_json():
    hr = np.ascontiguousarray(skdata.astronaut()[:400, :400])  # 392 px after shaving: f = 2
    _, lr = bicubic_degrade(hr, 4)
    sr = imresize_np(lr, 4)
    scores = {}
    for name in ("spsr", "basicsr"):
        suite = MetricSuite(EvalSettings.for_protocol(("psnr", "ssim"), 4, name))
        scores[name] = suite.score(sr, hr)
        described = suite.describe()
        assert described["protocol"]["name"] == name and described["settings"]["protocol"] == name
        assert "TPAMI 2021" in described["protocol"]["reproduces"] or name == "basicsr"
    assert scores["spsr"]["psnr"] == scores["basicsr"]["psnr"]
    assert scores["spsr"]["ssim"] > scores["basicsr"]["ssim"] + 0.01
    override = EvalSettings.for_protocol(("ssim",), 4, "spsr", ssim_downsample=False)
    assert MetricSuite(override).score(sr, hr)["ssim"] == scores["basicsr"]["ssim"]
    payload = json.loads(results_json([DatasetResult("S", "A", [("i", {"ssim": 0.5})])],
                                      MetricSuite(override)))
    assert payload["protocol"]["label"] == "spsr + ssim_downsample=off"
    assert payload["protocol"]["overrides"] == {"ssim_downsample": False}
    assert "ssim.m" in payload["conventions"]["ssim_downsample"]
    rows = list(csv.DictReader(io.StringIO(results_csv(
        [DatasetResult("S", "A", [("i", {"ssim": 0.5})])], "basicsr"))))
    assert rows == [{"dataset": "S", "model": "A", "image": "i", "protocol": "basicsr", "ssim": "0.5"}]


def test_settings_hold_one_scoring_that_the_results_file_records_and_gives_back():
    from spsr.metrics.conventions import Scoring, resolve_protocol

    plain = EvalSettings.for_protocol(("ssim",), 4, "basicsr")
    assert plain.scoring == resolve_protocol("basicsr", 4)
    assert plain.scoring.ssim_downsample is False and plain.scoring.label == "basicsr"  # the protocol's
    forced = EvalSettings.for_protocol(("ssim",), 4, "basicsr", ssim_downsample=True, y_channel=False,
                                       lpips_backbone="/a.pth")
    assert forced.scoring.overrides == ("y_channel", "ssim_downsample")
    assert forced.scoring.label == "basicsr + y_channel=off, ssim_downsample=on"
    record = forced.record()  # the results file's flat settings, in their historical order
    assert list(record) == ["metrics", "crop_border", "y_channel", "pi_border", "lpips_backbone",
                            "ma_model", "device", "protocol", "ssim_downsample", "overrides"]
    assert record["overrides"] == ["y_channel", "ssim_downsample"]
    back = json.loads(json.dumps(record))
    assert EvalSettings.from_record(back) == forced and Scoring.from_record(back) == forced.scoring
    with pytest.raises(ConfigError, match="unknown protocol"):
        EvalSettings.for_protocol(("ssim",), 4, "nope")
    with pytest.raises(ConfigError, match="unknown protocol"):
        EvalSettings.from_record({**back, "protocol": "nope"})
    with pytest.raises(ConfigError, match="scoring conventions"):
        EvalSettings.from_record({"metrics": ["ssim"], "crop_border": 4})
