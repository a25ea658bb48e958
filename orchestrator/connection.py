"""One open WebSocket: who it speaks for, and routing each message to its session.

Session-based sockets (`/ws/<session_id>`) speak for one session; user-based sockets
(`/ws/user_<id>`) for every session of one student, named in each message's
`engine_session_id`. Replies of different sessions run concurrently; within a session
they run in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from media.avatar.registry import AnyAvatar
from orchestrator.admission import Admission
from orchestrator.brain import AIEngineError
from orchestrator.listening import Ending
from orchestrator.messages import (
    AudioMessage,
    ClientMessage,
    ErrorMessage,
    Interrupted,
    InterruptMessage,
    Listening,
    ListenMessage,
    ProtocolError,
    ServerMessage,
    SpeechStarted,
    TextMessage,
    TextWebRTCMessage,
    WebRTCAnswer,
    WebRTCIceCandidateMessage,
    WebRTCOfferMessage,
    parse_client_message,
)
from orchestrator.metrics import ERRORS
from orchestrator.replies import Reply, check_text
from orchestrator.sessions import Session, SessionRegistry
from orchestrator.tokens import InvalidToken, TokenSigner
from orchestrator.triton_client import TritonError
from orchestrator.vad import Audio
from webrtc.peers import Peer, SignalingError, cut_reason

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine
    from typing import Any

    from orchestrator.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    mode: Literal["session", "user"]
    user_id: str
    token_session_id: str  # the session the token was issued for
    session_id: str | None = None  # session-based sockets only


def peer_key(user_id: object) -> str:
    """The key of a user's WebRTC peer: their user-based connection id."""
    return f"user_{user_id}"


async def authenticate(
    connection_id: str, token: str | None, signer: TokenSigner, sessions: SessionRegistry
) -> Identity:
    """Who the socket speaks for; raises InvalidToken before the socket is accepted."""
    claims = signer.verify(token)
    if await sessions.is_revoked(claims.session_id):
        raise InvalidToken("the token's session was deleted")
    if connection_id.startswith("user_"):
        user_id = connection_id.removeprefix("user_")
        if not user_id:
            raise InvalidToken("user-based connection id needs a user id: user_<id>")
        if claims.student_id != user_id:
            raise InvalidToken("the token belongs to another user")
        return Identity("user", user_id, claims.session_id)
    if claims.session_id != connection_id:
        raise InvalidToken("the token is for another session")
    return Identity("session", claims.student_id, claims.session_id, connection_id)


class OpenSockets:
    """The open sockets by the session their token was issued for, so that deleting a session
    closes every socket its token opened."""

    def __init__(self) -> None:
        self._by_session: dict[str, set[Connection]] = {}

    def __len__(self) -> int:
        return sum(len(sockets) for sockets in self._by_session.values())

    def session_ids(self) -> list[str]:
        return list(self._by_session)

    def all(self) -> list[Connection]:
        return [socket for sockets in self._by_session.values() for socket in sockets]

    def users(self) -> set[str]:
        return {socket.identity.user_id for socket in self.all()}

    def add(self, connection: Connection) -> None:
        self._by_session.setdefault(connection.identity.token_session_id, set()).add(connection)

    def discard(self, connection: Connection) -> None:
        sockets = self._by_session.get(connection.identity.token_session_id, set())
        sockets.discard(connection)
        if not sockets:
            self._by_session.pop(connection.identity.token_session_id, None)

    async def close_for(self, session_id: str, reason: str) -> None:
        """Closes (1008, `reason`) the sockets opened with this session's token."""
        sockets = list(self._by_session.get(session_id, ()))
        await asyncio.gather(*(socket.close(1008, reason) for socket in sockets))


