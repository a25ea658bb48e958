"""The models that listen to a student's microphone, taken from the wheels that ship them and
checked: Silero VAD v6 (silero-vad, MIT) and pipecat's smart-turn v3.2 end-of-turn model
(pipecat-ai, BSD-2-Clause). Neither package is installed (silero-vad imports torch; pipecat
brings a framework we do not run): `python -m triton_ops.build_models` calls these.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from triton_ops.repository import REPOSITORY, import_model_module
from triton_ops.wheel_files import extract

log = logging.getLogger(__name__)

SILERO = "silero-vad==6.2.3"
PIPECAT = "pipecat-ai==1.14.0"
SMART_TURN = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
PIPECAT_FEATURES = "pipecat/audio/turn/smart_turn/_whisper_features.py"
TOLERANCE = 1e-4  # our features against pipecat's
# The graph is int8-quantized: its answer moves by a few hundredths when the features move by
# 1e-5, so the answers on our features and pipecat's are reported, and the features checked.


def build_vad(folder: Path) -> None:
    report = extract(SILERO, {"silero_vad/data/silero_vad.onnx": folder / "1" / "silero_vad.onnx"})
    _write_report(folder, {**report, "licence": "MIT"})


def build_turn(folder: Path) -> None:
    """The smart-turn graph, and a check that our features (`turn_features.py` over
    `whisper_features.py`) are the ones pipecat computes for it, on speech-like test sounds."""
    with tempfile.TemporaryDirectory() as scratch:
        reference = Path(scratch) / "pipecat_features.py"
        network = folder / "1" / "smart_turn.onnx"
        report: dict[str, Any] = extract(
            PIPECAT, {SMART_TURN: network, PIPECAT_FEATURES: reference}
        )
        theirs = _load(reference).compute_whisper_log_mel_features
        ours = import_model_module("turn_features", folder / "1", REPOSITORY).features
        session = ort.InferenceSession(str(network), providers=["CPUExecutionProvider"])
        feature_gap = answer_gap = 0.0
        for seconds in (1.5, 5.0, 11.0):
            sound = _test_sound(seconds)
            end = sound[-8 * 16_000 :]
            expected = theirs(np.pad(end, (8 * 16_000 - len(end), 0)), do_normalize=True)
            got = ours(sound)
            feature_gap = max(feature_gap, float(np.abs(got - expected).max()))
            answers = [
                session.run(None, {"input_features": f[np.newaxis]})[0] for f in (got, expected)
            ]
            answer_gap = max(answer_gap, float(np.abs(answers[0] - answers[1]).max()))
    report.update(
        licence="BSD-2-Clause",
        max_feature_difference_vs_pipecat=feature_gap,
        max_probability_difference_vs_pipecat=answer_gap,
    )
    _write_report(folder, report)
    if feature_gap > TOLERANCE:
        raise SystemExit(f"turn features differ from pipecat's: {report}")


def _test_sound(seconds: float) -> npt.NDArray[np.float32]:
    """Voiced, pitch-gliding bursts with pauses and a little noise: enough to exercise every
    step of the features (normalisation, the dynamic-range floor, padding and truncation)."""
    rng = np.random.default_rng(round(seconds * 10))
    t = np.arange(int(seconds * 16_000)) / 16_000
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    voice = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / 16_000) / k for k in range(1, 8))
    bursts = (np.sin(2 * np.pi * 2.3 * t) > -0.2).astype(np.float64)
    sound: npt.NDArray[np.float32] = (
        0.2 * voice * bursts + 0.003 * rng.standard_normal(t.size)
    ).astype(np.float32)
    return sound


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_report(folder: Path, report: dict[str, Any]) -> None:
    (folder / "1" / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("%s: %s", folder.name, report)
