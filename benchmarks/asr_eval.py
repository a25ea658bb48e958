"""ASR quality on a held-out set our own tooling speaks: WER (English) and CER (Mandarin).

    .venv/bin/python -m benchmarks.asr_eval [--triton-url host:port]

English: Piper at three speeds, two espeak-ng voices (not our TTS), and Piper under white
noise at 20 and 10 dB SNR. Mandarin: our zh voice, clean and under noise. Every clip goes
through Triton's `asr` model as the engine sends it (language "" = detected), so language
identification is scored too. Results: benchmarks/results/asr_eval.{md,json}.
None of these sentences appear in the tests. Numbers are written as digits, as Whisper
writes them, so a spoken "seven hundred and twenty" heard as "720" is no error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from benchmarks.common import RESULTS, triton_server
from benchmarks.harness.scoring import char_errors, traditional_characters, word_errors
from benchmarks.harness.speech import Audio, espeak_speech, piper_speech, with_noise
from media.audio import resample
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import ASR, TTS_ZH

ENGLISH = [
    "Can you help me with my homework tonight?",
    "The heart pumps blood around the body.",
    "I think the answer is 720.",
    "Why does ice float on water?",
    "A triangle has three sides and three angles.",
    "My teacher said we should read chapter 4.",
    "Gravity pulls objects toward the center of the earth.",
    "What is the difference between weather and climate?",
    "Volcanoes form where magma reaches the surface.",
    "I don't understand how to divide fractions.",
    "Sound travels faster in water than in air.",
    "Could you explain that one more time please?",
    "The French Revolution began in 1789.",
    "Electricity flows through copper wires easily.",
    "How many bones are in the human body?",
    "The experiment needs a thermometer and a beaker.",
]
MANDARIN = [
    "你能帮我检查一下作业吗？",
    "心脏把血液送到全身。",
    "为什么冰会浮在水面上？",
    "三角形有三条边和三个角。",
    "老师让我们读第四章。",
    "地球的引力把物体拉向地面。",
    "火山是岩浆喷出地面形成的。",
    "我不太明白分数的除法。",
    "声音在水里传播得比空气里快。",
    "请你再解释一遍好吗？",
]


@dataclass(frozen=True)
class Clip:
    language: str
    variant: str
    text: str
    audio: npt.NDArray[np.float32]  # 16 kHz


Speaker = Callable[[str], Awaitable[Audio]]


def english_variants() -> dict[str, Callable[[str], Audio]]:
    return {
        "piper": lambda s: piper_speech(s),
        "piper fast (0.8×)": lambda s: piper_speech(s, length_scale=0.8),
        "piper slow (1.25×)": lambda s: piper_speech(s, length_scale=1.25),
        "espeak-ng en-us": lambda s: espeak_speech(s, "en-us"),
        "espeak-ng en-gb": lambda s: espeak_speech(s, "en-gb"),
        "piper + noise 20 dB": lambda s: with_noise(piper_speech(s), 20),
        "piper + noise 10 dB": lambda s: with_noise(piper_speech(s), 10),
    }


async def mandarin_voice(client: TritonClient, text: str) -> Audio:
    out = await client.infer(TTS_ZH, {"TEXT": np.array([[text.encode()]], dtype=np.object_)})
    return out["AUDIO"][0].astype(np.float32), 24000


async def build_clips(client: TritonClient, english: list[str], mandarin: list[str]) -> list[Clip]:
    clips = [
        Clip("en", variant, text, resample(*speak(text), 16000))
        for variant, speak in english_variants().items()
        for text in english
    ]
    for text in mandarin:
        voice = await mandarin_voice(client, text)
        for variant, audio in (
            ("zh voice", voice),
            ("zh voice + noise 20 dB", with_noise(voice, 20)),
            ("zh voice + noise 10 dB", with_noise(voice, 10)),
        ):
            clips.append(Clip("zh", variant, text, resample(*audio, 16000)))
    return clips


async def transcribe(client: TritonClient, clip: Clip) -> tuple[str, str]:
    out = await client.infer(
        ASR, {"AUDIO": clip.audio.reshape(1, -1), "LANGUAGE": np.array([[b""]], dtype=np.object_)}
    )
    return out["TEXT"][0][0].decode(), out["DETECTED_LANGUAGE"][0][0].decode()


async def evaluate(
    client: TritonClient, clips: list[Clip], concurrency: int = 4
) -> dict[str, dict[str, float]]:
    """Per variant: error rate (WER for en, CER for zh), language-ID accuracy, clip count."""
    gate = asyncio.Semaphore(concurrency)

    async def one(clip: Clip) -> tuple[str, str]:
        async with gate:
            return await transcribe(client, clip)

    heard = await asyncio.gather(*(one(clip) for clip in clips))
    totals: dict[str, list[float]] = {}
    for clip, (text, language) in zip(clips, heard, strict=True):
        scorer = word_errors if clip.language == "en" else char_errors
        errors, length = scorer(clip.text, text)
        row = totals.setdefault(clip.variant, [0, 0, 0, 0, 0])
        row[0] += errors
        row[1] += length
        row[2] += language == clip.language
        row[3] += 1
        row[4] += bool(clip.language == "zh" and traditional_characters(text))
    return {
        variant: {
            "error_rate": round(errors / max(length, 1), 4),
            "language_id": round(correct / count, 3),
            "clips": count,
            "traditional_outputs": traditional,
        }
        for variant, (errors, length, correct, count, traditional) in totals.items()
    }


def pooled(report: dict[str, dict[str, float]], prefix: str) -> float:
    rows = [row for variant, row in report.items() if variant.startswith(prefix)]
    return sum(r["error_rate"] * r["clips"] for r in rows) / max(sum(r["clips"] for r in rows), 1)


def markdown(report: dict[str, dict[str, float]]) -> str:
    lines = [
        "| set | metric | error rate | language ID | clips |",
        "| --- | --- | --- | --- | --- |",
    ]
    for variant, row in report.items():
        metric = "CER" if variant.startswith("zh") else "WER"
        lines.append(
            f"| {variant} | {metric} | {row['error_rate']:.1%} | {row['language_id']:.0%} "
            f"| {row['clips']} |"
        )
    return "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> None:
    async with triton_server(args.triton_url) as url:
        client = TritonClient(url, request_timeout_s=300)
        clips = await build_clips(client, ENGLISH, MANDARIN)
        report = await evaluate(client, clips)
        await client.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "asr_eval.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "asr_eval.md").write_text(markdown(report))
    print(markdown(report))
    print(
        f"English WER, clean Piper: {report['piper']['error_rate']:.1%}; Mandarin CER, clean: "
        f"{report['zh voice']['error_rate']:.1%}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triton-url")
    asyncio.run(main(parser.parse_args()))
