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
    ProtocolError,
    TextMessage,
    TextReply,
    TextWebRTCMessage,
    Transcription,
    VideoReply,
    WebRTCIceCandidateMessage,
    WebRTCOfferMessage,
    parse_client_message,
)
from orchestrator.metrics import ERRORS, REPLIES, timed
from orchestrator.sessions import Session
from orchestrator.tokens import InvalidToken, TokenSigner
from orchestrator.triton_client import TritonError
from orchestrator.tts import join_speech

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

    async def serve(self) -> None:
        """Reads frames until the client leaves; each message is answered or refused."""
        self._bind_session()
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
                self._spawn(self._answer_audio(session, message, avatar), session)
            case TextWebRTCMessage():
                self._check_user(message.user_id)
                session = self.resolve(message.engine_session_id)
                raise _disabled("WebRTC streaming", session)
            case WebRTCOfferMessage() | WebRTCIceCandidateMessage():
                self._check_user(message.user_id)
                raise _disabled("WebRTC streaming")

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

    def _avatar(self, avatar_id: str | None, session: Session) -> Avatar | None:
        if avatar_id is None:
            return None
        avatar = self.runtime.avatars.get(avatar_id)
        if avatar is None:
            valid = ", ".join(self.runtime.avatars.ids) or "none are installed"
            raise ProtocolError(
                "unknown_avatar", f"unknown avatar_id {avatar_id!r}; valid ids: {valid}", session.id
            )
        return avatar

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

    def _spawn(self, work: Coroutine[Any, Any, None], session: Session) -> None:
        if len(self._tasks) >= self.runtime.settings.max_inflight_per_connection:
            work.close()
            raise ProtocolError(
                "busy",
                "too many replies in progress on this connection; wait for one to finish",
                session.id,
                retryable=True,
            )
        task = asyncio.create_task(self._answering(work, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answering(self, work: Coroutine[Any, Any, None], session: Session) -> None:
        """Runs one answer; whatever goes wrong reaches the client as an `error`."""
        try:
            await work
        except ProtocolError as error:
            await self.send_error(error)
        except AIEngineError as error:
            await self.send_error(
                ProtocolError("ai_engine_error", str(error), session.id, error.retryable)
            )
        except TritonError as error:
            code = "speech_unavailable" if error.retryable else "speech_failed"
            await self.send_error(ProtocolError(code, str(error), session.id, error.retryable))
        except Exception:
            log.exception("answer failed", extra={"session_id": session.id})
            await self.send_error(
                ProtocolError(
                    "internal_error", "the engine failed to answer; please retry", session.id, True
                )
            )

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
        self, session: Session, message: AudioMessage, avatar: Avatar | None
    ) -> None:
        """Transcribes the student's speech, says what was heard, then answers it."""
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
        await self._answer(session, heard.text, avatar)

    # --- sending and closing -----------------------------------------------------------

    async def send(self, message: TextReply | VideoReply | Transcription | ErrorMessage) -> None:
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


def _disabled(feature: str, session: Session | None = None) -> ProtocolError:
    return ProtocolError(
        "feature_disabled",
        f"{feature} is not enabled on this engine yet",
        session.id if session else None,
    )
