"""What the Python-backend models share: graph runners (ONNX Runtime, or a TensorRT plan) and
`ModelIO`, their one way of reading the config and requests and of answering.

A plain file at the repository's top level: Triton loads only folders as models, and each
model.py puts this folder on sys.path, so the repository stays self-contained in any image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


class Runner(Protocol):
    """Runs one exported graph: named inputs → outputs in the graph's order."""

    def __call__(self, inputs: dict[str, Any]) -> list[Array]: ...

    def hold(self, array: Array) -> Any:
        """`array` in the form the graph reads fastest, for an input reused across runs."""
        ...


class OnnxRuntimeRunner:
    def __init__(
        self, path: Path, threads: int = 0, providers: Sequence[str] = ("CPUExecutionProvider",)
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Worker threads sleep between parallel sections instead of spinning: on 2 cores a
        # Whisper request took 29 % less CPU and no longer (99 vs 115 ms), a long sentence of
        # Piper 12 % less CPU at the same latency, and a one-word request half the CPU.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._ort = ort
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))

    def __call__(self, inputs: dict[str, Any]) -> list[Array]:
        return list(self.session.run(None, inputs))

    def hold(self, array: Array) -> Any:
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

    def __call__(self, inputs: dict[str, Any]) -> list[Array]:
        result = self.runner.infer(feed_dict=inputs)
        return [np.asarray(result[name]) for name in self.outputs]

    def hold(self, array: Array) -> Any:
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


class ModelIO:
    """A model's config, parameters and version folder, from the `args` of `initialize`; its
    requests' inputs; and its responses, each output in the data type the config declares.

    triton_python_backend_utils exists only inside Triton, where the models make one of these;
    the build tools import this file for its runners alone.
    """

    def __init__(self, args: dict[str, str]) -> None:
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        self.config: dict[str, Any] = json.loads(args["model_config"])
        self.params: dict[str, str] = {
            key: value["string_value"] for key, value in self.config["parameters"].items()
        }
        self.folder = Path(args["model_repository"]) / args["model_version"]
        self._dtypes = {
            output["name"]: pb_utils.triton_string_to_numpy(output["data_type"])
            for output in self.config["output"]
        }

    def array(self, request: Any, name: str) -> Array:
        """Input `name` of one request, flattened."""
        return np.asarray(self._pb.get_input_tensor_by_name(request, name).as_numpy()).reshape(-1)

    def text(self, request: Any, name: str) -> str:
        """String input `name` of one request, decoded (UTF-8) and stripped."""
        raw = self.array(request, name)[0]
        return (raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)).strip()

    def response(self, outputs: dict[str, Array]) -> Any:
        """One request's outputs, batch dimension first."""
        return self._pb.InferenceResponse(
            [
                self._pb.Tensor(name, value.astype(self._dtypes[name], copy=False))
                for name, value in outputs.items()
            ]
        )

    def error(self, message: str) -> Any:
        return self._pb.InferenceResponse(error=self._pb.TritonError(message))

    def responses(
        self, count: int, outputs: dict[int, dict[str, Array]], errors: dict[int, str]
    ) -> list[Any]:
        """A batch of `count` requests answered in order: each its outputs, or its own error."""
        return [
            self.response(outputs[i]) if i in outputs else self.error(errors[i])
            for i in range(count)
        ]

    def send(self, request: Any, response: Any) -> None:
        """Answers `request` now, through its response sender, ahead of the rest of its batch."""
        request.get_response_sender().send(
            response, flags=self._pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        )
