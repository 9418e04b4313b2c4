"""Counting words the way a person writes them: ``1 row``, ``2 rows``, ``1,204 rows``."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun`` in the right number; ``many`` where adding "s" is wrong."""
    return f"{count:,} {noun if count == 1 else (many or noun + 's')}"
