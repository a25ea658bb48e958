"""WebSocket messages (../shared/PROTOCOL.md): two discriminated unions, client and server.

Names and fields here are the contract existing clients code against: add, never rename.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


def timestamp() -> str:
    return datetime.now(UTC).isoformat()


class ProtocolError(Exception):
    """A message the server cannot act on; answered with an `error` message."""

    def __init__(
        self,
        code: str,
        content: str,
        engine_session_id: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(content)
        self.code = code
        self.content = content
        self.engine_session_id = engine_session_id
        self.retryable = retryable


# --- client → server -------------------------------------------------------------------


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


class _ClientMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class TextMessage(_ClientMessage):
    type: Literal["text"]
    content: NonBlank
    avatar_id: str | None = None
    engine_session_id: str | None = None


class AudioMessage(_ClientMessage):
    type: Literal["audio"]
    data: NonBlank = Field(description="base64 audio (WAV, WebM/Opus, Ogg, MP3, M4A)")
    avatar_id: str | None = None
    engine_session_id: str | None = None
    format: Literal["pcm_s16le", "pcm_f32le"] | None = Field(
        default=None, description="Only for raw PCM without a container; needs sample_rate."
    )
    sample_rate: int | None = None


class IceCandidate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    candidate: str
    sdpMid: str | None = None
    sdpMLineIndex: int | None = None


class WebRTCOfferMessage(_ClientMessage):
    type: Literal["webrtc_offer"]
    sdp: str = Field(min_length=1)
    user_id: int | str
    avatar_id: str | None = None


class WebRTCIceCandidateMessage(_ClientMessage):
    type: Literal["webrtc_ice_candidate"]
    candidate: IceCandidate | None  # null marks the end of the browser's candidates
    user_id: int | str


class TextWebRTCMessage(_ClientMessage):
    type: Literal["text_webrtc"]
    content: NonBlank
    user_id: int | str
    avatar_id: str | None = None
    engine_session_id: str | None = None


class InterruptMessage(_ClientMessage):
    """Barge-in: stop the tutor's live reply now (audio and video return to idle)."""

    type: Literal["interrupt"]
    engine_session_id: str | None = None


class ListenMessage(_ClientMessage):
    """Hands-free: which session the microphone on the user's peer speaks to (`enabled`:
    false mutes it). Without one, it speaks to the session of the last `text_webrtc`."""

    type: Literal["listen"]
    engine_session_id: str | None = None
    enabled: bool = True


ClientMessage = Annotated[
    TextMessage
    | AudioMessage
    | WebRTCOfferMessage
    | WebRTCIceCandidateMessage
    | TextWebRTCMessage
    | InterruptMessage
    | ListenMessage,
    Field(discriminator="type"),
]
CLIENT_TYPES = (
    "text",
    "audio",
    "webrtc_offer",
    "webrtc_ice_candidate",
    "text_webrtc",
    "interrupt",
    "listen",
)
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


MAX_DEPTH = 32  # no message of ours nests deeper than 3


