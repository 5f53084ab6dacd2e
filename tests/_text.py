"""Text helpers for tests that read what a command printed."""

from __future__ import annotations


def flat(text: str) -> str:
    """Whitespace-normalised text: every run of spaces and newlines becomes one space.

    Assertions on command output go through this, so that they hold whatever the terminal width
    (``COLUMNS``) and however long the temporary paths in the output are.
    """
    return " ".join(text.split())
