"""The one Settings object: what operators' environment variables turn into."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.settings import Settings


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker compose passes `${ENGINE_API_KEY:-}` as ENGINE_API_KEY= when the operator set none."""
    for name in ("ENGINE_API_KEY", "ENGINE_PUBLIC_URL", "ENGINE_TRITON_URL", "ENGINE_SECRET_KEY"):
        monkeypatch.setenv(name, "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.api_key is None and settings.public_url is None
    assert settings.embedded_triton and settings.secret_key is None


def test_production_refuses_a_short_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_ENVIRONMENT", "production")
    monkeypatch.setenv("ENGINE_SECRET_KEY", "too short")
    with pytest.raises(ValidationError, match="ENGINE_SECRET_KEY"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("ENGINE_SECRET_KEY", "x" * 32)
    assert Settings(_env_file=None).environment == "production"  # type: ignore[call-arg]


def test_several_engines_need_a_public_url_and_a_sane_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENGINE_REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ValidationError, match="ENGINE_PUBLIC_URL"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("ENGINE_PUBLIC_URL", "https://front.example.com/e/engine-2")
    monkeypatch.setenv("ENGINE_DEAD_AFTER_S", "0.6")
    with pytest.raises(ValidationError, match="ENGINE_HEARTBEAT_S"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("ENGINE_DEAD_AFTER_S", "2")
    monkeypatch.setenv("ENGINE_ENGINE_ID", "engine-2")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.public_url == "wss://front.example.com/e/engine-2"
    assert settings.engine_name == "engine-2"
    monkeypatch.setenv("ENGINE_ENGINE_ID", "../etc")
    with pytest.raises(ValidationError, match="engine_id"):
        Settings(_env_file=None)  # type: ignore[call-arg]