def parse_json(raw: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """JSON a client sent, or ValueError saying why it cannot be used: not JSON, an integer
    too long for Python (4 300 digits), nesting deeper than `max_depth` (deep nesting also
    exhausts the parser's recursion), or a lone UTF-16 surrogate, which survives parsing but
    can be neither stored nor sent back."""
    try:
        data = json.loads(raw)
    except RecursionError as error:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, the digit limit
        if "integer string conversion" in str(error):
            raise ValueError("not usable JSON: a number has more than 4300 digits") from error
        raise ValueError(f"not valid JSON: {error}") from error
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _encodable(value)
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise ValueError(f"JSON nested deeper than {max_depth} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _encodable(key)
                stack.append((item, depth + 1))
    return data


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"JSON with a lone UTF-16 surrogate (\\u{ord(text[error.start]):04x}) in a string"
        ) from error


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """Parses one frame, or raises ProtocolError with a message a person can act on."""
    try:
        data = parse_json(raw)
    except ValueError as error:
        raise ProtocolError("malformed_json", f"message is {error}") from error
    if not isinstance(data, dict):
        raise ProtocolError("malformed_message", "message must be a JSON object")
    kind = data.get("type")
    session_hint = (
        data.get("engine_session_id") if isinstance(data.get("engine_session_id"), str) else None
    )
    if kind not in CLIENT_TYPES:
        raise ProtocolError(
            "unknown_type",
            f"unknown message type {kind!r}; expected one of: {', '.join(CLIENT_TYPES)}",
            session_hint,
        )
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as error:
        raise ProtocolError("invalid_message", _describe(kind, error), session_hint) from error


def _describe(kind: str, error: ValidationError) -> str:
    problems = []
    for issue in error.errors():
        field = ".".join(str(part) for part in issue["loc"][1:]) or "message"
        if issue["type"] == "missing":
            problems.append(f"'{field}' is required")
        else:
            problems.append(f"'{field}': {issue['msg']}")
    return f"invalid {kind} message: " + "; ".join(problems)


# --- server → client -------------------------------------------------------------------


class _ServerMessage(BaseModel):
    timestamp: str = Field(default_factory=timestamp)
    engine_session_id: str | None = None

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class TextReply(_ServerMessage):
    type: Literal["text"] = "text"
    content: str
    audio: str | None = Field(default=None, description="base64 WAV of the spoken reply")
    role: Literal["assistant"] = "assistant"
    delivery: Literal["webrtc"] | None = Field(
        default=None, description="webrtc: the speech and video went out on the live tracks"
    )


class VideoReply(_ServerMessage):
    type: Literal["video"] = "video"
    video: str
    audio: str
    content: str
    role: Literal["assistant"] = "assistant"


class Transcription(_ServerMessage):
    type: Literal["transcription"] = "transcription"
    content: str
    role: Literal["user"] = "user"


class WebRTCAnswer(_ServerMessage):
    type: Literal["webrtc_answer"] = "webrtc_answer"
    sdp: str


class Interrupted(_ServerMessage):
    """A live reply that stopped before its end, and why: `interrupt` (the client asked),
    `barge_in` (the student spoke), `new_reply` (a newer reply took over),
    `peer_replaced` or `peer_closed` (the WebRTC connection it played on went away)."""

    type: Literal["interrupted"] = "interrupted"
    reason: str


class SpeechStarted(_ServerMessage):
    """Hands-free: the student started speaking (the tutor, if talking, stops on `barge_in`)."""

    type: Literal["speech_started"] = "speech_started"


class SpeechEnded(_ServerMessage):
    """Hands-free: the student's turn is over. `cut`: it reached ENGINE_MAX_AUDIO_S and was
    cut there (`content` says so); what came before is answered."""

    type: Literal["speech_ended"] = "speech_ended"
    seconds: float
    cut: bool = False
    content: str | None = None


class Thinking(_ServerMessage):
    """Hands-free: the turn is being transcribed and answered."""

    type: Literal["thinking"] = "thinking"


class Listening(_ServerMessage):
    """Hands-free: back to listening without an answer, and why: `no_words` (nothing was
    recognized in it), `too_short_over_tutor` (a short sound while the tutor talked), `muted`
    and `unmuted` (after `listen`)."""

    type: Literal["listening"] = "listening"
    reason: str


class ErrorMessage(_ServerMessage):
    type: Literal["error"] = "error"
    content: str
    code: str = "error"
    retryable: bool = False
    engine_url: str | None = Field(
        default=None, description="code engine_moved: where this connection is served now"
    )

    @classmethod
    def from_protocol_error(cls, error: ProtocolError) -> ErrorMessage:
        return cls(
            content=error.content,
            code=error.code,
            engine_session_id=error.engine_session_id,
            retryable=error.retryable,
        )


ServerMessage = Annotated[
    TextReply
    | VideoReply
    | Transcription
    | WebRTCAnswer
    | Interrupted
    | SpeechStarted
    | SpeechEnded
    | Thinking
    | Listening
    | ErrorMessage,
    Field(discriminator="type"),
]
server_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def parse_server_message(raw: str | bytes | dict[str, Any]) -> ServerMessage:
    """For clients and tests: the server's frames, typed."""
    data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    return server_adapter.validate_python(data)
