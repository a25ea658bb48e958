"""Our exported ONNX graphs on a GPU: speed per batch size and error against ONNX Runtime's CPU.

    python benchmarks/gpu_graphs.py --graph lipsync=model_repository/lipsync/1/lipsync.onnx \
        --graph asr_encoder=<encoder.onnx> --engines onnxruntime-cuda,torch --out results/gpu_graphs

Runs where Triton's GPU stack may be missing: it needs only numpy, onnx, onnxruntime and, per
engine, onnxruntime-gpu or torch (CUDA) with onnx2torch, and imports nothing of ours, so it runs
from a bare checkout on a lent GPU host. Two GPU engines:

- `onnxruntime-cuda`: the graph as it is, on ONNX Runtime's CUDA execution provider, FP32 (TF32
  allowed), each run a plain `session.run` from host arrays to host arrays, copies included; what
  the voices' `gpu` configs serve with.
- `torch`: the graph converted to PyTorch by onnx2torch, eager, FP32 and FP16.

Each is timed by wall clock around a synchronized run (median of repeated runs after warm-up),
against ONNX Runtime on the same host's CPUs, the reference for both numbers and speed. The
host's TensorRT / onnxruntime-gpu / Triton state is reported too: the serving path needs them.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Inputs = dict[str, npt.NDArray[Any]]


def lipsync_inputs(batch: int) -> Inputs:
    # 10 s of speech: 1000 log-mel frames of 40 bands
    rng = np.random.default_rng(0)
    return {"FEATS": rng.standard_normal((batch, 1000, 40)).astype(np.float32)}


def encoder_inputs(batch: int) -> Inputs:
    # one 30 s Whisper window
    rng = np.random.default_rng(0)
    return {"mel": (rng.standard_normal((batch, 80, 3000)) * 0.5).astype(np.float32)}


def minilm_inputs(batch: int) -> Inputs:
    ids = np.random.default_rng(0).integers(1000, 20000, size=(batch, 64), dtype=np.int64)
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }


def picture_inputs(name: str, side: int) -> Callable[[int], Inputs]:
    # MediaPipe's face graphs take NHWC pictures scaled to [-1, 1]
    def inputs(batch: int) -> Inputs:
        rng = np.random.default_rng(0)
        return {name: rng.uniform(-1, 1, (batch, side, side, 3)).astype(np.float32)}

    return inputs


def piper_inputs(batch: int) -> Inputs:
    # one sentence of ~40 phoneme ids each ("Good question, let us look at it." is 38), with
    # the noise scales at 0: the same voice every run, so FP16 can be compared with FP32
    ids = np.random.default_rng(0).integers(1, 150, size=(batch, 40), dtype=np.int64)
    return {
        "input": ids,
        "input_lengths": np.full(batch, ids.shape[1], dtype=np.int64),
        "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32),
    }


SAMPLES: dict[str, Callable[[int], Inputs]] = {
    "tts": piper_inputs,
    "lipsync": lipsync_inputs,
    "asr_encoder": encoder_inputs,
    "embed": minilm_inputs,
    "face_detect": picture_inputs("input", 128),
    "face_mesh": picture_inputs("input_1", 192),
}


def pack(source: Path, target: Path) -> None:
    """The graph with its float weights stored as FP16, to travel to a lent GPU host (what may
    travel there is limited); `widen` makes it an FP32 graph again on arrival."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            tensor.CopyFrom(
                numpy_helper.from_array(
                    numpy_helper.to_array(tensor).astype(np.float16), tensor.name
                )
            )
    onnx.save(model, str(target))


def widen(model: Any) -> Any:
    """The packed graph as FP32 again, its unnamed nodes named: onnx2torch names them after
    their op ("Unsqueeze_7"), which can clash with a node of that name (Piper's graph)."""
    import onnx
    from onnx import numpy_helper

    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"unnamed_node_{index}"

    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT16:
            tensor.CopyFrom(
                numpy_helper.from_array(
                    numpy_helper.to_array(tensor).astype(np.float32), tensor.name
                )
            )
    return model


