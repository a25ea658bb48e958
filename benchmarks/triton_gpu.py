"""One model through Triton on a lent GPU host: its `gpu` config against its shipped one.

    python benchmarks/triton_gpu.py --triton <dir> --repository <dir> --model tts \\
        --configs gpu,default --concurrency 1,4,16,32 --out <dir>

For hosts that have a GPU and PyTorch's CUDA libraries but none of our environment: it needs
only numpy and tritonclient (gRPC), and imports nothing of ours. `--triton` is a folder holding
the nvidia-pytriton wheel's `pytriton/tritonserver` and `nvidia_pytriton.libs`, carried there
(what `triton_ops.server` launches here). For each config a fresh `tritonserver` serves only the
model (`--model-config-name`; `default` is config.pbtxt); each concurrency step sends
`--requests` requests of tutor sentences from that many clients at once and reports latency,
throughput and the batches Triton formed (its statistics: requests over executions).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SENTENCES = (
    "Photosynthesis is how plants turn sunlight into food.",
    "Good question, let us look at it step by step.",
    "The denominator tells us how many equal parts the whole has.",
    "Try it yourself first, and I will check your answer.",
)


def backends(triton: Path, workdir: Path) -> Path:
    """The Python backend with the stub for this interpreter next to it, where Triton looks."""
    dist = triton / "pytriton" / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = workdir / "backends" / "python"
    shutil.copytree(dist / "backends" / "python", target, dirs_exist_ok=True)
    shutil.copy2(dist / "python_backend_stubs" / version / "triton_python_backend_stub", target)
    return workdir / "backends"


def start(triton: Path, repository: Path, config: str, out: Path, port: int) -> Any:
    command = [
        str(triton / "pytriton" / "tritonserver" / "bin" / "tritonserver"),
        f"--model-repository={repository}",
        f"--backend-directory={backends(triton, Path(tempfile.mkdtemp()))}",
        f"--grpc-port={port}",
        f"--http-port={port + 1}",
        f"--metrics-port={port + 2}",
        "--log-info=true",
        "--exit-timeout-secs=5",
    ]
    if config != "default":
        command.append(f"--model-config-name={config}")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    libraries = [str(triton / "nvidia_pytriton.libs"), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(part for part in libraries if part)
    log = (out / f"tritonserver_{config}.log").open("w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(client: Any, model: str, server: Any, timeout_s: float = 300) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server.poll() is not None:
            raise RuntimeError(f"tritonserver exited with {server.returncode}")
        try:
            if client.is_model_ready(model):
                return time.monotonic() - started
        except Exception:  # not listening yet
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{model} not ready in {timeout_s} s")


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


def sweep(args: argparse.Namespace, config: str, port: int) -> dict[str, Any]:
    from tritonclient import grpc as triton

    server = start(args.triton, args.repository, config, args.out, port)
    url = f"127.0.0.1:{port}"
    try:
        client = triton.InferenceServerClient(url)
        ready_s = wait_ready(client, args.model, server)
        for sentence in SENTENCES:  # warm-up: first runs pick kernels and fill caches
            ask(client, args.model, sentence)
        step(url, args.model, max(args.concurrency), args.requests)  # and batches' shapes
        steps = []
        for concurrency in args.concurrency:
            row = step(url, args.model, concurrency, args.requests)
            print(json.dumps({"config": config, **row}), flush=True)
            steps.append(row)
        return {"config": config, "ready_s": round(ready_s, 1), "steps": steps}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


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
            report["runs"].append(sweep(args, config, 18001 + 10 * index))
        except Exception as error:  # one config failing must not lose the other's numbers
            report["failed"][config] = f"{type(error).__name__}: {error}"
            print(config, "failed:", report["failed"][config], flush=True)
    (args.out / "triton_gpu.json").write_text(json.dumps(report, indent=2))
    (args.out / "triton_gpu.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
