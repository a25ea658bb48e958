"""TTS through Triton: real-time factor for one stream, and throughput at N concurrent streams.

    .venv/bin/python -m benchmarks.tts_rtf [--streams 8] [--rounds 3] [--triton-url host:port]

RTF = processing time / seconds of speech produced (lower is faster; < 1 is faster than real
time). Each stream sends the sentences one after another, as a reply's sentences arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np

from benchmarks.common import RESULTS, summary_ms, triton_server
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import TTS

SENTENCES = [
    "Photosynthesis is how plants turn light into food.",
    "They take in carbon dioxide through tiny pores in their leaves.",
    "Water travels up from the roots.",
    "Chlorophyll, the green pigment, captures the energy of sunlight.",
    "The plant stores that energy as sugar, and releases oxygen into the air.",
    "What do you think would happen to a plant kept in the dark?",
]


async def stream(client: TritonClient, rounds: int, rate: int) -> tuple[float, list[float]]:
    """One student's replies: returns (seconds of speech, per-sentence latencies)."""
    audio_s, latencies = 0.0, []
    for _ in range(rounds):
        for sentence in SENTENCES:
            started = time.perf_counter()
            out = await client.infer(
                TTS, {"TEXT": np.array([[sentence.encode()]], dtype=np.object_)}
            )
            latencies.append(time.perf_counter() - started)
            audio_s += len(out["AUDIO"][0]) / rate
    return audio_s, latencies


async def measure(client: TritonClient, streams: int, rounds: int, rate: int) -> dict[str, float]:
    started = time.perf_counter()
    results = await asyncio.gather(*(stream(client, rounds, rate) for _ in range(streams)))
    wall = time.perf_counter() - started
    audio = sum(a for a, _ in results)
    latencies = [x for _, lat in results for x in lat]
    return {
        "streams": streams,
        "speech_s": round(audio, 1),
        "wall_s": round(wall, 2),
        "rtf": round(wall / audio, 4),
        "speech_s_per_s": round(audio / wall, 2),
        **summary_ms(latencies),
    }


async def main(args: argparse.Namespace) -> None:
    async with triton_server(args.triton_url) as url:
        client = TritonClient(url, request_timeout_s=300)
        rate = int((await client.parameters(TTS.name))["sample_rate"])
        await stream(client, 1, rate)  # warm-up
        single = await measure(client, 1, args.rounds, rate)
        many = await measure(client, args.streams, args.rounds, rate)
        await client.close()
    report = {
        "single": single,
        "concurrent": many,
        "throughput_gain": round(many["speech_s_per_s"] / single["speech_s_per_s"], 2),
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tts_rtf.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--triton-url")
    asyncio.run(main(parser.parse_args()))
