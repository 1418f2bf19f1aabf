"""Finding text kept to one readable line."""

from __future__ import annotations

_MAX_MESSAGE = 240


def clip(text: str) -> str:
    """Whitespace runs as one space; past the limit, cut with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
