"""The study's permutations: a tiny PRNG that the page's JavaScript implements bit for bit.

The page shows each image's results in an order drawn from ``(seed, rater, image index)``; the page
exports only those inputs and the labels' ranks, and ``tally`` recomputes the same order here. Any
change to this file must be mirrored in ``spsr/assets/study/page.html`` (block ``BEGIN prng``), and
the browser test checks that both agree.

Algorithm: FNV-1a (32 bit) over the UTF-8 bytes of ``"{seed}|{rater}|{image}"`` seeds mulberry32;
a Fisher–Yates shuffle from the last position down draws ``j = (u32 * (i + 1)) >> 32``. Every step
is exact in JavaScript doubles (products stay below 2**53), so both languages agree exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

_MASK32 = 0xFFFFFFFF


def fnv1a32(data: bytes) -> int:
    """FNV-1a 32-bit hash.

    Args:
        data: bytes to hash.

    Returns:
        the hash as an unsigned 32-bit integer.
    """
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & _MASK32
    return h


def mulberry32(state: int) -> Iterator[int]:
    """mulberry32: an endless stream of unsigned 32-bit integers from a 32-bit state.

    Args:
        state: the initial state (taken modulo 2**32).

    Returns:
        an iterator of unsigned 32-bit integers.
    """
    state &= _MASK32
    while True:
        state = (state + 0x6D2B79F5) & _MASK32
        t = state
        t = ((t ^ (t >> 15)) * (t | 1)) & _MASK32
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & _MASK32)) & _MASK32
        yield (t ^ (t >> 14)) & _MASK32


def seeded_stream(seed: int, rater: str, stream: str) -> Iterator[int]:
    """The PRNG stream for one (seed, rater, stream name) triple.

    Args:
        seed: the study seed (non-negative integer).
        rater: the rater id exactly as the page used it (the exported string).
        stream: the image index in decimal, or ``"order"`` for the image presentation order.

    Returns:
        an iterator of unsigned 32-bit integers.
    """
    return mulberry32(fnv1a32(f"{seed}|{rater}|{stream}".encode()))


def shuffled(n: int, stream: Iterator[int]) -> list[int]:
    """A permutation of ``range(n)`` by Fisher–Yates driven by ``stream``.

    Args:
        n: number of elements.
        stream: unsigned 32-bit integers (consumed ``n - 1`` of them).

    Returns:
        the permutation as a list.
    """
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = (next(stream) * (i + 1)) >> 32
        order[i], order[j] = order[j], order[i]
    return order


def label_permutation(k: int, seed: int, rater: str, image_index: int) -> list[int]:
    """Which result slot each label shows for one rater and image.

    Args:
        k: number of methods (results per image).
        seed: the study seed.
        rater: the rater id as exported by the page.
        image_index: the image's index in the study (0-based).

    Returns:
        ``perm`` with ``perm[label] = slot``: label A (0) shows slot ``perm[0]``, and so on.
    """
    return shuffled(k, seeded_stream(seed, rater, str(image_index)))


def presentation_order(n_images: int, seed: int, rater: str) -> list[int]:
    """The order in which one rater sees the images (image indices, first shown first).

    Args:
        n_images: number of images in the study.
        seed: the study seed.
        rater: the rater id as exported by the page.

    Returns:
        a permutation of ``range(n_images)``.
    """
    return shuffled(n_images, seeded_stream(seed, rater, "order"))


def label_name(index: int) -> str:
    """The label shown for a result: A, B, …, Z, then AA, AB, … (spreadsheet style).

    Args:
        index: 0-based label index.

    Returns:
        the label.
    """
    name = ""
    index += 1
    while index > 0:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name
