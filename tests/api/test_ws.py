"""The WebSocket protocol of ../shared/PROTOCOL.md, both connection modes, on the real engine."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from benchmarks.harness.client import ask, receive, send, wav_info
from benchmarks.harness.processes import EngineProcess
from orchestrator.tokens import TokenSigner

pytestmark = pytest.mark.serving


def secret_of(engine: EngineProcess) -> bytes:
    return (engine.workdir / "data" / "secret_key").read_bytes().strip()


async def assert_error(
    ws: ClientConnection, code: str, words: str = "", **message: object
) -> dict[str, object]:
    if "raw" in message:
        await ws.send(message["raw"])  # type: ignore[arg-type]
        reply = await receive(ws)
    else:
        reply = await ask(ws, **message)
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert words in reply["content"], reply
    assert reply["timestamp"]
    return reply


# --- session-based -------------------------------------------------------------------------


@pytest.mark.parametrize("proxied", [True, False], ids=["/ws/ws/", "/ws/"])
async def test_text_gets_a_spoken_reply(engine: EngineProcess, proxied: bool) -> None:
    session = engine.create_session(tutor_id=1, student_id=42)
    async with connect(
        engine.ws_url(session["session_id"], session["engine_token"], proxied)
    ) as ws:
        started = time.monotonic()
        reply = await ask(ws, type="text", content="What is photosynthesis?")
        elapsed = time.monotonic() - started
    assert reply["type"] == "text" and reply["role"] == "assistant"
    assert "photosynthesis" in reply["content"].lower()
    assert reply["engine_session_id"] == session["session_id"]
    rate, seconds = wav_info(reply["audio"])
    assert rate == 22050 and seconds > 2.0
    assert elapsed < 30
    state = httpx.get(f"{engine.base_url}/v1/sessions/{session['session_id']}").json()
    assert state["turns"] == 1


async def test_the_session_socket_survives_every_error(engine: EngineProcess) -> None:
    session = engine.create_session(student_id=43)
    other = engine.create_session(student_id=43)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        await assert_error(ws, "malformed_json", "not valid JSON", raw="{not json")
        await assert_error(ws, "unknown_type", "'dance'", type="dance")
        await assert_error(ws, "invalid_message", "'content' is required", type="text")
        await assert_error(ws, "invalid_message", "'data' is required", type="audio")
        await assert_error(
            ws, "invalid_message", "'user_id' is required", type="webrtc_offer", sdp="v=0"
        )
        await assert_error(
            ws,
            "invalid_message",
            "'user_id' is required",
            type="webrtc_ice_candidate",
            candidate=None,
        )
        await assert_error(
            ws, "forbidden_user", "user_id 7", type="webrtc_offer", sdp="v=0", user_id=7
        )
        await assert_error(
            ws, "invalid_webrtc", "offer", type="webrtc_offer", sdp="v=0", user_id=43
        )
        await assert_error(ws, "invalid_audio", "could not decode", type="audio", data="UklGRg==")
        await assert_error(
            ws, "unknown_avatar", "valid ids", type="text", content="hi", avatar_id="nobody"
        )
        await assert_error(
            ws, "forbidden_session", "speaks for session", type="text", content="hi",
            engine_session_id=other["session_id"],
        )  # fmt: skip
        await assert_error(ws, "text_too_long", "limit is 2000", type="text", content="a" * 2001)
        await ws.send(b"\x00\x01binary")
        assert (await receive(ws))["code"] == "binary_frame"
        reply = await ask(ws, type="text", content="Are you still there?")
        assert reply["type"] == "text" and reply["audio"]


async def test_a_deleted_session_closes_its_socket_with_a_reason(engine: EngineProcess) -> None:
    session = engine.create_session(student_id=44)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        httpx.delete(f"{engine.base_url}/v1/sessions/{session['session_id']}")
        with pytest.raises(ConnectionClosed) as closed:
            await ask(ws, type="text", content="hi", timeout_s=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "deleted" in closed.value.rcvd.reason


async def test_asking_a_deleted_session_from_a_user_socket_gets_an_error(
    engine: EngineProcess,
) -> None:
    session = engine.create_session(student_id=44)
    other = engine.create_session(student_id=44)
    async with connect(engine.ws_url("user_44", other["engine_token"])) as ws:
        httpx.delete(f"{engine.base_url}/v1/sessions/{session['session_id']}")
        await assert_error(
            ws,
            "unknown_session",
            "unknown, expired or deleted",
            type="text",
            content="hi",
            engine_session_id=session["session_id"],
        )
        await assert_error(
            ws, "unknown_session", type="text", content="still?", engine_session_id="gone"
        )


async def test_bad_tokens_are_refused_before_accept(engine: EngineProcess) -> None:
    session = engine.create_session(student_id=45)
    other = engine.create_session(student_id=45)
    secret = secret_of(engine)
    expired = jwt.encode(
        {
            "sid": session["session_id"],
            "sub": "45",
            "aud": "tutor-engine",
            "exp": int(time.time()) - 1,
        },
        secret,
        algorithm="HS256",
    )
    forged = TokenSigner(b"f" * 32, 60).issue(session["session_id"], 45)
    for token in (None, "", "garbage", expired, forged, other["engine_token"]):
        with pytest.raises(InvalidStatus) as caught:
            async with connect(engine.ws_url(session["session_id"], token)):
                pass
        assert caught.value.response.status_code == 403


# --- user-based ----------------------------------------------------------------------------


async def test_user_socket_routes_each_message_to_its_own_session(engine: EngineProcess) -> None:
    first = engine.create_session(tutor_id=1, student_id=77)
    second = engine.create_session(tutor_id=13, student_id=77)
    async with connect(engine.ws_url("user_77", first["engine_token"])) as ws:
        questions = {
            first["session_id"]: ("Why does ice float on water?", "ice"),
            second["session_id"]: ("Why does a compass point north?", "compass"),
        }
        for session_id, (question, _) in questions.items():
            await send(ws, type="text", content=question, engine_session_id=session_id)
        replies = [await receive(ws), await receive(ws)]
    for reply in replies:
        assert reply["type"] == "text", reply
        topic = questions[reply["engine_session_id"]][1]
        assert topic in reply["content"].lower()  # no reply crossed to the other session
    assert {r["engine_session_id"] for r in replies} == set(questions)
    for session_id in questions:
        assert httpx.get(f"{engine.base_url}/v1/sessions/{session_id}").json()["turns"] == 1


async def test_user_socket_errors(engine: EngineProcess) -> None:
    mine = engine.create_session(student_id=78)
    theirs = engine.create_session(student_id=79)
    async with connect(engine.ws_url("user_78", mine["engine_token"])) as ws:
        await assert_error(
            ws, "missing_session_id", "engine_session_id is required", type="text", content="hi"
        )
        await assert_error(ws, "missing_session_id", type="text_webrtc", content="hi", user_id=78)
        await assert_error(
            ws, "forbidden_session", "another user", type="text", content="hi",
            engine_session_id=theirs["session_id"],
        )  # fmt: skip
        await assert_error(
            ws, "unknown_session", "unknown", type="text", content="hi", engine_session_id="nope"
        )
        await assert_error(
            ws, "invalid_audio", "could not decode", type="audio", data="UklGRg==",
            engine_session_id=mine["session_id"],
        )  # fmt: skip
        await assert_error(
            ws, "invalid_webrtc", "offer", type="webrtc_offer", sdp="v=0", user_id=78
        )
        reply = await ask(ws, type="text", content="Hello?", engine_session_id=mine["session_id"])
        assert reply["type"] == "text"


async def test_user_socket_needs_that_users_token(engine: EngineProcess) -> None:
    theirs = engine.create_session(student_id=80)
    for connection_id, token in (
        ("user_81", theirs["engine_token"]),
        ("user_", theirs["engine_token"]),
    ):
        with pytest.raises(InvalidStatus) as caught:
            async with connect(engine.ws_url(connection_id, token)):
                pass
        assert caught.value.response.status_code == 403


async def test_user_context_survives_a_reconnect(engine: EngineProcess) -> None:
    session = engine.create_session(student_id=82)
    message = {"type": "text", "engine_session_id": session["session_id"]}
    async with connect(engine.ws_url("user_82", session["engine_token"])) as ws:
        assert (await ask(ws, content="First question?", **message))["type"] == "text"
    async with connect(engine.ws_url("user_82", session["engine_token"])) as ws:
        assert (await ask(ws, content="Second question?", **message))["type"] == "text"
    assert httpx.get(f"{engine.base_url}/v1/sessions/{session['session_id']}").json()["turns"] == 2


TOPICS = [
    ("Why does ice float on water?", "ice"),
    ("What makes a volcano erupt?", "magma"),
    ("Why does a compass point north?", "compass"),
    ("How many chambers does the heart have?", "chambers"),
    ("Can sound travel through space?", "sound"),
    ("Which planet is the biggest?", "jupiter"),
]


async def test_many_students_at_once_each_get_their_own_reply(engine: EngineProcess) -> None:
    async def student(n: int) -> None:
        question, topic = TOPICS[n]
        session = engine.create_session(student_id=1000 + n)
        async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
            reply = await ask(ws, type="text", content=question)
        assert topic in reply["content"].lower(), (question, reply)
        assert reply["engine_session_id"] == session["session_id"]

    await asyncio.gather(*(student(n) for n in range(len(TOPICS))))


async def test_closing_a_session_socket_cancels_its_reply(
    engine: EngineProcess, tmp_path: Path
) -> None:
    session = engine.create_session(student_id=83)
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        await send(ws, type="text", content="A question nobody waits for?")
    await asyncio.sleep(2)
    # The engine keeps serving, and the abandoned exchange is not in the history.
    state = httpx.get(f"{engine.base_url}/v1/sessions/{session['session_id']}").json()
    assert state["turns"] == 0
    health = engine.health()
    assert health.status_code == 200
    assert json.loads(health.text)["connections"] == 0
