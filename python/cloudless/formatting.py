"""Small text helpers shared by CLI output and log messages."""

from __future__ import annotations

__all__ = ["format_count"]


def format_count(count: int, noun: str, plural: str | None = None) -> str:
    """Format `count` with `noun` in the singular for 1 and in the plural otherwise: "1 worker", "2 workers".

    `plural` defaults to `noun` + "s".
    """
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural or noun + 's'}"
