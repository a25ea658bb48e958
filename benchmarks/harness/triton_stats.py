"""Triton's per-model counters, read once they have settled.

The Python backend reports a batch's statistics just after sending its responses, so a
client can see its answers before the counters move.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from orchestrator.triton_client import TritonClient


async def counts(client: TritonClient, model: str) -> tuple[int, int]:
    """(requests, executions) so far; JSON statistics leave out zero counts."""
    stats = (await client.statistics(model))["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


async def settled_counts(client: TritonClient, model: str, quiet_s: float = 0.5) -> tuple[int, int]:
    previous = await counts(client, model)
    while True:
        await asyncio.sleep(quiet_s)
        current = await counts(client, model)
        if current == previous:
            return current
        previous = current


async def counts_after(
    client: TritonClient, model: str, before: tuple[int, int], requests: int, timeout_s: float = 5
) -> tuple[int, int]:
    """(requests, executions) since `before`, once `requests` of them have been counted."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        now = await counts(client, model)
        delta = (now[0] - before[0], now[1] - before[1])
        if delta[0] >= requests or asyncio.get_running_loop().time() > deadline:
            return delta
        await asyncio.sleep(0.1)


async def batch_sizes(client: TritonClient, model: str) -> Counter[int]:
    """How many executions ran each batch size so far."""
    stats = (await client.statistics(model))["model_stats"][0]
    return Counter(
        {
            int(entry["batch_size"]): int(entry["compute_infer"].get("count", 0))
            for entry in stats.get("batch_stats", [])
        }
    )


async def together(
    client: TritonClient,
    model: str,
    occupier: Callable[[], Awaitable[Any]],
    requests: Callable[[], Sequence[Awaitable[Any]]],
    attempts: int = 3,
    start_s: float = 0.1,
) -> tuple[list[Any], Counter[int]]:
    """Sends `requests()` while `occupier()` (one slow request) keeps the model's instance
    busy, so they wait in the queue together and leave it as one batch; returns their results
    (exceptions included) and the executions by batch size Triton ran meanwhile. On a loaded
    machine the occupier can still be in transit when the others arrive, so it tries up to
    `attempts` times for {1: 1, len(requests): 1}, and returns the last try."""
    expected: Counter[int] = Counter()
    for _ in range(attempts):
        await settled_counts(client, model)
        before = await batch_sizes(client, model)
        busy = asyncio.ensure_future(occupier())
        await asyncio.sleep(start_s)
        batch = requests()
        expected = Counter({1: 1, len(batch): 1})
        results = await asyncio.gather(*batch, return_exceptions=True)
        await busy
        await settled_counts(client, model, quiet_s=0.2)
        ran = await batch_sizes(client, model)
        ran.subtract(before)
        if +ran == expected:
            break
    return results, +ran
