"""gRPC load on every Triton model: a concurrency sweep, with dynamic batching on and off.

    .venv/bin/python -m benchmarks.triton_load [--models asr,tts] [--concurrency 1,2,4,8,16]

For each model and setting a fresh Triton (`python -m triton_ops.server`) serves only that
model: once with its config as shipped, once with `dynamic_batching` removed. Each sweep step
sends `--requests` requests (at least 4 per concurrent client) of real data (speech our voice
speaks, sentences a tutor says) and reports throughput, latency percentiles, the batch sizes
Triton actually formed (its statistics API), and for speech models the real-time factor. Results:
benchmarks/results/triton_load.{md,png} for all models, triton_load_<model>.json each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from benchmarks.common import RESULTS, ROOT, pyplot, summary_ms, triton_server
from benchmarks.harness import portraits
from benchmarks.harness.speech import piper_speech
from benchmarks.harness.triton_stats import counts, settled_counts
from media.audio import resample
from media.avatar.photo.landmarks import Region, letterbox
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import (
    ASR,
    CONTRACTS,
    EMBED,
    EMBED_ZH,
    FACE_DETECT,
    FACE_MESH,
    LIPSYNC,
    TTS,
    TTS_ZH,
    TURN,
    VAD,
    ModelContract,
)

Inputs = dict[str, npt.NDArray[Any]]
ENGLISH = [
    "What happens to water when it freezes?",
    "Let's look at the next problem together.",
    "Good work. Now try the second question on your own.",
    "Plants take in carbon dioxide and give out oxygen.",
    "Remember to show each step of your working.",
    "Can you tell me what a prime number is?",
]
MANDARIN = [
    "我们来看下一道题。",
    "做得很好，再试试第二题。",
    "植物吸收二氧化碳，放出氧气。",
    "记得写出每一步。",
]


@dataclass(frozen=True)
class Workload:
    contract: ModelContract
    requests: list[Inputs]
    speech_seconds: Callable[[Inputs, dict[str, npt.NDArray[Any]]], float] | None = None


def _text(sentence: str, mode: str | None = None) -> Inputs:
    inputs = {"TEXT": np.array([[sentence.encode()]], dtype=np.object_)}
    if mode is not None:
        inputs["MODE"] = np.array([[mode.encode()]], dtype=np.object_)
    return inputs


def _speech_16k() -> list[npt.NDArray[np.float32]]:
    return [resample(*piper_speech(s), 16000).reshape(1, -1) for s in ENGLISH]


def _audio_seconds(inputs: Inputs, _: Inputs) -> float:
    return float(inputs["AUDIO"].size / 16000)


def workload(model: str) -> Workload:
    """Real requests for `model`: speech our voice speaks, sentences a tutor says."""
    contract = CONTRACTS[model]
    if model == ASR.name:
        language = np.array([[b"en"]], dtype=np.object_)
        requests = [{"AUDIO": clip, "LANGUAGE": language} for clip in _speech_16k()]
        return Workload(contract, requests, _audio_seconds)
    if model == LIPSYNC.name:
        return Workload(contract, [{"AUDIO": clip} for clip in _speech_16k()], _audio_seconds)
    if model in (TTS.name, TTS_ZH.name):
        rate = 22050 if model == TTS.name else 24000
        sentences = ENGLISH if model == TTS.name else MANDARIN
        return Workload(
            contract, [_text(s) for s in sentences], lambda _, out: out["AUDIO"].size / rate
        )
    if model in (EMBED.name, EMBED_ZH.name):
        sentences = ENGLISH if model == EMBED.name else MANDARIN + ENGLISH[:2]
        return Workload(contract, [_text(s, "query") for s in sentences])
    if model in (FACE_DETECT.name, FACE_MESH.name):
        return Workload(contract, _faces(model))
    if model == TURN.name:
        return Workload(contract, [{"AUDIO": clip} for clip in _speech_16k()], _audio_seconds)
    if model == VAD.name:
        return Workload(contract, _vad_chunks())
    raise SystemExit(f"no workload for {model}")


def _vad_chunks() -> list[Inputs]:
    """32 ms chunks (after 64 samples of context) from the middle of our voice's sentences, as
    a microphone's first chunk of speech reaches the model (a fresh state)."""
    requests = []
    for clip in _speech_16k():
        middle = clip.shape[1] // 2
        requests.append(
            {
                "AUDIO": clip[:, middle : middle + 576].astype(np.float32),
                "STATE": np.zeros((1, 2, 128), dtype=np.float32),
            }
        )
    return requests


