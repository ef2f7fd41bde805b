"""Annotators and their tokens: made once per name and kept in the store, so the links stay valid across restarts.

A token is the annotator's only credential (the page sends it as a cookie, API clients as ``Authorization: Bearer``).
Tokens are looked up by their SHA-256, so the lookup's timing says nothing about a guessed token's prefix.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from typing import Sequence

from annotation.store import Store

__all__ = ["NAME_PATTERN", "check_name", "read_tokens_file", "ensure_annotators", "TokenTable"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_MIN_TOKEN_LENGTH = 16  # characters; generated tokens are 22 (128 random bits)


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"annotator name {name!r}: use 1-32 letters, digits, '_', '.', '-' (starting with a letter "
                         "or digit)")
    return name


def read_tokens_file(path: str | Path) -> dict[str, str]:
    """``{name: token}`` from a file of ``name token`` lines (``#`` starts a comment)."""
    tokens: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'name token', got {len(parts)} fields")
        name, token = check_name(parts[0]), parts[1]
        if len(token) < _MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
            raise ValueError(f"{path}:{number}: the token of {name} must be at least {_MIN_TOKEN_LENGTH} printable "
                             "ASCII characters")
        if name in tokens or token in tokens.values():
            raise ValueError(f"{path}:{number}: {name} or its token appears twice")
        tokens[name] = token
    return tokens


def ensure_annotators(store: Store, *, names: Sequence[str] = (), tokens: dict[str, str] | None = None
                      ) -> dict[str, str]:
    """Add annotators to the store — ``names`` with new random tokens (a name known already keeps its token),
    ``tokens`` as given — and return every annotator's ``{name: token}``. With none at all, one named
    ``annotator`` is made."""
    with store.transaction():
        known = store.annotators()
        for name in names:
            if check_name(name) not in known:
                store.set_annotator(name, secrets.token_urlsafe(16))
        for name, token in (tokens or {}).items():
            store.set_annotator(check_name(name), token)
        if not store.annotators():
            store.set_annotator("annotator", secrets.token_urlsafe(16))
        return store.annotators()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenTable:
    """Who a token belongs to."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self._names = {_digest(token): name for name, token in tokens.items()}

    def annotator(self, token: str | None) -> str | None:
        if not token:
            return None
        return self._names.get(_digest(token))
