"""Each model's config.pbtxt agrees with its contract in triton/contracts.py, and batches."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from triton.contracts import CONTRACTS, ModelContract, TensorSpec

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
MODEL_DIRS = sorted(p for p in REPOSITORY.iterdir() if (p / "config.pbtxt").is_file())


def load_config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def as_specs(tensors: object) -> list[tuple[str, str, tuple[int, ...]]]:
    return [
        (t.name, model_config_pb2.DataType.Name(t.data_type), tuple(t.dims))  # type: ignore[attr-defined]
        for t in tensors  # type: ignore[attr-defined]
    ]


def expected(specs: tuple[TensorSpec, ...]) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(s.name, s.config_type, s.dims) for s in specs]


def test_every_served_model_has_a_contract() -> None:
    assert {p.name for p in MODEL_DIRS} <= set(CONTRACTS)


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=lambda p: p.name)
def test_config_matches_contract_and_batches_dynamically(model_dir: Path) -> None:
    config = load_config(model_dir / "config.pbtxt")
    contract: ModelContract = CONTRACTS[model_dir.name]
    assert config.name == contract.name
    assert as_specs(config.input) == expected(contract.inputs)
    assert as_specs(config.output) == expected(contract.outputs)
    assert config.max_batch_size > 1
    assert config.HasField("dynamic_batching")
