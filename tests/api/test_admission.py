"""Past capacity the engine says `busy` at once, and what it admitted keeps its latency."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import receive, send
from benchmarks.harness.processes import EngineProcess, TritonProcess
from tests.support.metrics import scrape

pytestmark = pytest.mark.serving


async def test_overload_gets_a_fast_busy_and_admitted_replies_finish(
    triton: TritonProcess, tmp_path: Path
) -> None:
    engine = EngineProcess(
        tmp_path,
        env={"ENGINE_TRITON_URL": triton.grpc_url, "ENGINE_MAX_REPLIES_IN_FLIGHT": "2"},
    ).start()
    try:
        sessions = [engine.create_session(student_id=3000 + n) for n in range(8)]
        sockets = [
            await connect(engine.ws_url(s["session_id"], s["engine_token"])) for s in sessions
        ]
        started = time.monotonic()
        for ws in sockets:
            await send(ws, type="text", content="What is photosynthesis?")

        async def first_answer(ws):  # type: ignore[no-untyped-def]
            message = await receive(ws, timeout_s=60)
            return message, time.monotonic() - started

        answers = await asyncio.gather(*(first_answer(ws) for ws in sockets))
        busy = [t for m, t in answers if m["type"] == "error" and m["code"] == "busy"]
        replies = [t for m, t in answers if m["type"] == "text"]
        assert len(busy) == 6 and len(replies) == 2, [m for m, _ in answers]
        assert max(busy) < 1.0  # refused at once, not after queueing
        assert max(replies) < 10.0
        metrics = scrape(engine.base_url + "/metrics")
        assert metrics[("tutor_engine_reply_capacity", ())] == 2
        assert metrics[("tutor_engine_replies_in_flight", ())] == 0  # every place given back
        for ws in sockets:
            await ws.close()
    finally:
        engine.stop()