def host() -> dict[str, Any]:
    import onnxruntime as ort

    try:  # also loads the CUDA libraries PyTorch's wheels brought, for onnxruntime-gpu
        import torch

        versions = {"torch": torch.__version__, "cuda": torch.version.cuda}
    except ImportError:
        versions = {"torch": None, "cuda": None}
    smi = shutil.which("nvidia-smi")
    gpu = (
        subprocess.run(
            [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if smi
        else None
    )
    return {
        "gpu": gpu,
        **versions,
        "cpu_cores": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "tensorrt_python": importlib.util.find_spec("tensorrt") is not None,
        "trtexec": shutil.which("trtexec"),
        "tritonserver": shutil.which("tritonserver"),
    }


def session_time(
    session: Any, inputs: Inputs, runs: int, warmup: int = 1
) -> tuple[float, list[npt.NDArray[Any]]]:
    for _ in range(warmup):
        outputs = session.run(None, inputs)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, inputs)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, outputs


def gpu_time(
    module: Any, inputs: Inputs, half: bool, runs: int, device: str
) -> tuple[float, list[npt.NDArray[Any]]]:
    import torch

    def tensor(array: npt.NDArray[Any]) -> Any:
        value = torch.from_numpy(array).to(device)
        return value.half() if half and value.is_floating_point() else value

    feed = [tensor(inputs[name]) for name in inputs]
    cuda = device == "cuda"
    with torch.inference_mode():
        for _ in range(3):
            out = module(*feed)
        times = []
        for _ in range(runs):
            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
            out = module(*feed)
            if cuda:
                torch.cuda.synchronize()
            times.append((time.perf_counter() - started) * 1000)
    outs = out if isinstance(out, (tuple, list)) else [out]
    return statistics.median(times), [o.float().cpu().numpy() for o in outs]


def relative_error(ours: list[npt.NDArray[Any]], reference: list[npt.NDArray[Any]]) -> float:
    """Largest error over the outputs, relative to each reference's largest value; NaN where an
    output's shape differs (a TTS whose durations rounded differently speaks a longer clip)."""
    worst = 0.0
    for a, b in zip(ours, reference, strict=False):
        if a.shape != b.shape:
            return float("nan")
        scale = float(np.abs(b).max()) or 1.0
        worst = max(worst, float(np.abs(a.astype(np.float32) - b).max()) / scale)
    return worst


def register_comparisons() -> None:
    """onnx2torch converts GreaterOrEqual / LessOrEqual only at opset 12; MiniLM's export has
    opset 16 ones (same semantics). It has no RandomNormalLike (Piper's noise)."""
    import torch
    from onnx import defs
    from onnx2torch.node_converters import registry
    from onnx2torch.node_converters.registry import add_converter
    from onnx2torch.utils.common import (
        OnnxMapping,
        OperationConverterResult,
        onnx_mapping_from_node,
    )

    class Compare(torch.nn.Module):
        def __init__(self, greater: bool) -> None:
            super().__init__()
            self.greater = greater

        def forward(self, a: Any, b: Any) -> Any:
            return a >= b if self.greater else a <= b

    for operation, greater in (("GreaterOrEqual", True), ("LessOrEqual", False)):
        for version in (16,):

            def convert(node: Any, graph: Any, greater: bool = greater) -> Any:
                return OperationConverterResult(
                    torch_module=Compare(greater), onnx_mapping=onnx_mapping_from_node(node)
                )

            add_converter(operation_type=operation, version=version)(convert)

    class RandomNormalLike(torch.nn.Module):
        def __init__(self, mean: float, scale: float) -> None:
            super().__init__()
            self.mean, self.scale = mean, scale

        def forward(self, like: Any) -> Any:
            return torch.randn_like(like) * self.scale + self.mean

    def random_normal_like(node: Any, graph: Any) -> Any:
        return OperationConverterResult(
            torch_module=RandomNormalLike(
                float(node.attributes.get("mean", 0.0)), float(node.attributes.get("scale", 1.0))
            ),
            onnx_mapping=onnx_mapping_from_node(node),
        )

    add_converter(operation_type="RandomNormalLike", version=1)(random_normal_like)

    class Clamp(torch.nn.Module):  # onnx2torch's Clip takes only constant bounds
        def __init__(self, low: bool, high: bool) -> None:
            super().__init__()
            self.low, self.high = low, high

        def forward(self, value: Any, *bounds: Any) -> Any:
            given = iter(bound.to(value.dtype) for bound in bounds)
            low = next(given) if self.low else None
            high = next(given) if self.high else None
            return torch.clamp(value, low, high)

    def clip(node: Any, graph: Any) -> Any:
        names = [*node.input_values, "", ""]
        return OperationConverterResult(
            torch_module=Clamp(bool(names[1]), bool(names[2])),
            onnx_mapping=OnnxMapping(
                inputs=tuple(name for name in names[:3] if name), outputs=node.output_values
            ),
        )

    for version in (11, 12, 13):
        registry._CONVERTER_REGISTRY[  # replaces onnx2torch's own
            registry.OperationDescription(
                domain=defs.ONNX_DOMAIN, operation_type="Clip", version=version
            )
        ] = clip


def cuda_session(graph: bytes) -> Any:
    """An ONNX Runtime session whose every node the CUDA provider could take runs there; an
    onnxruntime-gpu that cannot reach CUDA is an error here, not a silent fallback to the CPU."""
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):  # CUDA, cuDNN from the nvidia-* wheels PyTorch brought
        ort.preload_dlls()
    session = ort.InferenceSession(
        graph,
        ort.SessionOptions(),
        providers=[
            ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "EXHAUSTIVE"}),
            "CPUExecutionProvider",
        ],
    )
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise RuntimeError(f"the CUDA provider did not load: {session.get_providers()}")
    return session


