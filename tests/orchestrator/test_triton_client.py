"""The Triton client against the real server: a caller that gives up does not cancel the
request inside Triton (Triton 2.51 can crash on cancelled gRPC requests)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from benchmarks.harness.processes import TritonProcess
from benchmarks.harness.triton_stats import counts_after, settled_counts
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import TTS

pytestmark = pytest.mark.serving


async def test_a_cancelled_caller_lets_its_request_finish(triton: TritonProcess) -> None:
    client = TritonClient(triton.grpc_url, request_timeout_s=60)
    try:
        before = await settled_counts(client, TTS.name)
        text = "Eight planets travel around the Sun, and each of them keeps its own time. " * 3
        caller = asyncio.create_task(
            client.infer(TTS, {"TEXT": np.array([[text.encode()]], dtype=np.object_)})
        )
        await asyncio.sleep(0.05)  # the request is in Triton (it takes over half a second)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller  # the caller stops waiting at once
        # the gRPC call itself goes on (Triton's statistics cannot tell a cancelled call: its
        # Python backend runs those too) and ends with the answer, not cancelled
        (call,) = [
            task
            for task in asyncio.all_tasks()
            if task.get_coro().__qualname__ == "InferenceServerClient.infer"  # type: ignore[union-attr]
        ]
        result = await call
        assert result.as_numpy("AUDIO").shape[1] > 22_050 * 10  # all of it was spoken
        assert await counts_after(client, TTS.name, before, 1, timeout_s=20) == (1, 1)
    finally:
        await client.close()