def _faces(model: str) -> list[Inputs]:
    """The astronaut portrait as photo avatar builds send it: whole, mirrored, with a second
    face, with the mouth covered and a picture without a face, letterboxed for the detector;
    or her face region (where the detector puts it, and tilted) cut out for the mesh."""
    astronaut = portraits.astronaut()
    mirrored = astronaut[:, ::-1].copy()
    if model == FACE_DETECT.name:
        pictures = [
            astronaut,
            mirrored,
            portraits.two_faces(),
            portraits.mouth_covered(),
            portraits.no_face(),
        ]
        return [{"IMAGE": letterbox(p)[0][np.newaxis]} for p in pictures]
    crops = []
    for tilt in (0.0, 0.1):
        for picture, cx, angle in ((astronaut, 225.0, 0.05), (mirrored, 287.0, -0.05)):
            region = Region(cx=cx, cy=128.0, side=141.0, angle=angle + tilt)
            crops.append({"IMAGE": region.crop(picture)[0][np.newaxis]})
    return crops


def single_model_repository(model: str, batching: bool, into: Path) -> Path:
    """A repository serving only `model`, its config as shipped or without dynamic batching."""
    source = ROOT / "model_repository" / model
    target = into / model
    target.mkdir(parents=True)
    config = text_format.Parse(
        (source / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    if not batching:
        config.ClearField("dynamic_batching")
    (target / "config.pbtxt").write_text(text_format.MessageToString(config))
    (target / "1").symlink_to(source / "1")
    return into


@contextlib.asynccontextmanager
async def serving(model: str, batching: bool) -> AsyncIterator[TritonClient]:
    with tempfile.TemporaryDirectory(prefix="bench-repo-") as tmp:
        repository = single_model_repository(model, batching, Path(tmp))
        async with triton_server(repository=repository) as url:
            client = TritonClient(url, request_timeout_s=600)
            try:
                yield client
            finally:
                await client.close()


async def step(
    client: TritonClient, load: Workload, concurrency: int, total: int
) -> dict[str, float]:
    model = load.contract.name
    queue: asyncio.Queue[Inputs] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(load.requests[n % len(load.requests)])
    latencies: list[float] = []
    speech = 0.0

    async def client_loop() -> None:
        nonlocal speech
        while not queue.empty():
            inputs = queue.get_nowait()
            started = time.perf_counter()
            out = await client.infer(load.contract, inputs)
            latencies.append(time.perf_counter() - started)
            if load.speech_seconds is not None:
                speech += load.speech_seconds(inputs, out)

    before = await settled_counts(client, model)
    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    after = await settled_counts(client, model, quiet_s=0.3)
    executions = max(after[1] - before[1], 1)
    row: dict[str, float] = {
        "concurrency": concurrency,
        "requests": total,
        "throughput_rps": round(total / wall, 2),
        "avg_batch": round((after[0] - before[0]) / executions, 2),
        **summary_ms(latencies),
    }
    if load.speech_seconds is not None:
        row["speech_s_per_s"] = round(speech / wall, 2)
        row["rtf"] = round(wall / speech, 4)
    return row


async def sweep(model: str, concurrencies: list[int], per_step: int) -> dict[str, Any]:
    load = workload(model)
    results: dict[str, Any] = {"model": model}
    for batching in (True, False):
        rows = []
        async with serving(model, batching) as client:
            for request in load.requests[:2]:  # warm-up
                await client.infer(load.contract, request)
            await counts(client, model)
            for concurrency in concurrencies:
                total = max(per_step, 4 * concurrency)
                rows.append(await step(client, load, concurrency, total))
                print(json.dumps({"batching": batching, **rows[-1]}), flush=True)
        results["batching_on" if batching else "batching_off"] = rows
    top_on = results["batching_on"][-1]["throughput_rps"]
    top_off = results["batching_off"][-1]["throughput_rps"]
    results["batching_gain_at_max_concurrency"] = round(top_on / top_off, 2)
    return results


def markdown(results: dict[str, Any]) -> str:
    speech = "rtf" in results["batching_on"][0]
    head = "| batching | concurrency | req/s | avg batch | p50 ms | p90 ms | p99 ms |"
    head += " speech s/s | RTF |" if speech else ""
    lines = [f"### `{results['model']}`", "", head, "|" + " --- |" * (head.count("|") - 1)]
    for key, label in (("batching_on", "on"), ("batching_off", "off")):
        for row in results[key]:
            line = (
                f"| {label} | {row['concurrency']} | {row['throughput_rps']} | {row['avg_batch']} "
                f"| {row['p50_ms']} | {row['p90_ms']} | {row['p99_ms']} |"
            )
            if speech:
                line += f" {row['speech_s_per_s']} | {row['rtf']} |"
            lines.append(line)
    lines += [
        "",
        f"Throughput with batching ÷ without, at the highest concurrency: "
        f"**{results['batching_gain_at_max_concurrency']}×**",
        "",
    ]
    return "\n".join(lines)


def summary(results: list[dict[str, Any]]) -> str:
    head = (
        "| model | p50 at 1 client | best req/s (batching on) | at clients | avg batch there "
        "| batching on ÷ off at most clients |"
    )
    lines = [head, "|" + " --- |" * 6]
    for r in results:
        on = r["batching_on"]
        best = max(on, key=lambda row: row["throughput_rps"])
        lines.append(
            f"| `{r['model']}` | {on[0]['p50_ms']} ms | {best['throughput_rps']} "
            f"| {best['concurrency']} | {best['avg_batch']} "
            f"| {r['batching_gain_at_max_concurrency']}× |"
        )
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(results), figsize=(3.2 * len(results), 6), squeeze=False)
    for column, r in enumerate(results):
        top, bottom = axes[0][column], axes[1][column]
        for key, style in (("batching_on", "-o"), ("batching_off", "--s")):
            rows = r[key]
            clients = [row["concurrency"] for row in rows]
            label = key.replace("_", " ")
            top.plot(clients, [row["throughput_rps"] for row in rows], style, label=label)
            bottom.plot(clients, [row["p90_ms"] for row in rows], style, label=label)
        top.set_title(r["model"])
        for axis in (top, bottom):
            axis.set_xscale("log", base=2)
            axis.set_xlabel("concurrent clients")
            axis.grid(alpha=0.3)
        top.set_ylim(bottom=0)
        bottom.set_ylim(bottom=0)
        top.set_ylabel("requests / s")
        bottom.set_ylabel("p90 latency (ms)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Triton models on the embedded server: throughput and p90 latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(sorted(CONTRACTS)))
    parser.add_argument("--concurrency", default="1,2,4,8,16")
    parser.add_argument(
        "--requests", type=int, default=16, help="requests per sweep step (minimum)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the report from earlier results"
    )
    args = parser.parse_args()
    models = [] if args.report_only else args.models.split(",")
    unknown = set(models) - set(CONTRACTS)
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; known: {sorted(CONTRACTS)}")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for model in models:
        result = asyncio.run(sweep(model, concurrencies, args.requests))
        (RESULTS / f"triton_load_{model}.json").write_text(json.dumps(result, indent=2))
    # the report covers every model measured so far, this run's and earlier runs'
    results = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("triton_load_*.json"))]
    report = "\n".join([summary(results), *(markdown(r) for r in results)])
    (RESULTS / "triton_load.md").write_text(report)
    plot(results, RESULTS / "triton_load.png")
    print(report)


if __name__ == "__main__":
    main()
