"""The orchestrator's one connection to Triton (gRPC, asyncio), and what its failures mean."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy.typing as npt
import tritonclient.grpc as grpcclient
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from triton_ops.contracts import ModelContract

log = logging.getLogger(__name__)

_MAX_MESSAGE = 2**31 - 1
_CHANNEL_ARGS = [
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    # Reconnect quickly after Triton restarts (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]
# Statuses that say "Triton is not there right now", not "your request is wrong".
_UNAVAILABLE = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED"}


class TritonError(Exception):
    """A Triton call failed. `retryable` is True when Triton is down or overloaded."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class TritonHealth:
    live: bool
    ready: bool
    models: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


class TritonClient:
    def __init__(self, url: str, request_timeout_s: float) -> None:
        self.url = url
        self.request_timeout_s = request_timeout_s
        self._client = InferenceServerClient(url=url, channel_args=_CHANNEL_ARGS)
        self._parameters: dict[str, dict[str, str]] = {}
        self.last_answer: dict[str, float] = {}  # model → when it last answered (monotonic)

    async def infer(
        self, contract: ModelContract, inputs: dict[str, npt.NDArray[Any]], request_id: str = ""
    ) -> dict[str, npt.NDArray[Any]]:
        """One request of `contract`'s model; inputs carry their batch dimension."""
        tensors = []
        for name, value in inputs.items():
            spec = contract.input(name)
            tensor = grpcclient.InferInput(name, list(value.shape), spec.datatype)
            tensor.set_data_from_numpy(value.astype(spec.numpy_dtype, copy=False))
            tensors.append(tensor)
        outputs = [grpcclient.InferRequestedOutput(name) for name in contract.output_names]
        call = asyncio.ensure_future(
            self._client.infer(
                contract.name,
                tensors,
                outputs=outputs,
                request_id=request_id,
                client_timeout=self.request_timeout_s,
            )
        )
        try:
            # A caller cancelled (barge-in, a turn that goes on) stops waiting at once, but the
            # request itself runs to its end: Triton 2.51 can crash on a cancelled gRPC request
            # (a race in its cancellation handling, triton-inference-server/server#7840; fixed
            # in 24.12), and it did once here mid-suite, just after a barge-in.
            result = await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(_drop)
            raise
        except InferenceServerException as error:
            raise _triton_error(contract.name, error) from error
        except grpc.aio.AioRpcError as error:  # pragma: no cover - tritonclient wraps these
            raise TritonError(f"Triton call failed: {error.details()}", retryable=True) from error
        self.last_answer[contract.name] = time.monotonic()
        return {name: result.as_numpy(name) for name in contract.output_names}

    async def health(self, models: list[str], timeout_s: float) -> TritonHealth:
        try:
            async with asyncio.timeout(timeout_s):
                live = await self._client.is_server_live(client_timeout=timeout_s)
                ready = await self._client.is_server_ready(client_timeout=timeout_s)
                states = {
                    name: await self._client.is_model_ready(name, client_timeout=timeout_s)
                    for name in models
                }
        except (InferenceServerException, TimeoutError) as error:
            return TritonHealth(live=False, ready=False, error=str(error) or "timed out")
        return TritonHealth(live=live, ready=ready and all(states.values()), models=states)

    async def parameters(self, model: str) -> dict[str, str]:
        """The model's config.pbtxt `parameters`, fetched once."""
        if model not in self._parameters:
            try:
                config: dict[str, Any] = await self._client.get_model_config(
                    model, as_json=True, client_timeout=self.request_timeout_s
                )
            except InferenceServerException as error:
                raise _triton_error(model, error) from error
            params = config.get("config", {}).get("parameters", {})
            self._parameters[model] = {k: v.get("string_value", "") for k, v in params.items()}
        return self._parameters[model]

    async def statistics(self, model: str = "") -> dict[str, Any]:
        stats: dict[str, Any] = await self._client.get_inference_statistics(
            model, as_json=True, client_timeout=self.request_timeout_s
        )
        return stats

    async def close(self) -> None:
        await self._client.close()


def _drop(call: asyncio.Future[Any]) -> None:
    """The answer nobody waits for any more; its failure is not worth a warning."""
    if not call.cancelled():
        call.exception()


def _triton_error(model: str, error: InferenceServerException) -> TritonError:
    status = str(error.status() or "")
    if status in _UNAVAILABLE:
        return TritonError(
            f"the inference server is unavailable ({model}): {error.message()}", retryable=True
        )
    return TritonError(f"{model} refused the request: {error.message()}", retryable=False)
