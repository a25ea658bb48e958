"""Graph runners shared by the Python-backend models: ONNX Runtime, or a TensorRT plan.

A plain file at the repository's top level: Triton loads only folders as models, and each
model.py puts this folder on sys.path, so the repository stays self-contained in any image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Runner(Protocol):
    """Runs one exported graph: named inputs → outputs in the graph's order."""

    def __call__(self, inputs: dict[str, Any]) -> list[np.ndarray]: ...

    def hold(self, array: np.ndarray) -> Any:
        """`array` in the form the graph reads fastest, for an input reused across runs."""
        ...


class OnnxRuntimeRunner:
    def __init__(
        self, path: Path, threads: int = 0, providers: Sequence[str] = ("CPUExecutionProvider",)
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._ort = ort
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))

    def __call__(self, inputs: dict[str, Any]) -> list[np.ndarray]:
        return list(self.session.run(None, inputs))

    def hold(self, array: np.ndarray) -> Any:
        # An OrtValue is handed to every run without copying the array again each time
        # (Whisper's cross-attention states: 295 MB for 8 utterances, per decoder step).
        return self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))


class TensorRTRunner:
    """A TensorRT plan (built by `python -m triton_ops.build_engines`), run through Polygraphy."""

    def __init__(self, path: Path) -> None:
        from polygraphy.backend.common import BytesFromPath
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        self.runner = TrtRunner(EngineFromBytes(BytesFromPath(str(path))))
        self.runner.activate()
        engine = self.runner.context.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = set(self.runner.get_input_metadata().keys())
        self.outputs = [name for name in names if name not in inputs]

    def __call__(self, inputs: dict[str, Any]) -> list[np.ndarray]:
        result = self.runner.infer(feed_dict=inputs)
        return [np.asarray(result[name]) for name in self.outputs]

    def hold(self, array: np.ndarray) -> Any:
        return np.ascontiguousarray(array)


def onnxruntime_runner(
    path: Path, threads: int = 0, providers: Sequence[str] = ("CPUExecutionProvider",)
) -> Runner:
    return OnnxRuntimeRunner(path, threads, providers)


def tensorrt_runner(path: Path) -> Runner:
    return TensorRTRunner(path)


def onnxruntime_from_config(params: dict[str, str], path: Path) -> OnnxRuntimeRunner:
    """ONNX Runtime as a model's config.pbtxt parameters ask: `execution_provider` and
    `intra_op_threads`."""
    provider = params.get("execution_provider", "CPUExecutionProvider")
    return OnnxRuntimeRunner(path, int(params.get("intra_op_threads", "0")), [provider])


def runner_from_config(params: dict[str, str], path: Path) -> Runner:
    """The runner a model's config.pbtxt parameters ask for: `runtime` (onnxruntime, the
    default, or tensorrt)."""
    if params.get("runtime", "onnxruntime") == "tensorrt":
        return tensorrt_runner(path)
    return onnxruntime_from_config(params, path)
