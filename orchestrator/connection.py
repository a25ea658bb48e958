"""One open WebSocket: who it speaks for, and routing each message to its session.

Session-based sockets (`/ws/<session_id>`) speak for one session; user-based sockets
(`/ws/user_<id>`) for every session of one student, named in each message's
`engine_session_id`. Replies of different sessions run concurrently; within a session
they run in order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from orchestrator.asr import SAMPLE_RATE, NoSpeech
from orchestrator.audio import AudioError, b64, decode_audio, wav_bytes
from orchestrator.avatar.registry import Avatar
from orchestrator.brain import AIEngineError
from orchestrator.conversation import joiner
from orchestrator.messages import (
    AudioMessage,
    ClientMessage,
    ErrorMessage,
    InterruptMessage,
    ProtocolError,
    TextMessage,
    TextReply,
    TextWebRTCMessage,
    Transcription,
    VideoReply,
    WebRTCAnswer,
    WebRTCIceCandidateMessage,
    WebRTCOfferMessage,
    parse_client_message,
)
from orchestrator.metrics import ERRORS, FIRST_AUDIO, REPLIES, timed
from orchestrator.sessions import Session
from orchestrator.tokens import InvalidToken, TokenSigner
from orchestrator.triton_client import TritonError
from orchestrator.tts import join_speech
from webrtc.peers import Peer, SignalingError

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

    from orchestrator.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    mode: Literal["session", "user"]
    user_id: str
    session_id: str | None = None  # session-based sockets only


def authenticate(connection_id: str, token: str | None, signer: TokenSigner) -> Identity:
    """Who the socket speaks for; raises InvalidToken before the socket is accepted."""
    claims = signer.verify(token)
    if connection_id.startswith("user_"):
        user_id = connection_id.removeprefix("user_")
        if not user_id:
            raise InvalidToken("user-based connection id needs a user id: user_<id>")
        if claims.student_id != user_id:
            raise InvalidToken("the token belongs to another user")
        return Identity("user", user_id)
    if claims.session_id != connection_id:
        raise InvalidToken("the token is for another session")
    return Identity("session", claims.student_id, connection_id)


class Connection:
    def __init__(self, websocket: WebSocket, identity: Identity, runtime: Runtime) -> None:
        self.websocket = websocket
        self.identity = identity
        self.runtime = runtime
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._bound: Session | None = None
        self.peer_key = f"user_{identity.user_id}"
        self._signaling = asyncio.Lock()  # an offer is applied before the candidates after it
        self._owns_peer = False  # a session socket that opened the user's peer closes it

    async def serve(self) -> None:
        """Reads frames until the client leaves; each message is answered or refused."""
        self._bind_session()
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
                    self._dispatch(parse_client_message(frame["text"]))
                except ProtocolError as error:
                    await self.send_error(error)
        except WebSocketDisconnect:
            pass
        finally:
            await self._release()

    # --- routing -----------------------------------------------------------------------

    def _dispatch(self, message: ClientMessage) -> None:
        match message:
            case TextMessage():
                session = self.resolve(message.engine_session_id)
                self._check_text(message.content, session)
                avatar = self._avatar(message.avatar_id, session)
                self._spawn(self._answer(session, message.content, avatar), session)
            case AudioMessage():
                session = self.resolve(message.engine_session_id)
                avatar = self._avatar(message.avatar_id, session)
                peer = self.runtime.peers.get(self.peer_key)
                if peer is not None and peer.connected and avatar is None:
                    self._barge_in(peer)  # the student speaks: the tutor stops at once
                    self._spawn(self._answer_audio(session, message, None, peer), session)
                else:
                    self._spawn(self._answer_audio(session, message, avatar), session)
            case TextWebRTCMessage():
                self._check_user(message.user_id)
                session = self.resolve(message.engine_session_id)
                self._check_text(message.content, session)
                avatar = self._avatar(message.avatar_id, session)
                peer = self._peer(session)
                self._spawn(self._answer_live(session, message.content, peer, avatar), session)
            case WebRTCOfferMessage():
                self._check_user(message.user_id)
                avatar = self._avatar(message.avatar_id, None) or self._default_avatar()
                self._spawn(self._answer_offer(message.sdp, avatar), None, limited=False)
            case WebRTCIceCandidateMessage():
                self._check_user(message.user_id)
                candidate = message.candidate.model_dump() if message.candidate else None
                self._spawn(self._add_candidate(candidate), None, limited=False)
            case InterruptMessage():
                session = self.resolve(message.engine_session_id)
                self._barge_in(self._peer(session))

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

    def _avatar(self, avatar_id: str | None, session: Session | None) -> Avatar | None:
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

    def _default_avatar(self) -> Avatar:
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

    def _barge_in(self, peer: Peer) -> None:
        if peer.reply is not None:
            peer.reply.cancel()
        peer.stream.interrupt()

    def _check_user(self, user_id: int | str) -> None:
        if str(user_id) != self.identity.user_id:
            raise ProtocolError(
                "forbidden_user", f"user_id {user_id} is not this connection's user"
            )

    def _check_text(self, text: str, session: Session) -> None:
        limit = self.runtime.settings.max_text_chars
        if len(text) > limit:
            raise ProtocolError(
                "text_too_long",
                f"content has {len(text)} characters; the limit is {limit}",
                session.id,
            )

    def _spawn(
        self, work: Coroutine[Any, Any, None], session: Session | None, limited: bool = True
    ) -> None:
        """Runs `work` beside the socket's reading; replies (not signaling) count to the limit."""
        if limited and len(self._tasks) >= self.runtime.settings.max_inflight_per_connection:
            work.close()
            raise ProtocolError(
                "busy",
                "too many replies in progress on this connection; wait for one to finish",
                session.id if session else None,
                retryable=True,
            )
        task = asyncio.create_task(self._answering(work, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answering(self, work: Coroutine[Any, Any, None], session: Session | None) -> None:
        """Runs one answer; whatever goes wrong reaches the client as an `error`."""
        sid = session.id if session else None
        try:
            await work
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

    # --- answers -----------------------------------------------------------------------

    async def _answer(self, session: Session, text: str, avatar: Avatar | None) -> None:
        """The tutor's spoken reply: a `text` message, or a `video` one with an avatar."""
        tutor = self.runtime.conversation.tutor_of(session)
        async with session.reply_lock:
            with timed("reply", log, session_id=session.id, chars=len(text), video=bool(avatar)):
                parts = [part async for part in self.runtime.conversation.reply(session, text)]
                speech = [part.speech for part in parts if part.speech is not None]
                content = joiner(tutor).join(part.text for part in parts)
                if avatar is not None and speech:
                    mp4, joined = await self.runtime.animation.video(
                        avatar, speech, tutor.language, session.id
                    )
                    reply: TextReply | VideoReply = VideoReply(
                        video=b64(mp4),
                        audio=b64(wav_bytes(joined.pcm, joined.sample_rate)),
                        content=content,
                        engine_session_id=session.id,
                    )
                else:
                    audio = None
                    if speech:
                        joined = join_speech(speech)
                        audio = b64(wav_bytes(joined.pcm, joined.sample_rate))
                    reply = TextReply(content=content, audio=audio, engine_session_id=session.id)
        REPLIES.labels(reply.type).inc()
        await self.send(reply)

    async def _answer_audio(
        self,
        session: Session,
        message: AudioMessage,
        avatar: Avatar | None,
        peer: Peer | None = None,
    ) -> None:
        """Transcribes the student's speech, says what was heard, then answers it: over the
        socket, or live on the user's WebRTC peer when one is given."""
        settings = self.runtime.settings
        tutor = self.runtime.conversation.tutor_of(session)
        data = _base64(message.data, settings.max_audio_bytes, session.id)
        try:
            pcm = await asyncio.to_thread(
                decode_audio,
                data,
                rate=SAMPLE_RATE,
                max_seconds=settings.max_audio_s,
                raw_format=message.format,
                raw_rate=message.sample_rate,
            )
            heard = await self.runtime.asr.transcribe(pcm, tutor.language, session.id)
        except AudioError as error:
            raise ProtocolError("invalid_audio", str(error), session.id) from error
        except NoSpeech as error:
            raise ProtocolError("no_speech", str(error), session.id) from error
        self._check_text(heard.text, session)
        await self.send(Transcription(content=heard.text, engine_session_id=session.id))
        if peer is not None:
            await self._answer_live(session, heard.text, peer, None)
        else:
            await self._answer(session, heard.text, avatar)

    async def _answer_live(
        self, session: Session, text: str, peer: Peer, avatar: Avatar | None
    ) -> None:
        """Speaks the reply on the live tracks sentence by sentence, as each is ready; the
        text follows on the socket. A reply still playing is cut off or waited for,
        as ENGINE_WEBRTC_REPLY_POLICY says."""
        received = time.monotonic()
        if self.runtime.settings.webrtc_reply_policy == "interrupt":
            self._barge_in(peer)
        peer.reply = asyncio.current_task()
        if avatar is not None:
            peer.stream.switch(avatar)
        tutor = self.runtime.conversation.tutor_of(session)
        parts = []
        async with session.reply_lock:
            with timed("reply", log, session_id=session.id, chars=len(text), live=True) as stage:
                async for part in self.runtime.conversation.reply(session, text):
                    parts.append(part)
                    if part.speech is None:
                        continue
                    weights = await self.runtime.animation.lipsync.weights(
                        part.speech, tutor.language, session.id
                    )
                    utterance = peer.stream.say(part.speech.pcm, part.speech.sample_rate, weights)
                    if "first_audio_s" not in stage:
                        starts_in = utterance.start / 48000 - peer.stream.playhead() / 48000
                        stage["first_audio_s"] = round(time.monotonic() - received + starts_in, 3)
                        FIRST_AUDIO.observe(stage["first_audio_s"])
        REPLIES.labels("webrtc").inc()
        content = joiner(tutor).join(part.text for part in parts)
        await self.send(TextReply(content=content, engine_session_id=session.id, delivery="webrtc"))

    async def _answer_offer(self, sdp: str, avatar: Avatar) -> None:
        async with self._signaling:
            answer = await self.runtime.peers.answer(self.peer_key, sdp, avatar)
        peer = self.runtime.peers.get(self.peer_key)
        if peer is not None:
            peer.sockets += 1
            self._owns_peer = self.identity.mode == "session"
        await self.send(WebRTCAnswer(sdp=answer))

    async def _add_candidate(self, candidate: dict[str, object] | None) -> None:
        async with self._signaling:
            await self.runtime.peers.add_candidate(self.peer_key, candidate)

    # --- sending and closing -----------------------------------------------------------

    async def send(
        self, message: TextReply | VideoReply | Transcription | WebRTCAnswer | ErrorMessage
    ) -> None:
        if self.websocket.application_state != WebSocketState.CONNECTED:
            return
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.websocket.send_text(message.to_json())

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


def _base64(data: str, max_bytes: int, session_id: str) -> bytes:
    if len(data) * 3 // 4 > max_bytes:
        raise ProtocolError(
            "audio_too_large", f"audio is over the limit of {max_bytes // 1024} KiB", session_id
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ProtocolError("invalid_audio", "data is not valid base64", session_id) from error
