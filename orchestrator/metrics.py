"""Prometheus metrics of the orchestrator, and the timer that feeds logs and metrics at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

STAGE_SECONDS = Histogram(
    "tutor_engine_stage_seconds",
    "Time spent in each stage of a reply.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ERRORS = Counter("tutor_engine_errors_total", "Errors answered to clients, by code.", ["code"])
ACTIVE_SESSIONS = Gauge("tutor_engine_active_sessions", "Sessions in the registry.")
ACTIVE_CONNECTIONS = Gauge("tutor_engine_active_connections", "Open WebSocket connections.")
REPLIES = Counter("tutor_engine_replies_total", "Replies sent, by kind.", ["kind"])
FIRST_AUDIO = Histogram(
    "tutor_engine_first_audio_seconds",
    "Live replies: from the student's message to the first speech leaving the audio track.",
    buckets=(0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
)
LIVE_RENDER_SECONDS = Histogram(
    "tutor_engine_live_render_seconds",
    "Live streams: rendering one video frame of the avatar.",
    buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064),
)
LIVE_FRAMES_SKIPPED = Counter(
    "tutor_engine_live_frames_skipped_total",
    "Live streams: video frames left out because the stream fell behind its clock (the CPU "
    "is saturated).",
)
REPLIES_IN_FLIGHT = Gauge(
    "tutor_engine_replies_in_flight", "Replies being worked on now (admitted, not finished)."
)
REPLY_CAPACITY = Gauge(
    "tutor_engine_reply_capacity",
    "Replies the engine admits at once (ENGINE_MAX_REPLIES_IN_FLIGHT).",
)
ACTIVE_PEERS = Gauge("tutor_engine_active_peers", "WebRTC peer connections.")
KEEP_WARM = Counter(
    "tutor_engine_keep_warm_requests_total",
    "Requests sent only to keep a model warm between a student's turns (ENGINE_KEEP_WARM_S).",
    ["model"],
)
CLUSTER_EVENTS = Counter(
    "tutor_engine_cluster_events_total",
    "Several engines: students taken over (from an engine that died, drains, or the front door "
    "finds down), students let go (placed elsewhere), heartbeats that failed, session records "
    "written back to Redis.",
    ["event"],
)
ASYNCIO_TASKS = Gauge("tutor_engine_asyncio_tasks", "Tasks alive in the engine's event loop.")


@contextmanager
def timed(stage: str, logger: logging.Logger, **fields: Any) -> Iterator[dict[str, Any]]:
    """Times a stage: observes its histogram and logs one line with the fields given.

    The yielded dict can take more fields while the stage runs.
    """
    started = time.perf_counter()
    extra: dict[str, Any] = {"stage": stage, **fields}
    try:
        yield extra
    finally:
        elapsed = time.perf_counter() - started
        STAGE_SECONDS.labels(stage).observe(elapsed)
        extra["ms"] = round(elapsed * 1000, 1)
        logger.info("stage %s", stage, extra=extra)
