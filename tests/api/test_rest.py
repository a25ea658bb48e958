"""The management REST API of ../shared/PROTOCOL.md, on the running engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask
from benchmarks.harness.processes import EngineProcess, TritonProcess

pytestmark = pytest.mark.serving


def test_health_reports_triton_and_its_models(engine: EngineProcess) -> None:
    body = engine.health().json()
    assert body["status"] == "healthy" and body["service"] == "GPU Server"
    assert body["triton"]["ready"] is True
    assert body["triton"]["models"] == {
        "asr": True,
        "embed": True,
        "embed_zh": True,
        "face_detect": True,
        "face_mesh": True,
        "lipsync": True,
        "tts": True,
        "tts_zh": True,
        "turn": True,  # hands-free end of turn (the VAD runs in the engine by default)
    }
    assert body["triton"]["mode"] == "external"


def test_create_read_delete(engine: EngineProcess) -> None:
    created = engine.create_session(tutor_id=1, student_id=123, kb_id="science")
    assert created["status"] == "active"
    session_id = created["session_id"]
    assert created["engine_url"] == f"{engine.base_url.replace('http', 'ws')}/ws/ws/{session_id}"
    assert created["engine_token"].count(".") == 2

    read = httpx.get(f"{engine.base_url}/v1/sessions/{session_id}").json()
    assert read["session_id"] == session_id and read["tutor_id"] == 1 and read["student_id"] == 123
    assert read["status"] == "active" and read["kb_id"] == "science"
    assert read["created_at"] <= read["last_activity"]

    assert httpx.delete(f"{engine.base_url}/v1/sessions/{session_id}").status_code == 204
    assert httpx.get(f"{engine.base_url}/v1/sessions/{session_id}").status_code == 404
    assert httpx.delete(f"{engine.base_url}/v1/sessions/{session_id}").status_code == 404


def test_engine_url_follows_the_host_the_backend_called(engine: EngineProcess) -> None:
    response = httpx.post(
        f"{engine.base_url}/v1/sessions",
        json={"tutor_id": 1, "student_id": 5},
        headers={"Host": "engine.internal:9000", "X-Forwarded-Proto": "https"},
    )
    assert response.json()["engine_url"].startswith("wss://engine.internal:9000/ws/ws/")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"student_id": 1}, "tutor_id"),
        ({"tutor_id": 1}, "student_id"),
        ({"tutor_id": "one", "student_id": 1}, "tutor_id"),
        ({"tutor_id": 999, "student_id": 1}, "unknown tutor_id 999"),
        ({"tutor_id": 1, "student_id": "bad id with spaces"}, "student_id"),
    ],
)
def test_bad_requests_are_422_with_a_reason(
    engine: EngineProcess, body: dict[str, object], words: str
) -> None:
    response = httpx.post(f"{engine.base_url}/v1/sessions", json=body)
    assert response.status_code == 422
    assert words in response.text


def test_unknown_session_is_404(engine: EngineProcess) -> None:
    response = httpx.get(f"{engine.base_url}/v1/sessions/no-such-session")
    assert response.status_code == 404 and "not found" in response.json()["detail"]


def test_openapi_docs_are_served(engine: EngineProcess) -> None:
    assert httpx.get(f"{engine.base_url}/docs").status_code == 200
    paths = httpx.get(f"{engine.base_url}/openapi.json").json()["paths"]
    assert {"/health", "/v1/sessions", "/v1/sessions/{session_id}"} <= set(paths)


@pytest.fixture(scope="module")
def strict_engine(triton: TritonProcess, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """An engine with an API key and sessions that expire after one idle second."""
    process = EngineProcess(
        tmp_path_factory.mktemp("strict"),
        env={
            "ENGINE_TRITON_URL": triton.grpc_url,
            "ENGINE_API_KEY": "k" * 24,
            "ENGINE_SESSION_TTL_S": "1",
            "ENGINE_SESSION_SWEEP_INTERVAL_S": "0.2",
            "ENGINE_PUBLIC_URL": "https://tutor.example.com/",
        },
    ).start()
    yield process
    process.stop()


def test_the_api_key_guards_the_management_api(strict_engine: EngineProcess) -> None:
    url = f"{strict_engine.base_url}/v1/sessions"
    body = {"tutor_id": 1, "student_id": 1}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = httpx.post(url, json=body, headers={"Authorization": "Bearer " + "k" * 24})
    assert ok.status_code == 200
    assert ok.json()["engine_url"].startswith("wss://tutor.example.com/ws/ws/")
    assert strict_engine.health().status_code == 200  # health checks need no key


async def test_idle_sessions_expire_but_connected_ones_do_not(strict_engine: EngineProcess) -> None:
    auth = {"Authorization": "Bearer " + "k" * 24}
    idle = strict_engine.create_session(headers=auth)
    held = strict_engine.create_session(headers=auth)
    url = strict_engine.ws_url(held["session_id"], held["engine_token"])
    async with connect(url) as ws:
        await asyncio.sleep(1.6)
        assert (
            httpx.get(
                f"{strict_engine.base_url}/v1/sessions/{idle['session_id']}", headers=auth
            ).status_code
            == 404
        )
        assert (
            httpx.get(
                f"{strict_engine.base_url}/v1/sessions/{held['session_id']}", headers=auth
            ).status_code
            == 200
        )
        reply = await ask(ws, type="text", content="Still there?")
        assert reply["type"] == "text"


def test_tokens_survive_an_engine_restart(triton: TritonProcess, tmp_path: Path) -> None:
    """The generated secret is kept in the data dir, so issued tokens stay valid."""
    first = EngineProcess(tmp_path, env={"ENGINE_TRITON_URL": triton.grpc_url}).start()
    token = first.create_session()["engine_token"]
    first.stop()
    second = EngineProcess(tmp_path, env={"ENGINE_TRITON_URL": triton.grpc_url}).start()
    try:
        response = httpx.get(f"{second.base_url}/health")
        assert response.status_code == 200
        secret = (tmp_path / "data" / "secret_key").read_bytes()
        from orchestrator.tokens import TokenSigner

        assert TokenSigner(secret, 60).verify(token).student_id == "123"
    finally:
        second.stop()
