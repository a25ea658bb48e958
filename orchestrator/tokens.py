"""Engine tokens: HMAC-signed (JWT, HS256) claims that a socket may speak for a session.

A token carries the session id, the student id and an expiry, so a socket is checked
without a lookup. The secret comes from settings, or is generated once into the data dir.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

_ALGORITHM = "HS256"
_AUDIENCE = "tutor-engine"


class InvalidToken(Exception):
    """The token is missing, malformed, forged or expired."""


@dataclass(frozen=True)
class TokenClaims:
    session_id: str
    student_id: str
    expires_at: datetime


class TokenSigner:
    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < 32:
            raise ValueError("token secret must be at least 32 bytes")
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)

    def issue(self, session_id: str, student_id: str | int) -> str:
        now = datetime.now(UTC)
        claims = {
            "sid": session_id,
            "sub": str(student_id),
            "aud": _AUDIENCE,
            "iat": now,
            "exp": now + self._ttl,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str | None) -> TokenClaims:
        if not token:
            raise InvalidToken("no token")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["sid", "sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("token expired") from error
        except jwt.PyJWTError as error:
            raise InvalidToken(f"invalid token: {error}") from error
        return TokenClaims(
            session_id=str(claims["sid"]),
            student_id=str(claims["sub"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )


def load_or_create_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else one generated on first run and kept (mode 0600)."""
    if configured:
        return configured.encode()
    path = data_dir / "secret_key"
    if path.is_file():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another engine process wrote it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret
