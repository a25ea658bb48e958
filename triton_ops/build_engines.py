"""Builds TensorRT plans from the exported ONNX graphs, and checks them against ONNX Runtime.

Covers the graphs TensorRT can take: Whisper's encoder and decoder, the lip-sync network,
MiniLM and the two face graphs. The two voices are not: their graphs sample noise and expand
phoneme durations into data-dependent lengths, which nobody has checked through TensorRT here
(no GPU); they run on onnxruntime-gpu's CUDA provider instead (their configs/gpu.pbtxt).

    python -m triton_ops.build_engines [--fp32] [--check] [models…]

Runs on a GPU host with the `tensorrt` Python package (the compose `engine-builder`
service). For each graph: one optimization profile spanning batch 1 … the model's
max_batch_size (from its config.pbtxt) and the graph's dynamic lengths; FP16 unless --fp32.
Plans land next to the ONNX files, where each model's `configs/gpu.pbtxt` (Triton
--model-config-name=gpu) points.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from triton_ops.repository import REPOSITORY, import_model_module

log = logging.getLogger(__name__)


Shape = tuple[int, ...]


@dataclass(frozen=True)
class Profile:
    minimum: Shape
    optimum: Shape
    maximum: Shape


@dataclass(frozen=True)
class EngineSpec:
    model: str
    onnx: str  # in the model's version folder
    plan: str
    profiles: dict[str, Profile]  # per dynamic input
    sample: Callable[
        [], dict[str, npt.NDArray[Any]]
    ]  # inputs for the TensorRT vs ONNX Runtime check
    tolerance: float = 5e-2  # FP16 against FP32


def max_batch(model: str, repository: Path = REPOSITORY) -> int:
    config = text_format.Parse(
        (repository / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    return int(config.max_batch_size)


def whisper_specs(repository: Path = REPOSITORY) -> list[EngineSpec]:
    folder = repository / "asr" / "1"
    dims = json.loads((folder / "whisper_config.json").read_text(encoding="utf-8"))
    layers, heads, depth = dims["layers"], dims["heads"], dims["head_dim"]
    batch = max_batch("asr", repository)
    frames, context, prompt = 1500, 448, 32

    def cache(b: int, length: int) -> Shape:
        return (layers, 2, b, heads, length, depth)

    rng = np.random.default_rng(0)

    def encoder_sample() -> dict[str, npt.NDArray[Any]]:
        return {"mel": rng.standard_normal((2, 80, 3000)).astype(np.float32) * 0.5}

    def decoder_sample() -> dict[str, npt.NDArray[Any]]:
        return {
            "tokens": np.array([[50258, 50259, 50359, 50363]] * 2, dtype=np.int64),
            "past": np.zeros(cache(2, 0), dtype=np.float32),
            "cross": rng.standard_normal((layers, 2, 2, heads, frames, depth)).astype(np.float32),
        }

    return [
        EngineSpec(
            "asr",
            "encoder.onnx",
            "encoder.plan",
            {"mel": Profile((1, 80, 3000), (max(1, batch // 2), 80, 3000), (batch, 80, 3000))},
            encoder_sample,
        ),
        EngineSpec(
            "asr",
            "decoder.onnx",
            "decoder.plan",
            {
                "tokens": Profile((1, 1), (batch, 1), (batch, prompt)),
                "past": Profile(cache(1, 0), cache(batch, 64), cache(batch, context)),
                "cross": Profile(
                    (layers, 2, 1, heads, frames, depth),
                    (layers, 2, batch, heads, frames, depth),
                    (layers, 2, batch, heads, frames, depth),
                ),
            },
            decoder_sample,
        ),
    ]


def lipsync_specs(repository: Path = REPOSITORY) -> list[EngineSpec]:
    batch = max_batch("lipsync", repository)
    frames = 100 * 60  # 60 s of speech at 100 network frames a second

    def sample() -> dict[str, npt.NDArray[Any]]:
        return {"FEATS": np.random.default_rng(0).standard_normal((2, 300, 40)).astype(np.float32)}

    profile = Profile((1, 1, 40), (max(1, batch // 2), 400, 40), (batch, frames, 40))
    return [EngineSpec("lipsync", "lipsync.onnx", "lipsync.plan", {"FEATS": profile}, sample)]


def embed_specs(repository: Path = REPOSITORY) -> list[EngineSpec]:
    batch, tokens = max_batch("embed", repository), 256

    def sample() -> dict[str, npt.NDArray[Any]]:
        ids = np.random.default_rng(0).integers(1000, 20000, size=(3, 24), dtype=np.int64)
        return {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }

    profile = Profile((1, 1), (batch // 2, 32), (batch, tokens))
    names = ("input_ids", "attention_mask", "token_type_ids")
    return [
        EngineSpec("embed", "minilm.onnx", "minilm.plan", dict.fromkeys(names, profile), sample)
    ]


def face_specs(repository: Path = REPOSITORY) -> list[EngineSpec]:
    specs = []
    for model, onnx, name, size in (
        ("face_detect", "face_detector.onnx", "input", 128),
        ("face_mesh", "face_mesh.onnx", "input_1", 192),
    ):
        batch = max_batch(model, repository)

        def sample(name: str = name, size: int = size) -> dict[str, npt.NDArray[Any]]:
            pictures = np.random.default_rng(0).uniform(0, 1, size=(2, size, size, 3))
            return {name: pictures.astype(np.float32)}

        shape = (size, size, 3)
        profile = Profile((1, *shape), (max(1, batch // 2), *shape), (batch, *shape))
        specs.append(
            EngineSpec(model, onnx, onnx.replace(".onnx", ".plan"), {name: profile}, sample)
        )
    return specs


SPECS: dict[str, Callable[[Path], list[EngineSpec]]] = {
    "asr": whisper_specs,
    "lipsync": lipsync_specs,
    "embed": embed_specs,
    "face_detect": lambda repository: face_specs(repository)[:1],
    "face_mesh": lambda repository: face_specs(repository)[1:],
}


def build(spec: EngineSpec, repository: Path, fp16: bool) -> Path:
    import tensorrt as trt

    folder = repository / spec.model / "1"
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(folder / spec.onnx)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"{spec.onnx}: TensorRT cannot parse it:\n" + "\n".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, shapes in spec.profiles.items():
        profile.set_shape(name, shapes.minimum, shapes.optimum, shapes.maximum)
    config.add_optimization_profile(profile)
    started = time.monotonic()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT could not build {spec.onnx}")
    target = folder / spec.plan
    target.write_bytes(bytes(plan))
    log.info("%s/%s: built in %.0f s", spec.model, spec.plan, time.monotonic() - started)
    return target


def check(spec: EngineSpec, repository: Path) -> float:
    """Largest relative difference between the plan's outputs and ONNX Runtime's."""
    folder = repository / spec.model / "1"
    runners = import_model_module("graph_runners", repository, repository)
    inputs = spec.sample()
    reference = runners.onnxruntime_runner(folder / spec.onnx)(inputs)
    planned = runners.tensorrt_runner(folder / spec.plan)(inputs)
    worst = 0.0
    for ours, theirs in zip(planned, reference, strict=True):
        scale = float(np.abs(theirs).max()) or 1.0
        worst = max(worst, float(np.abs(ours - theirs).max()) / scale)
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", default=sorted(SPECS))
    parser.add_argument("--repository", type=Path, default=REPOSITORY)
    parser.add_argument("--fp32", action="store_true", help="no FP16 kernels")
    parser.add_argument("--check", action="store_true", help="compare with ONNX Runtime")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        import tensorrt  # noqa: F401
    except ImportError as error:
        raise SystemExit(
            "TensorRT is not installed: run this on a GPU host (see README)"
        ) from error
    report: dict[str, Any] = {}
    for model in args.models:
        for spec in SPECS[model](args.repository):
            build(spec, args.repository, fp16=not args.fp32)
            if args.check:
                difference = check(spec, args.repository)
                report[f"{spec.model}/{spec.plan}"] = difference
                if difference > spec.tolerance:
                    raise SystemExit(f"{spec.plan} differs from ONNX Runtime by {difference:.3f}")
    if report:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
