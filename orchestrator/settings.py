"""The engine's one Settings object: every knob, read from `ENGINE_*` variables or `.env`."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class IceServer(BaseModel):
    """A STUN or TURN server for WebRTC (coturn in production)."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ENGINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # ENGINE_X= (compose passing an unset variable) means unset
        extra="ignore",
    )

    environment: Literal["development", "production"] = "development"

    # HTTP / WebSocket server
    host: str = "0.0.0.0"
    port: int = Field(default=9000, ge=1, le=65535)
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the engine at (ws://… or wss://…); "
        "engine_url is built from the request's host when unset.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="When set, /v1/* needs `Authorization: Bearer <key>`."
    )
    cors_origins: list[str] = Field(default_factory=list)

    # Tokens and sessions
    secret_key: SecretStr | None = Field(
        default=None,
        description="HMAC secret for engine tokens; generated into data_dir on first run if unset.",
    )
    token_ttl_s: int = Field(default=24 * 3600, gt=0)
    session_ttl_s: float = Field(default=3600.0, gt=0, description="Idle time before expiry.")
    session_sweep_interval_s: float = Field(default=30.0, gt=0)
    history_max_turns: int = Field(default=20, ge=1)

    # Conversation limits
    max_text_chars: int = Field(default=2000, ge=1)
    max_inflight_per_connection: int = Field(default=4, ge=1)
    max_replies_in_flight: int = Field(
        default=8,
        ge=1,
        description="Replies the whole engine works on at once; past it new ones get `busy`.",
    )

    # Speech input (audio messages)
    max_audio_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Decoded size.")
    max_audio_s: float = Field(default=30.0, gt=0, le=30, description="Whisper hears 30 s at most.")
    silence_dbfs: float = Field(default=-50.0, description="Quieter than this is silence.")
    no_speech_prob: float = Field(default=0.6, ge=0, le=1)
    no_speech_logprob: float = Field(default=-1.0)

    # Avatars and video replies
    avatars_dir: Path = PROJECT_ROOT / "avatars"
    video_fps: int = Field(default=25, ge=10, le=60)
    video_width: int | None = Field(
        default=None, ge=64, le=1920, description="Default: the avatar's."
    )
    video_height: int | None = Field(default=None, ge=64, le=1920)
    video_crf: int = Field(default=23, ge=0, le=51, description="H.264 quality: lower is better.")
    lipsync_source: Literal["model", "alignment"] = Field(
        default="model",
        description="model: the lip-sync network in Triton hears the speech; alignment: the TTS's "
        "own phoneme timings (exact, for our voices only).",
    )
    lipsync_lead_ms: float = Field(
        default=40.0,
        ge=0,
        le=200,
        description="How far the mouth moves ahead of the sound. Lips anticipate speech, and "
        "viewers notice a mouth that lags its sound at about 45 ms but one that leads only "
        "at about 125 ms (ITU-R BT.1359).",
    )

    tts_in_flight: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Sentences per voice this engine has at Triton at once; the rest wait "
        "in the engine, the one whose student runs out of speech first going first. On CPU "
        "Triton speaks one sentence at a time anyway; on a GPU, its batch size.",
    )
    keep_warm_s: float = Field(
        default=1.0,
        ge=0,
        description="While students are connected, their tutors' voice and embedding models get "
        "a tiny request when idle this long (not while the student's reply still plays for "
        "longer than twice this), so the first sentence after a pause is not slowed by cold "
        "memory (orchestrator/warmth.py). 0: off.",
    )

    # WebRTC
    webrtc_ice_servers: list[IceServer] = Field(
        default_factory=list, description='JSON: [{"urls": ["turn:turn.example.com:3478"], …}]'
    )
    webrtc_host_addresses: list[str] | None = Field(
        default=None,
        description='Gather ICE host candidates on exactly these (["127.0.0.1"]: one host).',
    )
    webrtc_allowed_networks: list[str] = Field(
        default_factory=list, description="Accept remote ICE candidates only inside these CIDRs."
    )
    webrtc_idle_timeout_s: float = Field(default=300.0, gt=0)
    webrtc_sweep_interval_s: float = Field(default=10.0, gt=0)
    webrtc_reply_policy: Literal["interrupt", "queue"] = Field(
        default="interrupt", description="What a new reply does to one still being spoken."
    )
    default_avatar: str = "avatar_tutor_13"

    # Hands-free voice: the microphone on the user's peer
    vad_runs_in: Literal["engine", "triton"] = Field(
        default="engine",
        description="Where the voice-activity network runs: in the engine (ONNX Runtime, one "
        "thread) or in Triton's `vad` model (benchmarks/listening.py compares them).",
    )
    turn_start_s: float = Field(default=0.2, gt=0, le=2, description="Speech that opens a turn.")
    turn_pause_s: float = Field(
        default=0.2, gt=0, le=2, description="Silence after which the end-of-turn model is asked."
    )
    turn_timeout_s: float = Field(
        default=1.2, gt=0, le=10, description="Silence that ends a turn whatever the model says."
    )
    barge_in_s: float = Field(
        default=0.25, gt=0, le=5, description="Speech over the tutor that interrupts it."
    )
    echo_gate_db: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description="While the tutor is heard, the student counts as speaking only if no more "
        "than this much quieter than the tutor's voice (its echo is quieter).",
    )

    # Photo avatars (POST /v1/avatars)
    photo_avatars_dir: Path | None = Field(
        default=None, description="Where photo avatars are kept; default: data_dir/avatars."
    )
    photo_avatar_size: tuple[int, int] = Field(
        default=(512, 512), description="Width, height of a photo avatar's video."
    )
    avatar_max_upload_bytes: int = Field(default=15 * 1024 * 1024, ge=1024)
    avatar_max_pixels: int = Field(default=40_000_000, ge=10_000)
    avatar_min_eye_distance_px: float = Field(
        default=28.0, gt=0, description="Smaller faces (in the uploaded picture) are refused."
    )
    avatar_max_yaw_degrees: float = Field(default=30.0, gt=0, le=90)
    avatar_max_pitch_degrees: float = Field(default=25.0, gt=0, le=90)
    avatar_build_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="POST /v1/avatars answers when the build ends (201, or its 4xx) if it ends "
        "within this; else 202 while it builds.",
    )
    avatar_builds_at_once: int = Field(default=2, ge=1)
    max_photo_avatars: int = Field(
        default=50, ge=0, description="Each ready photo avatar holds ≈8 MB of warp fields."
    )

    # Several engines behind one front door (orchestrator/cluster/)
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0: sessions, student placement and engine heartbeats "
        "shared by every engine; unset: this engine alone, everything in its memory.",
    )
    redis_prefix: str = Field(default="tutor-engine", min_length=1, pattern=r"^[\w.-]+$")
    engine_id: str | None = Field(
        default=None,
        pattern=r"^[\w.-]{1,64}$",
        description="This engine's name among its peers; default: host name and port.",
    )
    heartbeat_s: float = Field(default=0.5, gt=0, le=10)
    dead_after_s: float = Field(
        default=2.0,
        gt=0,
        description="An engine whose heartbeat is older than this is dead: its students move.",
    )
    drain_timeout_s: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM the engine takes no new students, lets replies in flight finish "
        "for at most this long, closes its sockets and peers, and exits.",
    )

    # Triton
    triton_url: str | None = Field(
        default=None,
        description="host:port of a running Triton's gRPC endpoint; unset starts the embedded one.",
    )
    triton_binary: Path | None = Field(
        default=None,
        description="The embedded Triton's tritonserver binary (a system install with its own "
        "backends); default: the one in nvidia-pytriton.",
    )
    model_repository: Path = PROJECT_ROOT / "model_repository"
    triton_model_config_name: str | None = Field(
        default=None, description="Triton --model-config-name (config variant, e.g. tensorrt)."
    )
    triton_grpc_port: int = Field(default=8001, ge=1, le=65535)
    triton_http_port: int = Field(default=8000, ge=1, le=65535)
    triton_metrics_port: int = Field(default=8002, ge=1, le=65535)
    triton_startup_timeout_s: float = Field(default=180.0, gt=0)
    triton_request_timeout_s: float = Field(default=30.0, gt=0)
    triton_restart_backoff_s: float = Field(default=1.0, gt=0)
    health_probe_timeout_s: float = Field(default=2.0, gt=0)

    # Knowledge bases
    knowledge_seed_dir: Path | None = Field(
        default=PROJECT_ROOT / "config" / "knowledge",
        description="Folders <kb_id>/ with a kb.toml and .md/.txt documents, ingested at start.",
    )
    retrieval_k: int = Field(default=3, ge=1, le=20)
    knowledge_min_score_en: float = Field(
        default=0.25, description="MiniLM cosine below which a passage does not answer."
    )
    knowledge_min_score_zh: float = Field(
        default=0.86,
        description="e5 cosine (a compressed scale) below which a passage does not answer.",
    )
    knowledge_exact_below: int = Field(
        default=20_000, ge=0, description="Chunks below which search is exact; above, FAISS HNSW."
    )
    max_document_chars: int = Field(default=500_000, ge=100)
    knowledge_dir: Path | None = Field(
        default=None,
        description="Where knowledge bases are kept (storage every engine reads, when there are "
        "several); default: data_dir/knowledge.",
    )

    # Files
    data_dir: Path = PROJECT_ROOT / "var"
    tutors_file: Path = PROJECT_ROOT / "config" / "tutors.toml"

    # Logs
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("public_url")
    @classmethod
    def _public_url_is_websocket(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        if not value.startswith(("ws://", "wss://", "http://", "https://")):
            raise ValueError("public_url must start with ws://, wss://, http:// or https://")
        return value.replace("https://", "wss://", 1).replace("http://", "ws://", 1)

    @field_validator("triton_url")
    @classmethod
    def _triton_url_is_host_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("triton_url must be host:port (Triton's gRPC endpoint)")
        return value

    @model_validator(mode="after")
    def _cluster_is_complete(self) -> Settings:
        if self.redis_url is None:
            return self
        if self.public_url is None:
            raise ValueError(
                "with ENGINE_REDIS_URL each engine needs ENGINE_PUBLIC_URL: the address students "
                "reach this engine at (its own, or a path the front door routes to it)"
            )
        if self.dead_after_s < 2 * self.heartbeat_s:
            raise ValueError("ENGINE_DEAD_AFTER_S must be at least twice ENGINE_HEARTBEAT_S")
        return self

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("production needs ENGINE_SECRET_KEY of at least 32 characters")
        if self.api_key is not None and len(self.api_key.get_secret_value()) < 16:
            raise ValueError("ENGINE_API_KEY must be at least 16 characters in production")
        return self

    @property
    def video_size(self) -> tuple[int, int] | None:
        if self.video_width is None or self.video_height is None:
            return None
        return (self.video_width - self.video_width % 2, self.video_height - self.video_height % 2)

    @property
    def photo_avatars(self) -> Path:
        return self.photo_avatars_dir or self.data_dir / "avatars"

    @property
    def knowledge_root(self) -> Path:
        return self.knowledge_dir or self.data_dir / "knowledge"

    @property
    def engine_name(self) -> str:
        return self.engine_id or f"{socket.gethostname()}-{self.port}"

    @property
    def embedded_triton(self) -> bool:
        return self.triton_url is None

    @property
    def triton_grpc_target(self) -> str:
        return self.triton_url or f"127.0.0.1:{self.triton_grpc_port}"
