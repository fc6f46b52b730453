"""Tokens and what they grant: read-write tokens, read-only tokens, constant-time checks."""

from __future__ import annotations

import enum
import hmac
import re
from typing import Iterable, Optional


class Access(enum.IntEnum):
    """What a request may do; a higher level includes the lower ones."""

    NONE = 0
    READ = 1
    WRITE = 2


class TokenSet:
    """The configured tokens. With none configured everything is open, as in the guide."""

    def __init__(self, write: Iterable[str] = (), read: Iterable[str] = ()) -> None:
        self._write = tuple(_encoded(t) for t in write if t)
        self._read = tuple(_encoded(t) for t in read if t)

    @property
    def enabled(self) -> bool:
        return bool(self._write or self._read)

    def access(self, token: Optional[str]) -> Access:
        """The access `token` grants; compares against every token so timing says nothing."""
        if not self.enabled:
            return Access.WRITE
        if not token:
            return Access.NONE
        candidate = _encoded(token)
        is_write = _matches_any(candidate, self._write)
        is_read = _matches_any(candidate, self._read)
        if is_write:
            return Access.WRITE
        return Access.READ if is_read else Access.NONE

    def __repr__(self) -> str:
        return f"TokenSet(write=<{len(self._write)} redacted>, read=<{len(self._read)} redacted>)"


def _encoded(token: str) -> bytes:
    return token.encode("utf-8", "surrogateescape")


def _matches_any(candidate: bytes, tokens: Iterable[bytes]) -> bool:
    found = False
    for token in tokens:
        found |= hmac.compare_digest(candidate, token)
    return found


def bearer_token(authorization: Optional[str]) -> Optional[str]:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&#]*", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """`uri` with the value of every `token` query parameter replaced, for logs."""
    return _TOKEN_IN_QUERY.sub(r"\1REDACTED", uri)
