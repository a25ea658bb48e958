"""Socket routing on its own: the real WebSocket route and `Connection`, served by uvicorn on
loopback, in front of scripted reply pipelines instead of Triton (no models needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from aiortc import RTCConfiguration, RTCPeerConnection
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.harness.client import receive, send
from benchmarks.harness.processes import free_port
from media.avatar import draw
from media.avatar.registry import Avatar, AvatarRegistry
from orchestrator.admission import Admission
from orchestrator.api import ws
from orchestrator.connection import OpenSockets
from orchestrator.listening import Ending, Listener, Listeners
from orchestrator.messages import AudioMessage, TextReply
from orchestrator.replies import Reply
from orchestrator.runtime import peer_settings
from orchestrator.sessions import Session, SessionRegistry
from orchestrator.settings import Settings
from orchestrator.tokens import TokenSigner
from orchestrator.vad import Audio
from webrtc.ice import restrict_host_addresses
from webrtc.peers import Peer, PeerRegistry

AVATAR = draw.STYLES[1].avatar_id


@dataclass
class ScriptedReplies:
    """Our reply interface (`ReplyPipelines`), answering at once or when released."""

    calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    hold: asyncio.Event | None = None  # set: replies wait for it before answering
    cancelled: list[str] = field(default_factory=list)
    speaking: asyncio.Event = field(default_factory=asyncio.Event)

    async def text(
        self, session: Session, text: str, avatar: Avatar | None
    ) -> AsyncIterator[Reply]:
        self.calls.append(("text", session.id, avatar.avatar_id if avatar else None))
        if self.hold is not None:
            await self.hold.wait()
        yield TextReply(content=f"re: {text}", engine_session_id=session.id)

    async def audio(
        self, session: Session, message: AudioMessage, avatar: Avatar | None
    ) -> AsyncIterator[Reply]:
        self.calls.append(("audio", session.id, None))
        yield TextReply(content="heard", engine_session_id=session.id)

    async def live(
        self, session: Session, text: str, peer: Peer, avatar: Avatar | None
    ) -> AsyncIterator[Reply]:
        self.calls.append(("live", session.id, None))
        peer.reply = asyncio.current_task()
        self.speaking.set()
        try:
            await asyncio.Event().wait()  # speaks until interrupted
        except asyncio.CancelledError:
            self.cancelled.append(session.id)
            raise
        yield TextReply(content="never", engine_session_id=session.id)

    async def audio_live(
        self, session: Session, message: AudioMessage, peer: Peer
    ) -> AsyncIterator[Reply]:
        self.calls.append(("audio_live", session.id, None))
        yield TextReply(content="heard live", engine_session_id=session.id)

    async def turn(
        self, session: Session, audio: Audio, ending: Ending, peer: Peer, ended_at: float
    ) -> AsyncIterator[Reply]:
        self.calls.append(("turn", session.id, None))
        yield TextReply(content="heard hands-free", engine_session_id=session.id)


def no_microphone(tutor: object) -> Listener:
    raise AssertionError("these peers send no microphone")


@dataclass
class Engine:
    url: str
    runtime: Any
    replies: ScriptedReplies

    def session(self, student: str = "7") -> Session:
        return self.runtime.sessions.create(1, student, None)  # type: ignore[no-any-return]

    def socket(self, connection_id: str, student: str = "7", session_id: str = "") -> Any:
        token = self.runtime.tokens.issue(session_id, student)
        return connect(f"{self.url}/ws/{connection_id}?token={token}")


@pytest_asyncio.fixture
async def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Engine]:
    draw.write_avatar(draw.STYLES[1], tmp_path / "avatars")
    monkeypatch.setenv("ENGINE_AVATARS_DIR", str(tmp_path / "avatars"))
    monkeypatch.setenv("ENGINE_MAX_INFLIGHT_PER_CONNECTION", "2")
    monkeypatch.setenv("ENGINE_WEBRTC_ALLOWED_NETWORKS", '["127.0.0.0/8"]')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    replies = ScriptedReplies()
    runtime = SimpleNamespace(
        settings=settings,
        tokens=TokenSigner("x" * 32, 600),
        sessions=SessionRegistry(600, 5),
        avatars=AvatarRegistry.load([settings.avatars_dir]),
        peers=PeerRegistry(peer_settings(settings)),
        replies=replies,
        sockets=OpenSockets(),
        admission=Admission(settings.max_replies_in_flight),
        listeners=Listeners(no_microphone),
        cluster=None,
        draining=False,
    )
    app = FastAPI()
    app.state.runtime = runtime
    app.include_router(ws.router)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield Engine(f"ws://127.0.0.1:{port}", runtime, replies)
    await runtime.peers.close_all()
    server.should_exit = True
    await serving


async def still_answers(socket: ClientConnection, session: Session) -> None:
    await send(socket, type="text", content="still there?", engine_session_id=session.id)
    assert (await receive(socket, 10))["content"] == "re: still there?"


async def test_a_session_socket_refuses_another_session_and_stays_open(engine: Engine) -> None:
    own, other = engine.session(), engine.session()
    async with engine.socket(own.id, session_id=own.id) as socket:
        await send(socket, type="text", content="hi", engine_session_id=other.id)
        error = await receive(socket, 10)
        assert error["type"] == "error" and error["code"] == "forbidden_session"
        assert engine.replies.calls == []
        await still_answers(socket, own)


async def test_a_user_socket_refuses_another_students_session(engine: Engine) -> None:
    mine, theirs = engine.session("7"), engine.session("8")
    async with engine.socket("user_7") as socket:
        await send(socket, type="text", content="hi", engine_session_id=theirs.id)
        error = await receive(socket, 10)
        assert (error["code"], error["engine_session_id"]) == ("forbidden_session", theirs.id)
        await send(socket, type="text", content="hi")
        assert (await receive(socket, 10))["code"] == "missing_session_id"
        await still_answers(socket, mine)


async def test_past_the_in_flight_limit_a_reply_is_refused_as_busy(engine: Engine) -> None:
    session = engine.session()
    engine.replies.hold = asyncio.Event()
    async with engine.socket("user_7") as socket:
        for n in range(3):
            await send(socket, type="text", content=f"q{n}", engine_session_id=session.id)
        busy = await receive(socket, 10)
        assert busy["code"] == "busy" and busy["retryable"] is True
        engine.replies.hold.set()
        answers = {(await receive(socket, 10))["content"] for _ in range(2)}
        assert answers == {"re: q0", "re: q1"}
        assert len(engine.replies.calls) == 2


async def test_past_the_engines_capacity_new_work_is_refused_at_once(engine: Engine) -> None:
    first, second = engine.session("7"), engine.session("8")
    engine.runtime.admission = Admission(1)
    engine.replies.hold = asyncio.Event()
    async with engine.socket("user_7") as mine, engine.socket("user_8", "8") as theirs:
        await send(mine, type="text", content="q", engine_session_id=first.id)
        for _ in range(100):
            if engine.replies.calls:
                break
            await asyncio.sleep(0.01)
        await send(theirs, type="text", content="q", engine_session_id=second.id)
        busy = await receive(theirs, 2)
        assert (busy["code"], busy["retryable"]) == ("busy", True)
        assert "capacity" in busy["content"]
        engine.replies.hold.set()
        assert (await receive(mine, 10))["content"] == "re: q"
        await still_answers(theirs, second)  # the place was given back


async def test_an_unknown_avatar_is_refused_before_any_reply(engine: Engine) -> None:
    session = engine.session()
    async with engine.socket("user_7") as socket:
        await send(
            socket, type="text", content="hi", engine_session_id=session.id, avatar_id="nobody"
        )
        error = await receive(socket, 10)
        assert error["code"] == "unknown_avatar" and AVATAR in error["content"]
        await send(
            socket, type="text", content="hi", engine_session_id=session.id, avatar_id=AVATAR
        )
        assert (await receive(socket, 10))["content"] == "re: hi"
        assert engine.replies.calls == [("text", session.id, AVATAR)]


async def test_interrupt_cancels_the_live_reply_and_a_spoken_question_barges_in(
    engine: Engine,
) -> None:
    session = engine.session()
    async with engine.socket("user_7") as socket:
        await send(
            socket, type="text_webrtc", content="hi", engine_session_id=session.id, user_id=7
        )
        assert (await receive(socket, 10))["code"] == "no_webrtc"  # no peer yet
        restrict_host_addresses(["127.0.0.1"])
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        client.addTransceiver("audio", direction="recvonly")
        client.addTransceiver("video", direction="recvonly")
        await client.setLocalDescription(await client.createOffer())
        await send(socket, type="webrtc_offer", sdp=client.localDescription.sdp, user_id=7)
        assert (await receive(socket, 30))["type"] == "webrtc_answer"
        peer = engine.runtime.peers.get("user_7")
        assert peer is not None

        await send(
            socket, type="text_webrtc", content="hi", engine_session_id=session.id, user_id=7
        )
        await asyncio.wait_for(engine.replies.speaking.wait(), 10)
        await send(socket, type="interrupt", engine_session_id=session.id)
        for _ in range(200):
            if engine.replies.cancelled:
                break
            await asyncio.sleep(0.01)
        assert engine.replies.cancelled == [session.id]
        told = await receive(socket, 10)
        assert (told["type"], told["reason"]) == ("interrupted", "interrupt")
        assert told["engine_session_id"] == session.id
        await client.close()
