"""Shared plumbing for benchmarks: an embedded Triton on free ports, timing summaries."""

from __future__ import annotations

import contextlib
import socket
import statistics
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from triton_ops.server import TritonLaunch, TritonServer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def pyplot() -> Any:
    """matplotlib.pyplot drawing to files only (no display on a server)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def embedded_triton(
    repository: Path = ROOT / "model_repository", url: str | None = None
) -> AsyncIterator[str]:
    """Yields a gRPC url: `url` if given, else a Triton started here for the benchmark."""
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench-triton-") as workdir:
        launch = TritonLaunch(
            model_repository=repository,
            workdir=Path(workdir),
            grpc_port=free_port(),
            http_port=free_port(),
            metrics_port=free_port(),
        )
        server = TritonServer(launch)
        await server.start()
        try:
            await server.wait_ready(300)
            yield launch.grpc_url
        finally:
            await server.stop()


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
