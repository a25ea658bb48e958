"""Shared plumbing for benchmarks: a Triton to measure, timing summaries."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness.processes import EngineProcess, TritonProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def pyplot() -> Any:
    """matplotlib.pyplot drawing to files only (no display on a server)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.asynccontextmanager
async def triton_server(
    url: str | None = None, repository: Path = ROOT / "model_repository"
) -> AsyncIterator[str]:
    """Yields a gRPC url: `url` if given, else that of a Triton started for the benchmark as an
    operator runs one (`python -m triton_ops.server`, the tests' `TritonProcess`)."""
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench-triton-") as workdir:
        triton = TritonProcess(Path(workdir), model_repository=repository)
        try:
            await asyncio.to_thread(triton.start, 300)
            yield triton.grpc_url
        finally:
            await asyncio.to_thread(triton.stop)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p90_ms": round(percentile(values, 90) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else float("nan"),
    }


def rerun_in_loopback(module: str) -> bool:
    """Re-runs benchmark `module` (its arguments too) inside a network namespace holding only
    loopback, if it can (root, `unshare`); True when it did (the caller is then done)."""
    if os.environ.get("BENCHMARK_NETNS") or os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    command = " ".join(["ip link set lo up && exec", sys.executable, "-m", module, *sys.argv[1:]])
    env = {**os.environ, "BENCHMARK_NETNS": "1"}
    subprocess.run(["unshare", "--net", "sh", "-c", command], check=True, env=env, cwd=ROOT)
    return True


@contextlib.contextmanager
def engine_on_triton(scratch: Path) -> Iterator[tuple[EngineProcess, TritonProcess]]:
    """A Triton and an engine using it over ENGINE_TRITON_URL (as compose runs them), in
    `scratch`; both stopped after."""
    triton = TritonProcess(scratch / "triton").start()
    try:
        engine = EngineProcess(scratch / "engine", env={"ENGINE_TRITON_URL": triton.grpc_url})
        engine.start()
        try:
            yield engine, triton
        finally:
            engine.stop()
    finally:
        triton.stop()
