"""Reading the vote files raters export: validation, and one file per rater.

A vote file (written by the page) holds the rater id, the study id and seed, and per ranked image
the ranks given to labels A, B, … in label order. Files that are not valid are rejected with a
reason; when one rater exported more than once, the latest export is kept and the others reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeGuard

from spsr.errors import ConfigError
from spsr.untrusted import UntrustedJsonError, read_json
from spsr.user_study.key import StudyKey

VOTES_FORMAT = "spsr-user-study-votes"
VOTES_VERSION = 1
#: A vote file holds a few hundred rankings: a few kB. Larger ones are refused unread.
MAX_VOTE_BYTES = 16 * 1024 * 1024


class MalformedVoteFile(ValueError):
    """A vote file that cannot be counted; the message says why."""


@dataclass(frozen=True)
class VoteFile:
    """One accepted vote file.

    Attributes:
        path: where it was read from.
        rater: the rater id exactly as the page used it.
        exported_at: when the page exported it (UTC), or None when absent.
        votes: image index → ranks given to labels A, B, … (a permutation of 1..K).
    """

    path: Path
    rater: str
    exported_at: datetime | None
    votes: dict[int, tuple[int, ...]]


@dataclass(frozen=True)
class RejectedFile:
    """A file that was not counted, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class DuplicateRater:
    """A rater who exported more than once: the file kept and the ones ignored."""

    rater: str
    kept: Path
    ignored: tuple[Path, ...]


@dataclass(frozen=True)
class VoteCollection:
    """All vote files read for one study.

    Attributes:
        files: accepted files, one per rater, sorted by rater.
        rejected: files not counted (malformed, another study, no votes).
        duplicates: raters with more than one export.
    """

    files: tuple[VoteFile, ...]
    rejected: tuple[RejectedFile, ...]
    duplicates: tuple[DuplicateRater, ...]


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_vote_file(path: Path, key: StudyKey) -> VoteFile:
    """Read and validate one exported vote file.

    Args:
        path: the file.
        key: the study's answer key.

    Returns:
        the accepted file.

    Raises:
        MalformedVoteFile: the file cannot be counted; the message says why.
    """
    try:
        raw = read_json(path, "vote file", max_bytes=MAX_VOTE_BYTES)
    except UntrustedJsonError as exc:
        raise MalformedVoteFile(str(exc).removeprefix("vote file: ")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedVoteFile(f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise MalformedVoteFile(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise MalformedVoteFile("not a vote file (top level is not an object)")
    if raw.get("format") != VOTES_FORMAT:
        raise MalformedVoteFile(f"not a vote file (format {raw.get('format')!r})")
    if raw.get("version") != VOTES_VERSION:
        raise MalformedVoteFile(f"unsupported version {raw.get('version')!r}")
    if raw.get("study_id") != key.study_id:
        raise MalformedVoteFile(
            f"belongs to another study ({raw.get('study_id')!r}, key has {key.study_id!r})"
        )
    if raw.get("seed") != key.seed:
        raise MalformedVoteFile(f"seed {raw.get('seed')!r} differs from the key's {key.seed}")
    rater = raw.get("rater")
    if not isinstance(rater, str) or not rater.strip():
        raise MalformedVoteFile("no rater id")
    votes_raw = raw.get("votes")
    if not isinstance(votes_raw, list):
        raise MalformedVoteFile("no 'votes' list")
    k, n_images = key.k, len(key.images)
    expected = list(range(1, k + 1))
    votes: dict[int, tuple[int, ...]] = {}
    for position, vote in enumerate(votes_raw):
        if not isinstance(vote, dict):
            raise MalformedVoteFile(f"vote {position}: not an object")
        image, ranks = vote.get("image"), vote.get("ranks")
        if not _is_int(image) or not 0 <= image < n_images:
            raise MalformedVoteFile(
                f"vote {position}: image {image!r} is not an index below {n_images}"
            )
        if (
            not isinstance(ranks, list)
            or not all(_is_int(r) for r in ranks)
            or sorted(ranks) != expected
        ):
            raise MalformedVoteFile(
                f"vote {position}: ranks {ranks!r} are not a permutation of 1..{k}"
            )
        if image in votes:
            raise MalformedVoteFile(f"image {image} is voted twice")
        votes[image] = tuple(ranks)
    if not votes:
        raise MalformedVoteFile("no votes")
    return VoteFile(Path(path), rater, _parse_time(raw.get("exported_at")), votes)


def expand_vote_paths(paths: list[Path], exclude: Path | None = None) -> list[Path]:
    """Files given directly, plus every ``*.json`` directly inside each folder given.

    Args:
        paths: files and folders.
        exclude: a file to leave out (the key, when it sits among the votes).

    Returns:
        unique resolved paths in the order given (folders sorted by name).

    Raises:
        ConfigError: a path does not exist.
    """
    seen: dict[Path, None] = {}
    skip = exclude.resolve() if exclude is not None else None
    for path in paths:
        path = Path(path)
        if path.is_dir():
            candidates = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".json"
            )
        elif path.exists():
            candidates = [path]
        else:
            raise ConfigError(f"{path}: no such vote file or folder")
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved != skip:
                seen.setdefault(resolved, None)
    return list(seen)


def collect_votes(paths: list[Path], key: StudyKey, key_path: Path | None = None) -> VoteCollection:
    """Read every vote file, reject the bad ones and keep one file per rater (the latest export).

    Args:
        paths: vote files and folders of vote files.
        key: the study's answer key.
        key_path: the key's own path, skipped if it sits in a votes folder.

    Returns:
        the accepted, rejected and duplicate files.

    Raises:
        ConfigError: a path does not exist.
    """
    accepted: list[VoteFile] = []
    rejected: list[RejectedFile] = []
    for path in expand_vote_paths(paths, exclude=key_path):
        try:
            accepted.append(parse_vote_file(path, key))
        except MalformedVoteFile as exc:
            rejected.append(RejectedFile(path, str(exc)))

    by_rater: dict[str, list[VoteFile]] = {}
    for vote_file in accepted:
        by_rater.setdefault(vote_file.rater, []).append(vote_file)
    kept: list[VoteFile] = []
    duplicates: list[DuplicateRater] = []
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    for rater in sorted(by_rater):
        files = sorted(
            by_rater[rater],
            key=lambda f: (f.exported_at or oldest, f.path.stat().st_mtime, str(f.path)),
        )
        kept.append(files[-1])
        if len(files) > 1:
            duplicates.append(
                DuplicateRater(rater, files[-1].path, tuple(f.path for f in files[:-1]))
            )
    return VoteCollection(tuple(kept), tuple(rejected), tuple(duplicates))
