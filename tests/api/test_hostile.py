"""The engine as an attacker or a careless client finds it: every hostile input gets a typed
answer and loses nothing, revoked tokens stay revoked, and no reply ends in silence."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from benchmarks.harness.client import ask, receive, send
from benchmarks.harness.processes import EngineProcess
from benchmarks.harness.webrtc_client import LiveClient
from webrtc.ice import restrict_host_addresses

pytestmark = pytest.mark.serving

SURROGATE = "\ud800"
HOSTILE_FRAMES = [
    '{"type": "text", "content": "hi", "user_id": ' + "9" * 5000 + "}",
    json.dumps({"type": "text", "content": "hi", "engine_session_id": SURROGATE}),
    json.dumps({"type": "text_webrtc", "content": "hi", "user_id": SURROGATE}),
    json.dumps({"type": SURROGATE}),
    json.dumps({"type": "text", "content": SURROGATE}),
    "[" * 3000 + "]" * 3000,
    "{" * 50_000,
    '{"type": "text", "content": ' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "}",
]


async def still_open(ws: ClientConnection, mode: str) -> None:
    """A cheap message the engine answers at once, to show the socket survived."""
    if mode == "user":
        reply = await ask(ws, type="text", content="hello", timeout_s=10)
        assert reply["code"] == "missing_session_id"
    else:
        reply = await ask(ws, type="interrupt", timeout_s=10)
        assert reply["code"] == "no_webrtc"


@pytest.mark.parametrize("mode", ["session", "user"])
async def test_hostile_frames_get_typed_errors_and_the_socket_stays(
    engine: EngineProcess, mode: str
) -> None:
    session = engine.create_session(student_id=5150)
    where = session["session_id"] if mode == "session" else "user_5150"
    async with connect(engine.ws_url(where, session["engine_token"]), max_size=None) as ws:
        for frame in HOSTILE_FRAMES:
            await ws.send(frame)
            reply = await receive(ws, timeout_s=10)
            assert reply["type"] == "error" and reply["code"] == "malformed_json", reply
            await still_open(ws, mode)


def problems_are_json(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"tutor_id": NaN, "student_id": 1}',
        b'{"tutor_id": 1, "student_id": "\\ud800"}',
        b'{"tutor_id": 1' + b"1" * 5000 + b', "student_id": 1}',
        b"[" * 5000 + b"]" * 5000,
        b'{"tutor_id": 1, "student_id": "\xff\xfe"}',
    ],
)
def test_bad_session_requests_are_4xx_json(engine: EngineProcess, body: bytes) -> None:
    response = httpx.post(
        engine.base_url + "/v1/sessions", content=body, headers={"content-type": "application/json"}
    )
    problems_are_json(response)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"name": "a.md", "text": ' + b"7" * 5000 + b"}",
        b'{"name": "a.md", "text": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"name": "a.md", "text": "\xff\xfe\xfd"}',
        b'{"name": "a.md", "text": "\\ud800"}',
        b'{"name": "a.md", "text": NaN}',
    ],
)
def test_bad_documents_are_4xx_json(engine: EngineProcess, body: bytes) -> None:
    response = httpx.post(
        engine.base_url + "/v1/knowledge-bases/hostile/documents",
        content=body,
        headers={"content-type": "application/json"},
    )
    problems_are_json(response)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.dictionaries(
        st.sampled_from(["tutor_id", "student_id", "kb_id", "name", "text", "language"]),
        json_values,
        max_size=4,
    )
)
def test_any_rest_body_gets_an_answer_that_is_not_a_5xx(
    engine: EngineProcess, body: dict[str, object]
) -> None:
    raw = json.dumps(body, ensure_ascii=True)  # NaN, surrogates and all
    for path in ("/v1/sessions", "/v1/knowledge-bases/hostile/documents"):
        response = httpx.post(
            engine.base_url + path, content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (path, raw, response.text[:200])
        assert response.headers["content-type"].startswith("application/json")


async def test_deleting_a_session_revokes_its_token_on_every_socket_kind(
    engine: EngineProcess,
) -> None:
    doomed = engine.create_session(student_id=6060)
    other = engine.create_session(student_id=6060)
    token = doomed["engine_token"]
    async with (
        connect(engine.ws_url(doomed["session_id"], token)) as session_ws,
        connect(engine.ws_url("user_6060", token)) as user_ws,
        connect(engine.ws_url("user_6060", other["engine_token"])) as other_ws,
    ):
        await still_open(session_ws, "session")
        await still_open(user_ws, "user")
        assert (
            httpx.delete(f"{engine.base_url}/v1/sessions/{doomed['session_id']}").status_code == 204
        )
        for ws in (session_ws, user_ws):
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert "deleted" in closed.value.rcvd.reason
        await still_open(other_ws, "user")  # another session's token is untouched
    for where in (doomed["session_id"], "user_6060"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(engine.ws_url(where, token)):
                pass
        assert refused.value.response.status_code == 403


@pytest.mark.parametrize("where", ["request line", "header"])
def test_an_oversized_handshake_is_answered_and_closed_at_once(
    engine: EngineProcess, where: str
) -> None:
    huge = "x" * 10_000
    target = f"/ws/user_1?token={huge}" if where == "request line" else "/ws/user_1?token=t"
    extra = f"X-Padding: {huge}\r\n" if where == "header" else ""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    with socket.create_connection(("127.0.0.1", engine.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(4096):  # the server closes: recv returns b""
            answer += chunk
        assert time.monotonic() - started < 2
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:100]


async def offer_sdp() -> tuple[RTCPeerConnection, str]:
    restrict_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def broken(sdp: str, what: str) -> str:
    lines = sdp.splitlines()
    if what == "fingerprint":
        lines = [
            "a=fingerprint:sha-256 ZZ:not:hex" if line.startswith("a=fingerprint") else line
            for line in lines
        ]
    elif what == "port":
        lines = [re.sub(r"^(m=\w+) \d+", r"\1 99999999", line) for line in lines]
    elif what == "address":
        lines = ["c=IN IP4 999.999.999.999" if line.startswith("c=") else line for line in lines]
    return "\r\n".join(lines) + "\r\n"


async def test_broken_offers_and_candidates_are_invalid_webrtc(engine: EngineProcess) -> None:
    session = engine.create_session(student_id=7070)
    async with connect(engine.ws_url("user_7070", session["engine_token"])) as ws:
        pc, sdp = await offer_sdp()
        try:
            for what in ("fingerprint", "port", "address"):
                reply = await ask(ws, type="webrtc_offer", sdp=broken(sdp, what), user_id=7070)
                assert (reply["type"], reply["code"]) == ("error", "invalid_webrtc"), (what, reply)
            assert (await ask(ws, type="webrtc_offer", sdp=sdp, user_id=7070))["type"] == (
                "webrtc_answer"
            )
            for candidate in (
                {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1", "sdpMid": "0"},
                {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"},
                {
                    "candidate": "candidate:1 1 udp 2130706431 127.0.0.1 99999 typ host",
                    "sdpMid": "0",
                },
                {"candidate": "candidate:x y udp z 999.1.1.1 5000 typ host", "sdpMid": "0"},
            ):
                reply = await ask(
                    ws, type="webrtc_ice_candidate", candidate=candidate, user_id=7070
                )
                assert (reply["type"], reply["code"]) == ("error", "invalid_webrtc"), (
                    candidate,
                    reply,
                )
        finally:
            await pc.close()


async def test_a_live_reply_cut_short_says_so(engine: EngineProcess) -> None:
    """offer, text_webrtc, a second offer at once: the first reply ends in `interrupted`."""
    session = engine.create_session(student_id=8080)
    async with connect(engine.ws_url("user_8080", session["engine_token"]), max_size=None) as ws:
        first = LiveClient()
        await first.connect(ws, 8080)
        pc, sdp = await offer_sdp()
        try:
            await send(
                ws,
                type="text_webrtc",
                content="Tell me about photosynthesis.",
                user_id=8080,
                engine_session_id=session["session_id"],
            )
            await asyncio.sleep(0.05)
            await send(ws, type="webrtc_offer", sdp=sdp, user_id=8080)
            told = {m["type"]: m for m in [await receive(ws, 10), await receive(ws, 10)]}
            assert set(told) == {"interrupted", "webrtc_answer"}, told
            assert told["interrupted"]["reason"] == "peer_replaced"
            assert told["interrupted"]["engine_session_id"] == session["session_id"]
        finally:
            await first.close()
            await pc.close()