@dataclass(frozen=True)
class Ears:
    """Where the turns heard on a user's microphone go: one socket, one session."""

    owner: Connection
    session_id: str

    def speech_started(self) -> None:
        self.owner.notify(SpeechStarted(engine_session_id=self.session_id))

    def turn_dropped(self, reason: str) -> None:
        self.owner.notify(Listening(reason=reason, engine_session_id=self.session_id))

    def tutor_interrupted(self) -> None:
        self.owner.notify(Interrupted(reason="barge_in", engine_session_id=self.session_id))

    def turn_ended(self, audio: Audio, ending: Ending, spoken_until: float) -> None:
        self.owner.answer_turn(self.session_id, audio, ending, spoken_until)


class Connection:
    def __init__(self, websocket: WebSocket, identity: Identity, runtime: Runtime) -> None:
        self.websocket = websocket
        self.identity = identity
        self.runtime = runtime
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._bound: Session | None = None
        self.peer_key = peer_key(identity.user_id)
        self._signaling = asyncio.Lock()  # an offer is applied before the candidates after it
        self._owns_peer = False  # a session socket that opened the user's peer closes it

    async def serve(self) -> None:
        """Reads frames until the client leaves; each message is answered or refused."""
        self._bind_session()
        self.runtime.sockets.add(self)
        peer = self.runtime.peers.get(self.peer_key)
        if peer is not None:
            peer.sockets += 1
        try:
            while True:
                frame = await self.websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                try:
                    if frame.get("text") is None:
                        raise ProtocolError("binary_frame", "send JSON text frames, not binary")
                    message = parse_client_message(frame["text"])
                    await self._load_session(message)
                    self._dispatch(message)
                except ProtocolError as error:
                    await self.send_error(error)
        except WebSocketDisconnect:
            pass
        finally:
            await self._release()

    # --- routing -----------------------------------------------------------------------

    def _dispatch(self, message: ClientMessage) -> None:
        replies = self.runtime.replies
        match message:
            case TextMessage():
                session = self.resolve(message.engine_session_id)
                self._check_text(message.content, session)
                avatar = self._avatar(message.avatar_id, session)
                self._spawn(replies.text(session, message.content, avatar), session)
            case AudioMessage():
                session = self.resolve(message.engine_session_id)
                avatar = self._avatar(message.avatar_id, session)
                peer = self.runtime.peers.get(self.peer_key)
                if peer is not None and peer.connected and avatar is None:
                    if peer.interrupt("barge_in"):  # the student speaks: the tutor stops at once
                        self.notify(Interrupted(reason="barge_in", engine_session_id=session.id))
                    self._spawn(replies.audio_live(session, message, peer), session)
                else:
                    self._spawn(replies.audio(session, message, avatar), session)
            case TextWebRTCMessage():
                self._check_user(message.user_id)
                session = self.resolve(message.engine_session_id)
                self._check_text(message.content, session)
                avatar = self._avatar(message.avatar_id, session)
                peer = self._peer(session)
                self.runtime.listeners.aim(self.peer_key, Ears(self, session.id), named=False)
                self._spawn(replies.live(session, message.content, peer, avatar), session)
            case WebRTCOfferMessage():
                self._check_user(message.user_id)
                avatar = self._avatar(message.avatar_id, None) or self._default_avatar()
                self._run(self._answer_offer(message.sdp, avatar), None)
            case WebRTCIceCandidateMessage():
                self._check_user(message.user_id)
                candidate = message.candidate.model_dump() if message.candidate else None
                self._run(self._add_candidate(candidate), None)
            case InterruptMessage():
                session = self.resolve(message.engine_session_id)
                if self._peer(session).interrupt():
                    self.notify(Interrupted(reason="interrupt", engine_session_id=session.id))
            case ListenMessage():
                session = self.resolve(message.engine_session_id)
                listeners = self.runtime.listeners
                listeners.aim(self.peer_key, Ears(self, session.id), named=True)
                listeners.enable(self.peer_key, message.enabled)
                reason = "listening" if message.enabled else "muted"
                self._run(self.send(Listening(reason=reason, engine_session_id=session.id)), None)

    async def _load_session(self, message: ClientMessage) -> None:
        """With several engines, the session a message names may be recorded in Redis only
        (opened through another engine, or served by one that died): it is loaded first."""
        sessions = self.runtime.sessions
        session_id = getattr(message, "engine_session_id", None) or self.identity.session_id
        if sessions.shared is None or session_id is None:
            return
        try:
            await sessions.load(session_id)
        except RedisError as error:
            raise ProtocolError(
                "state_unavailable",
                f"the engines' shared state (Redis) is unavailable; please retry: {error}",
                session_id,
                retryable=True,
            ) from error

    @property
    def busy(self) -> bool:
        """Whether anything is being answered or sent on this socket."""
        return bool(self._tasks)

    def resolve(self, engine_session_id: str | None) -> Session:
        """The session a message speaks to, or the reason it may not."""
        if self.identity.mode == "user":
            if not engine_session_id:
                raise ProtocolError(
                    "missing_session_id",
                    "engine_session_id is required on a user-based connection",
                )
            session_id = engine_session_id
        else:
            assert self.identity.session_id is not None
            session_id = self.identity.session_id
            if engine_session_id and engine_session_id != session_id:
                raise ProtocolError(
                    "forbidden_session",
                    f"this connection speaks for session {session_id}, not {engine_session_id}",
                    engine_session_id,
                )
        session = self.runtime.sessions.get(session_id)
        if session is None:
            raise ProtocolError(
                "unknown_session",
                f"session {session_id} is unknown, expired or deleted",
                session_id,
            )
        if not session.belongs_to(self.identity.user_id):
            raise ProtocolError(
                "forbidden_session", f"session {session_id} belongs to another user", session_id
            )
        self.runtime.sessions.touch(session)
        return session

    def _avatar(self, avatar_id: str | None, session: Session | None) -> AnyAvatar | None:
        if avatar_id is None:
            return None
        avatar = self.runtime.avatars.get(avatar_id)
        if avatar is None:
            valid = ", ".join(self.runtime.avatars.ids) or "none are installed"
            raise ProtocolError(
                "unknown_avatar",
                f"unknown avatar_id {avatar_id!r}; valid ids: {valid}",
                session.id if session else None,
            )
        return avatar

    def _default_avatar(self) -> AnyAvatar:
        avatar = self.runtime.avatars.get(self.runtime.settings.default_avatar)
        if avatar is None and self.runtime.avatars.ids:
            avatar = self.runtime.avatars.get(self.runtime.avatars.ids[0])
        if avatar is None:
            raise ProtocolError("unknown_avatar", "no avatars are installed on this engine")
        return avatar

    def _peer(self, session: Session) -> Peer:
        peer = self.runtime.peers.get(self.peer_key)
        if peer is None:
            raise ProtocolError(
                "no_webrtc",
                "no WebRTC connection for this user: send webrtc_offer first",
                session.id,
            )
        peer.touch()
        return peer

    def _check_user(self, user_id: int | str) -> None:
        if str(user_id) != self.identity.user_id:
            raise ProtocolError(
                "forbidden_user", f"user_id {user_id} is not this connection's user"
            )

    def _check_text(self, text: str, session: Session) -> None:
        check_text(text, self.runtime.settings.max_text_chars, session)

    def _spawn(self, reply: AsyncIterator[Reply], session: Session) -> None:
        """Runs a reply pipeline beside the socket's reading, sending what it yields; replies
        in progress on one socket are limited."""
        if len(self._tasks) >= self.runtime.settings.max_inflight_per_connection:
            raise ProtocolError(
                "busy",
                "too many replies in progress on this connection; wait for one to finish",
                session.id,
                retryable=True,
            )
        admission = self.runtime.admission
        if not admission.enter():
            raise ProtocolError(
                "busy",
                f"the engine is at capacity ({admission.capacity} replies in progress); "
                "retry in a moment",
                session.id,
                retryable=True,
            )
        self._run(self._send_all(reply, admission), session)

    async def _send_all(self, reply: AsyncIterator[Reply], admission: Admission) -> None:
        try:
            async for message in reply:
                await self.send(message)
        finally:
            admission.leave()

    def _run(self, work: Coroutine[Any, Any, None], session: Session | None) -> None:
        task = asyncio.create_task(self._answering(work, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answering(self, work: Coroutine[Any, Any, None], session: Session | None) -> None:
        """Runs one answer; whatever goes wrong reaches the client as an `error`."""
        sid = session.id if session else None
        try:
            await work
        except asyncio.CancelledError:
            reason = cut_reason(asyncio.current_task())
            if reason is None:  # the socket closed: nobody to tell
                raise
            await self.send(Interrupted(reason=reason, engine_session_id=sid))
        except ProtocolError as error:
            await self.send_error(error)
        except SignalingError as error:
            await self.send_error(ProtocolError("invalid_webrtc", str(error), sid))
        except AIEngineError as error:
            await self.send_error(
                ProtocolError("ai_engine_error", str(error), sid, error.retryable)
            )
        except TritonError as error:
            code = "speech_unavailable" if error.retryable else "speech_failed"
            await self.send_error(ProtocolError(code, str(error), sid, error.retryable))
        except Exception:
            log.exception("answer failed", extra={"session_id": sid})
            message = "the engine failed to answer; please retry"
            await self.send_error(ProtocolError("internal_error", message, sid, True))

    # --- hands-free turns ---------------------------------------------------------------

    def notify(self, message: ServerMessage) -> None:
        """Sends `message` beside the socket's reading (the microphone is not a request)."""
        self._run(self.send(message), None)

    def answer_turn(
        self, session_id: str, audio: Audio, ending: Ending, spoken_until: float
    ) -> None:
        """A turn heard on the microphone: transcribed, then answered live, as `text_webrtc`."""
        try:
            session = self.resolve(session_id)
            peer = self._peer(session)
            self._spawn(
                self.runtime.replies.turn(session, audio, ending, peer, spoken_until), session
            )
        except ProtocolError as error:
            self._run(self.send_error(error), None)

    # --- signaling -----------------------------------------------------------------

    async def _answer_offer(self, sdp: str, avatar: AnyAvatar) -> None:
        async with self._signaling:
            answer = await self.runtime.peers.answer(self.peer_key, sdp, avatar)
        peer = self.runtime.peers.get(self.peer_key)
        if peer is not None:
            peer.sockets += 1
            self._owns_peer = self.identity.mode == "session"
        if self.identity.session_id is not None:  # a session socket's microphone speaks to it
            self.runtime.listeners.aim(self.peer_key, Ears(self, self.identity.session_id), False)
        await self.send(WebRTCAnswer(sdp=answer))

    async def _add_candidate(self, candidate: dict[str, object] | None) -> None:
        async with self._signaling:
            await self.runtime.peers.add_candidate(self.peer_key, candidate)

    # --- sending and closing -----------------------------------------------------------

    async def send(self, message: ServerMessage) -> None:
        if self.websocket.application_state != WebSocketState.CONNECTED:
            return
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.websocket.send_text(message.to_json())

    async def close(self, code: int, reason: str) -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            async with self._send_lock:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await self.websocket.close(code, reason)

    async def send_error(self, error: ProtocolError) -> None:
        ERRORS.labels(error.code).inc()
        log.info("client error", extra={"code": error.code, "session_id": error.engine_session_id})
        await self.send(ErrorMessage.from_protocol_error(error))

    def _bind_session(self) -> None:
        """A session-based socket keeps its session from expiring while it is open."""
        if self.identity.session_id is not None:
            self._bound = self.runtime.sessions.get(self.identity.session_id)
            if self._bound is not None:
                self._bound.connections += 1

    async def _release(self) -> None:
        self.runtime.sockets.discard(self)
        self.runtime.listeners.release(self.peer_key, self)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        peer = self.runtime.peers.get(self.peer_key)
        if peer is not None:
            peer.sockets = max(0, peer.sockets - 1)
            peer.touch()  # a user's peer outlives the socket until the idle timeout
            if self._owns_peer:
                await self.runtime.peers.close(self.peer_key)
        if self._bound is not None:
            self._bound.connections -= 1
            self.runtime.sessions.touch(self._bound)
