"""benchmarks/triton_gpu.py against the real Triton here: the shipped tts config, a short sweep."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import triton_gpu
from triton_ops.repository import REPOSITORY


@pytest.mark.timeout(300)
def test_a_sweep_reports_latency_and_the_batches_triton_formed(tmp_path: Path) -> None:
    import pytriton

    repository = tmp_path / "repository"
    (repository / "tts").mkdir(parents=True)
    shutil.copy(REPOSITORY / "graph_runners.py", repository)
    shutil.copy(REPOSITORY / "tts" / "config.pbtxt", repository / "tts")
    (repository / "tts" / "1").symlink_to(REPOSITORY / "tts" / "1")
    out = tmp_path / "out"

    triton_gpu.main(
        [
            f"--triton={Path(pytriton.__file__).parent.parent}",
            f"--repository={repository}",
            "--configs=default",
            "--concurrency=1,4",
            "--requests=8",
            f"--out={out}",
        ]
    )

    report = json.loads((out / "triton_gpu.json").read_text())
    assert report["failed"] == {}
    one, four = report["runs"][0]["steps"]
    assert (one["requests"], one["error_count"], one["mean_batch"]) == (8, 0, 1.0)
    assert (four["requests"], four["error_count"]) == (16, 0)
    assert four["mean_batch"] > 1.0  # four clients at once: Triton batched them
    assert four["p50_ms"] > one["p50_ms"] > 0
    assert "| default | 4 |" in (out / "triton_gpu.md").read_text()
