"""One model through Triton on a lent GPU host: its `gpu` config against its shipped one.

    python -m benchmarks.triton_gpu --triton <dir> --repository <dir> --model tts \\
        --configs gpu,default --concurrency 1,4,16,32 --out <dir>

For hosts that have a GPU and PyTorch's CUDA libraries but none of our environment: beyond
numpy, httpx and tritonclient (gRPC) it imports only `triton_ops.server`, which launches Triton
as the engine does. `--triton` is a folder holding the nvidia-pytriton wheel's `pytriton` and
`nvidia_pytriton.libs`, carried there (benchmarks/gpu_carry.py). For each config a fresh
`tritonserver` serves only the model (`--model-config-name`; `default` is config.pbtxt), its log
under `--out`; each concurrency step sends
`--requests` requests of tutor sentences from that many clients at once and reports latency,
throughput and the batches Triton formed (its statistics: requests over executions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from triton_ops.server import TritonDistribution, TritonLaunch, TritonServer

SENTENCES = (
    "Photosynthesis is how plants turn sunlight into food.",
    "Good question, let us look at it step by step.",
    "The denominator tells us how many equal parts the whole has.",
    "Try it yourself first, and I will check your answer.",
)


def counts(client: Any, model: str) -> tuple[int, int]:
    stats = client.get_inference_statistics(model).model_stats[0]
    return int(stats.inference_count), int(stats.execution_count)


def ask(client: Any, model: str, text: str) -> float:
    from tritonclient import grpc as triton

    data = triton.InferInput("TEXT", [1, 1], "BYTES")
    data.set_data_from_numpy(np.array([[text.encode()]], dtype=np.object_))
    started = time.perf_counter()
    result = client.infer(model, [data], outputs=[triton.InferRequestedOutput("AUDIO")])
    elapsed = time.perf_counter() - started
    if result.as_numpy("AUDIO").size == 0:
        raise RuntimeError(f"no audio for {text!r}")
    return elapsed * 1000


def step(url: str, model: str, concurrency: int, requests: int) -> dict[str, Any]:
    from tritonclient import grpc as triton

    per_client = max(4, requests // concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        client = triton.InferenceServerClient(url)
        for n in range(per_client):
            try:
                ms = ask(client, model, SENTENCES[(index + n) % len(SENTENCES)])
            except Exception as error:  # reported, not lost
                with lock:
                    errors.append(str(error))
                continue
            with lock:
                latencies.append(ms)

    stats_client = triton.InferenceServerClient(url)
    before = counts(stats_client, model)
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    after = counts(stats_client, model)
    inferences, executions = after[0] - before[0], after[1] - before[1]
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors[:3],
        "error_count": len(errors),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
        "requests_per_s": round(len(latencies) / wall, 1),
        "mean_batch": round(inferences / executions, 2) if executions else None,
    }


async def sweep(args: argparse.Namespace, config: str, port: int) -> dict[str, Any]:
    """A fresh Triton for `config`, launched as the engine launches its own."""
    from tritonclient import grpc as triton

    launch = TritonLaunch(
        model_repository=args.repository,
        workdir=args.out / f"triton_{config}",
        grpc_port=port,
        http_port=port + 1,
        metrics_port=port + 2,
        model_config_name=None if config == "default" else config,
    )
    server = TritonServer(launch, TritonDistribution.from_pytriton(args.triton / "pytriton"))
    try:
        started = time.monotonic()
        await server.start()
        await server.wait_ready(300)
        ready_s = time.monotonic() - started
        client = triton.InferenceServerClient(launch.grpc_url)
        for sentence in SENTENCES:  # warm-up: first runs pick kernels and fill caches
            await asyncio.to_thread(ask, client, args.model, sentence)
        url, most = launch.grpc_url, max(args.concurrency)
        await asyncio.to_thread(step, url, args.model, most, args.requests)  # batches' shapes
        steps = []
        for concurrency in args.concurrency:
            row = await asyncio.to_thread(step, url, args.model, concurrency, args.requests)
            print(json.dumps({"config": config, **row}), flush=True)
            steps.append(row)
        return {"config": config, "ready_s": round(ready_s, 1), "steps": steps}
    finally:
        await server.stop()


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"{report['model']} through Triton on {report['gpu']}; {report['cpu_cores']} CPU cores",
        "",
        "| config | clients | p50 (ms) | p95 (ms) | requests/s | mean batch | errors |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in report["runs"]:
        for row in run["steps"]:
            lines.append(
                f"| {run['config']} | {row['concurrency']} | {row['p50_ms']} | {row['p95_ms']} | "
                f"{row['requests_per_s']} | {row['mean_batch']} | {row['error_count']} |"
            )
    for config, error in report["failed"].items():
        lines.append(f"\n{config}: {error}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triton", type=Path, required=True)
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--model", default="tts")
    parser.add_argument("--configs", default="gpu,default")
    parser.add_argument("--concurrency", default="1,4,16,32")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    smi = shutil.which("nvidia-smi")
    gpu = (
        subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
        ).stdout.strip()
        if smi
        else "no GPU"
    )
    report: dict[str, Any] = {
        "model": args.model,
        "gpu": gpu,
        "cpu_cores": os.cpu_count(),
        "runs": [],
        "failed": {},
    }
    for index, config in enumerate(args.configs.split(",")):
        try:
            report["runs"].append(asyncio.run(sweep(args, config, 18001 + 10 * index)))
        except Exception as error:  # one config failing must not lose the other's numbers
            report["failed"][config] = f"{type(error).__name__}: {error}"
            print(config, "failed:", report["failed"][config], flush=True)
    (args.out / "triton_gpu.json").write_text(json.dumps(report, indent=2))
    (args.out / "triton_gpu.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
