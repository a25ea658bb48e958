import os
import time

import jwt
import pytest

from orchestrator.tokens import InvalidToken, TokenSigner, load_or_create_secret

SECRET = b"s" * 32


def test_a_token_carries_session_student_and_expiry() -> None:
    signer = TokenSigner(SECRET, ttl_s=60)
    claims = signer.verify(signer.issue("session-1", 123))
    assert claims.session_id == "session-1"
    assert claims.student_id == "123"
    assert 50 < claims.expires_at.timestamp() - time.time() <= 60


@pytest.mark.parametrize("token", [None, "", "garbage", "a.b.c"])
def test_malformed_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(InvalidToken):
        TokenSigner(SECRET, 60).verify(token)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    forged = TokenSigner(b"x" * 32, 60).issue("session-1", 123)
    with pytest.raises(InvalidToken, match="invalid token"):
        TokenSigner(SECRET, 60).verify(forged)


def test_an_expired_token_is_refused() -> None:
    expired = jwt.encode(
        {"sid": "s", "sub": "1", "aud": "tutor-engine", "exp": int(time.time()) - 5},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="expired"):
        TokenSigner(SECRET, 60).verify(expired)


def test_a_tampered_claim_breaks_the_signature() -> None:
    token = TokenSigner(SECRET, 60).issue("session-1", 123)
    header, _, signature = token.split(".")
    other = TokenSigner(SECRET, 60).issue("session-2", 999).split(".")[1]
    with pytest.raises(InvalidToken):
        TokenSigner(SECRET, 60).verify(f"{header}.{other}.{signature}")


def test_short_secrets_are_rejected() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenSigner(b"short", 60)


def test_the_generated_secret_is_kept_private_and_reused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = load_or_create_secret(None, tmp_path)
    assert len(first) >= 32
    assert load_or_create_secret(None, tmp_path) == first
    assert os.stat(tmp_path / "secret_key").st_mode & 0o777 == 0o600
    assert load_or_create_secret("configured" * 4, tmp_path) == b"configured" * 4