def measure(
    name: str, path: Path, batches: list[int], runs: int, device: str, engines: list[str]
) -> list[dict[str, Any]]:
    import onnx
    import onnxruntime as ort

    graph = widen(onnx.load(str(path)))
    serialized = graph.SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])
    cuda = cuda_session(serialized) if "onnxruntime-cuda" in engines else None
    fp32 = fp16 = None
    if "torch" in engines:
        from onnx2torch import convert

        fp32 = convert(graph).to(device).eval()
        fp16 = copy.deepcopy(fp32).half() if device == "cuda" else None
    rows = []
    for batch in batches:
        inputs = SAMPLES[name](batch)
        cpu_ms, reference = session_time(session, inputs, max(2, runs // 10))
        row: dict[str, Any] = {
            "graph": name,
            "batch": batch,
            "cpu_onnxruntime_ms": round(cpu_ms, 3),
        }
        if cuda is not None:
            cuda_ms, out_cuda = session_time(cuda, inputs, runs, warmup=3)
            row["ort_cuda_ms"] = round(cuda_ms, 3)
            row["ort_cuda_rel_error"] = relative_error(out_cuda, reference)
            row["ort_cuda_items_per_s"] = round(batch / cuda_ms * 1000, 1)
        if fp32 is not None:
            fp32_ms, out32 = gpu_time(fp32, inputs, False, runs, device)
            fp16_ms, out16 = gpu_time(fp16 or fp32, inputs, fp16 is not None, runs, device)
            row |= {
                "gpu_fp32_ms": round(fp32_ms, 3),
                "gpu_fp16_ms": round(fp16_ms, 3),
                "fp32_rel_error": relative_error(out32, reference),
                "fp16_rel_error": relative_error(out16, reference),
                "gpu_fp16_items_per_s": round(batch / fp16_ms * 1000, 1),
            }
        print(json.dumps(row), flush=True)
        rows.append(row)
    if fp32 is not None and device == "cuda":
        import torch

        torch.cuda.empty_cache()
    return rows


COLUMNS = (  # (row key, heading, format)
    ("cpu_onnxruntime_ms", "ONNX Runtime CPU (ms)", ".2f"),
    ("ort_cuda_ms", "ONNX Runtime CUDA (ms)", ".2f"),
    ("ort_cuda_items_per_s", "CUDA items/s", ".0f"),
    ("ort_cuda_rel_error", "CUDA max rel. error", ".1e"),
    ("gpu_fp32_ms", "PyTorch FP32 (ms)", ".2f"),
    ("gpu_fp16_ms", "PyTorch FP16 (ms)", ".2f"),
    ("gpu_fp16_items_per_s", "FP16 items/s", ".0f"),
    ("fp16_rel_error", "FP16 max rel. error", ".1e"),
)


def markdown(report: dict[str, Any]) -> str:
    columns = [c for c in COLUMNS if any(c[0] in row for row in report["rows"])]
    lines = [
        f"GPU: {report['host']['gpu']}; CPU reference: ONNX Runtime on "
        f"{report['host']['cpu_cores']} cores of the same host",
        "",
        "| graph | batch | " + " | ".join(heading for _, heading, _ in columns) + " |",
        "| --- | --- |" + " --- |" * len(columns),
    ]
    for row in report["rows"]:
        cells = [format(row[key], spec) if key in row else "–" for key, _, spec in columns]
        lines.append(f"| {row['graph']} | {row['batch']} | " + " | ".join(cells) + " |")
    for name, error in report["errors"].items():
        lines.append(f"\n{name}: {error}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--graph", action="append", default=[], help="name=path.onnx")
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the conversion")
    parser.add_argument(
        "--engines", default="onnxruntime-cuda,torch", help="onnxruntime-cuda and/or torch"
    )
    parser.add_argument("--pack", nargs=2, type=Path, metavar=("SOURCE", "TARGET"))
    args = parser.parse_args(argv)
    if args.pack:
        pack(*args.pack)
        return
    report: dict[str, Any] = {"host": host(), "rows": [], "errors": {}}
    print(json.dumps(report["host"]), flush=True)
    batches = [int(b) for b in args.batches.split(",")]
    engines = args.engines.split(",")
    if "torch" in engines:
        register_comparisons()
    for item in args.graph:
        name, path = item.split("=", 1)
        try:
            report["rows"] += measure(name, Path(path), batches, args.runs, args.device, engines)
        except Exception as error:  # one graph failing must not lose the others' numbers
            report["errors"][name] = f"{type(error).__name__}: {error}"
            print(name, "failed:", report["errors"][name], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_graphs.json").write_text(json.dumps(report, indent=2))
    (args.out / "gpu_graphs.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
