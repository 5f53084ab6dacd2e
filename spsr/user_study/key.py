"""The answer key: which hidden result slot holds which method, per image. Never inside the page.

The page lists each image's results in *slot* order, a secret shuffle made at build time, so the
page's source reveals no method identity. A label (A, B, …) shows slot
``label_permutation(k, seed, rater, image)[label]``; the key maps slot → method.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spsr.atomic import write_text_atomic
from spsr.errors import ConfigError
from spsr.untrusted import UntrustedJsonError, read_json

KEY_FORMAT = "spsr-user-study-key"
KEY_VERSION = 1


@dataclass(frozen=True)
class KeyImage:
    """One image of the study as the key records it.

    Attributes:
        stem: the HR image's stem.
        slots: ``slots[slot]`` is the index (into ``StudyKey.methods``) of the method in that slot.
        sources: the source file of each method's result, in method order (for the record).
        hr: the HR reference file.
        crop: the zoomed crop ``[x, y, w, h]`` shown, or None.
    """

    stem: str
    slots: tuple[int, ...]
    sources: tuple[str, ...] = ()
    hr: str = ""
    crop: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class StudyKey:
    """Everything ``tally`` needs to turn exported labels back into methods.

    Attributes:
        study_id: random id shared by the page, the key and every vote file.
        seed: the seed of the per-rater permutations (also in the page).
        methods: method names, in the order given to ``build``.
        images: one entry per study image, by image index.
        created: ISO timestamp of the build.
        folder: the study folder, as written at build time.
    """

    study_id: str
    seed: int
    methods: tuple[str, ...]
    images: tuple[KeyImage, ...]
    created: str = ""
    folder: str = ""

    @property
    def k(self) -> int:
        """Number of methods (results per image)."""
        return len(self.methods)

    def method_of_slot(self, image_index: int, slot: int) -> int:
        """The method index shown in ``slot`` of image ``image_index``."""
        return self.images[image_index].slots[slot]

    def to_json(self) -> dict[str, Any]:
        """The key as a JSON-ready dict (the file format)."""
        return {
            "format": KEY_FORMAT,
            "version": KEY_VERSION,
            "study_id": self.study_id,
            "seed": self.seed,
            "created": self.created,
            "folder": self.folder,
            "methods": list(self.methods),
            "images": [
                {
                    "index": i,
                    "stem": img.stem,
                    "slots": list(img.slots),
                    "hr": img.hr,
                    "sources": list(img.sources),
                    "crop": list(img.crop) if img.crop else None,
                }
                for i, img in enumerate(self.images)
            ],
        }


def write_key(key: StudyKey, path: Path) -> None:
    """Write the key atomically (temporary file in the same folder, then rename).

    Args:
        key: the key.
        path: destination file.
    """
    # Mode 0600 whatever the umask: the key reveals which method made which picture.
    text = json.dumps(key.to_json(), indent=1, ensure_ascii=False) + "\n"
    write_text_atomic(path, text, private=True)


def _fail(path: Path, what: str) -> ConfigError:
    return ConfigError(f"{path}: not a valid user-study key ({what})")


def load_key(path: Path) -> StudyKey:
    """Read and validate a key file.

    Args:
        path: the key file written by ``build``.

    Returns:
        the key.

    Raises:
        ConfigError: the file is missing, not JSON, or not a consistent key.
    """
    try:
        raw = read_json(path, "key file")
    except FileNotFoundError:
        raise ConfigError(f"{path}: key file not found") from None
    except UntrustedJsonError as exc:
        raise _fail(path, str(exc).removeprefix("key file: ")) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"cannot read JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != KEY_FORMAT:
        raise _fail(path, f"format is not {KEY_FORMAT!r}")
    if raw.get("version") != KEY_VERSION:
        raise _fail(path, f"unsupported version {raw.get('version')!r}")
    try:
        methods = tuple(str(m) for m in raw["methods"])
        seed = raw["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise _fail(path, "seed")
        images = []
        for entry in raw["images"]:
            slots = tuple(int(s) for s in entry["slots"])
            if sorted(slots) != list(range(len(methods))):
                raise _fail(path, f"image {entry.get('stem')!r}: slots are not a permutation")
            crop = entry.get("crop")
            images.append(
                KeyImage(
                    stem=str(entry["stem"]),
                    slots=slots,
                    sources=tuple(str(s) for s in entry.get("sources", ())),
                    hr=str(entry.get("hr", "")),
                    crop=tuple(int(c) for c in crop) if crop else None,  # type: ignore[arg-type]
                )
            )
        key = StudyKey(
            study_id=str(raw["study_id"]),
            seed=seed,
            methods=methods,
            images=tuple(images),
            created=str(raw.get("created", "")),
            folder=str(raw.get("folder", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"missing or bad field: {exc}") from None
    if len(methods) < 2 or not images:
        raise _fail(path, "needs at least two methods and one image")
    return key
