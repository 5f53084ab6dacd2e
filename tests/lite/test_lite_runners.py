"""The compilation note of spsr.lite's OpenVINO runner (no engine is loaded here: the runner's
state is set by hand; the engines themselves run in tests/engines/native_runtimes/)."""

from __future__ import annotations

from pathlib import Path

from spsr.lite.runners import COMPILE_NOTE_S, OpenVinoModel, compile_note


def _compiled(seconds: dict[tuple[int, ...], float]) -> OpenVinoModel:
    model = object.__new__(OpenVinoModel)  # as after its compilations, without loading OpenVINO
    model.compile_seconds = dict(seconds)
    return model


def test_a_noticeable_compilation_is_one_line_naming_the_shapes_and_the_cache() -> None:
    model = _compiled({(4, 3, 160, 160): 2.25, (2, 3, 160, 88): 1.0})
    assert compile_note(model, Path("/c/blobs")) == (
        "openvino compiled 2 tile shape(s) (4×3×160×160, 2×3×160×88) in 3.2 s; kept in /c/blobs, later runs load them")
    assert compile_note(model, None) == "openvino compiled 2 tile shape(s) (4×3×160×160, 2×3×160×88) in 3.2 s"


def test_quick_compilations_and_other_engines_say_nothing() -> None:
    assert compile_note(_compiled({(1, 3, 64, 64): COMPILE_NOTE_S / 2}), None) is None
    assert compile_note(_compiled({}), None) is None
    assert compile_note(object(), None) is None
    assert compile_note(None, None) is None
