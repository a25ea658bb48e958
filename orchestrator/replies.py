"""The reply pipelines, each an async generator of the protocol messages a socket sends.

One ordered path, whatever the reply's form:
**[student speech → decode → ASR →] student text → tutor brain → sentences → TTS →
lip-sync → render → transport**, where the transport is an MP4 in a `video` message, WAV in a
`text` message, or the user's live WebRTC tracks. Stages stream: each sentence goes on as soon
as it is spoken (`Conversation.reply`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol

from media.audio import PLAYBACK_RATE, AudioError, decode_audio, wav_bytes
from media.avatar.registry import AnyAvatar
from media.speech import join_speech
from orchestrator.asr import SAMPLE_RATE, NoSpeech, SpeechRecognizer
from orchestrator.conversation import Conversation, joiner
from orchestrator.lipsync import LipSync
from orchestrator.listening import Ending
from orchestrator.messages import (
    AudioMessage,
    Interrupted,
    Listening,
    ProtocolError,
    SpeechEnded,
    TextReply,
    Thinking,
    Transcription,
    VideoReply,
)
from orchestrator.metrics import FIRST_AUDIO, REPLIES, timed
from orchestrator.sessions import Session
from orchestrator.settings import Settings
from orchestrator.vad import Audio
from orchestrator.video_reply import TalkingVideo
from webrtc.peers import Peer

log = logging.getLogger(__name__)

Reply = TextReply | VideoReply | Transcription | SpeechEnded | Thinking | Listening | Interrupted


class ReplyPipelines(Protocol):
    """What a socket asks for; `Connection` routes to it and sends what it yields."""

    def text(
        self, session: Session, text: str, avatar: AnyAvatar | None
    ) -> AsyncIterator[Reply]: ...

    def audio(
        self, session: Session, message: AudioMessage, avatar: AnyAvatar | None
    ) -> AsyncIterator[Reply]: ...

    def live(
        self, session: Session, text: str, peer: Peer, avatar: AnyAvatar | None
    ) -> AsyncIterator[Reply]: ...

    def audio_live(
        self, session: Session, message: AudioMessage, peer: Peer
    ) -> AsyncIterator[Reply]: ...

    def turn(
        self, session: Session, audio: Audio, ending: Ending, peer: Peer, ended_at: float
    ) -> AsyncIterator[Reply]: ...


class Replies:
    def __init__(
        self,
        settings: Settings,
        conversation: Conversation,
        asr: SpeechRecognizer,
        lipsync: LipSync,
        video: TalkingVideo,
    ) -> None:
        self.settings = settings
        self.conversation = conversation
        self.asr = asr
        self.lipsync = lipsync
        self.video = video

    async def text(
        self, session: Session, text: str, avatar: AnyAvatar | None
    ) -> AsyncIterator[Reply]:
        """The whole reply in one message: `text` with WAV speech, or `video` with an avatar."""
        tutor = self.conversation.tutor_of(session)
        async with session.reply_lock:
            with timed("reply", log, session_id=session.id, chars=len(text), video=bool(avatar)):
                parts = [part async for part in self.conversation.reply(session, text)]
                speech = [part.speech for part in parts if part.speech is not None]
                content = joiner(tutor).join(part.text for part in parts)
                reply: TextReply | VideoReply
                if avatar is not None and speech:
                    mp4, joined = await self.video.mp4(avatar, speech, tutor.language, session.id)
                    reply = VideoReply(
                        video=_b64(mp4),
                        audio=_b64(wav_bytes(joined.pcm, joined.sample_rate)),
                        content=content,
                        engine_session_id=session.id,
                    )
                else:
                    audio = None
                    if speech:
                        joined = join_speech(speech)
                        audio = _b64(wav_bytes(joined.pcm, joined.sample_rate))
                    reply = TextReply(content=content, audio=audio, engine_session_id=session.id)
        REPLIES.labels(reply.type).inc()
        yield reply

    async def audio(
        self, session: Session, message: AudioMessage, avatar: AnyAvatar | None
    ) -> AsyncIterator[Reply]:
        """What was heard, then the reply to it over the socket."""
        heard = await self.hear(session, message)
        yield Transcription(content=heard, engine_session_id=session.id)
        async for reply in self.text(session, heard, avatar):
            yield reply

    async def audio_live(
        self, session: Session, message: AudioMessage, peer: Peer
    ) -> AsyncIterator[Reply]:
        """What was heard, then the reply spoken live on the user's peer."""
        heard = await self.hear(session, message)
        yield Transcription(content=heard, engine_session_id=session.id)
        async for reply in self.live(session, heard, peer, None):
            yield reply

    async def turn(
        self, session: Session, audio: Audio, ending: Ending, peer: Peer, ended_at: float
    ) -> AsyncIterator[Reply]:
        """A hands-free turn (16 kHz, from the microphone on the peer): what was heard, then
        the reply spoken live. `ended_at`: when the student stopped speaking."""
        seconds = round(audio.size / SAMPLE_RATE, 2)
        cut = ending is Ending.CUT
        note = f"speech is cut at {self.settings.max_audio_s:g} s; the rest was not heard"
        yield SpeechEnded(
            seconds=seconds, cut=cut, content=note if cut else None, engine_session_id=session.id
        )
        yield Thinking(engine_session_id=session.id)
        tutor = self.conversation.tutor_of(session)
        try:
            heard = await self.asr.transcribe(audio, tutor.language, session.id)
        except NoSpeech:
            yield Listening(reason="no_words", engine_session_id=session.id)
            return
        check_text(heard.text, self.settings.max_text_chars, session)
        yield Transcription(content=heard.text, engine_session_id=session.id)
        async for reply in self.live(session, heard.text, peer, None, since=ended_at):
            yield reply

    async def live(
        self,
        session: Session,
        text: str,
        peer: Peer,
        avatar: AnyAvatar | None,
        since: float | None = None,
    ) -> AsyncIterator[Reply]:
        """Speaks the reply on the live tracks sentence by sentence, as each is ready; the
        text follows on the socket. A reply still playing is cut off or waited for, as
        ENGINE_WEBRTC_REPLY_POLICY says. `since`: when the student finished asking (first
        audio is measured from it; default: now)."""
        received = since if since is not None else time.monotonic()
        if self.settings.webrtc_reply_policy == "interrupt" and peer.interrupt("new_reply"):
            yield Interrupted(reason="new_reply", engine_session_id=session.id)
        peer.reply = asyncio.current_task()
        if avatar is not None:
            peer.stream.switch(avatar)
        tutor = self.conversation.tutor_of(session)
        parts = []
        async with session.reply_lock:
            with timed("reply", log, session_id=session.id, chars=len(text), live=True) as stage:
                async for part in self.conversation.reply(session, text):
                    parts.append(part)
                    if part.speech is None:
                        continue
                    first = "first_audio_s" not in stage
                    if first:
                        stage["first_sentence_s"] = round(time.monotonic() - received, 3)
                    weights = await self.lipsync.weights(
                        part.speech, tutor.language, session.id, first=first
                    )
                    utterance = peer.stream.say(
                        part.speech.pcm,
                        part.speech.sample_rate,
                        weights,
                        on_heard=(lambda at: FIRST_AUDIO.observe(at - received)) if first else None,
                        trim_silence=first,
                    )
                    if first:  # when it is due to be heard; the metric takes when it was
                        ahead = (utterance.start - peer.stream.playhead()) / PLAYBACK_RATE
                        stage["first_audio_s"] = round(time.monotonic() - received + ahead, 3)
        REPLIES.labels("webrtc").inc()
        content = joiner(tutor).join(part.text for part in parts)
        yield TextReply(content=content, engine_session_id=session.id, delivery="webrtc")

    async def hear(self, session: Session, message: AudioMessage) -> str:
        """The student's speech → text: decoded (PyAV), then recognized in Triton."""
        settings = self.settings
        tutor = self.conversation.tutor_of(session)
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
            heard = await self.asr.transcribe(pcm, tutor.language, session.id)
        except AudioError as error:
            raise ProtocolError("invalid_audio", str(error), session.id) from error
        except NoSpeech as error:
            raise ProtocolError("no_speech", str(error), session.id) from error
        check_text(heard.text, settings.max_text_chars, session)
        return heard.text


def check_text(text: str, limit: int, session: Session) -> None:
    if len(text) > limit:
        raise ProtocolError(
            "text_too_long",
            f"content has {len(text)} characters; the limit is {limit}",
            session.id,
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _base64(data: str, max_bytes: int, session_id: str) -> bytes:
    if len(data) * 3 // 4 > max_bytes:
        raise ProtocolError(
            "audio_too_large", f"audio is over the limit of {max_bytes // 1024} KiB", session_id
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ProtocolError("invalid_audio", "data is not valid base64", session_id) from error
