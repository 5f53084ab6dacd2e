"""Splitting a file list between processes: ``--shard K/N``, or torchrun's / a SLURM array's.

Shard ``K`` of ``N`` (``K`` from 0) takes every ``N``-th file of the list sorted by path, starting
at the ``K``-th: deterministic (every process computes the same split without talking to the
others), balanced to one file, and independent of the order the files were found in. Without
``--shard`` the environment decides: ``RANK``/``WORLD_SIZE`` (torchrun), else
``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT`` (counted from ``SLURM_ARRAY_TASK_MIN``), else
one process does everything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from spsr.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``, and where that came from (for messages)."""

    index: int
    count: int
    source: str = "--shard"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def take(self, items: Sequence[T], key: Callable[[T], str] = str) -> list[T]:
        """This shard's items: every ``count``-th of ``items`` sorted by ``key``, from ``index``."""
        ordered = sorted(items, key=key)
        return ordered[self.index::self.count]


def parse_shard(text: str) -> Shard:
    """``K/N`` → :class:`Shard`.

    Raises:
        ConfigError: not two integers with 0 ≤ K < N.
    """
    try:
        k, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: give K/N, e.g. 0/4 (shards counted from 0)") from None
    if n < 1 or not 0 <= k < n:
        raise ConfigError(f"--shard {text}: K must be 0 … N-1 (shards counted from 0)")
    return Shard(k, n)


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    try:
        return int(value) if value else None
    except ValueError:
        raise ConfigError(f"{name}={value!r} in the environment is not an integer") from None


def resolve_shard(option: str | None, env: Mapping[str, str] | None = None) -> Shard | None:
    """The shard of this process: ``--shard`` when given, else torchrun's or SLURM's variables;
    None for a single process (or ``--shard 0/1``).

    Raises:
        ConfigError: a malformed ``--shard`` or inconsistent environment variables.
    """
    env = os.environ if env is None else env
    if option is not None:
        shard = parse_shard(option)
    else:
        rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
        task, count = _int(env, "SLURM_ARRAY_TASK_ID"), _int(env, "SLURM_ARRAY_TASK_COUNT")
        if world is not None and world > 1:
            if rank is None or not 0 <= rank < world:
                raise ConfigError(f"RANK={rank} is not within WORLD_SIZE={world}")
            shard = Shard(rank, world, "torchrun RANK/WORLD_SIZE")
        elif count is not None and count > 1 and task is not None:
            index = task - (_int(env, "SLURM_ARRAY_TASK_MIN") or 0)
            if not 0 <= index < count:
                raise ConfigError(f"SLURM_ARRAY_TASK_ID={task} is outside an array of {count} tasks "
                                  "(use a contiguous array, e.g. --array=0-3, or give --shard)")
            shard = Shard(index, count, "SLURM array")
        else:
            return None
    return None if shard.count == 1 else shard
