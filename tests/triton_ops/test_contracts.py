"""Every config of every model agrees with its contract in triton_ops/contracts.py, and batches."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from triton_ops.build_engines import SPECS
from triton_ops.contracts import CONTRACTS, TensorSpec

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
MODEL_DIRS = sorted(p for p in REPOSITORY.iterdir() if (p / "config.pbtxt").is_file())
CONFIGS = sorted(
    path
    for model in MODEL_DIRS
    for path in [model / "config.pbtxt", *model.glob("configs/*.pbtxt")]
)


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


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_config_matches_contract_and_batches_dynamically(path: Path) -> None:
    config = load_config(path)
    contract = CONTRACTS[
        path.parent.name if path.name == "config.pbtxt" else path.parent.parent.name
    ]
    assert config.name == contract.name
    assert as_specs(config.input) == expected(contract.inputs)
    assert as_specs(config.output) == expected(contract.outputs)
    assert config.max_batch_size > 1
    assert config.HasField("dynamic_batching")


@pytest.mark.parametrize(
    "model", [p for p in MODEL_DIRS if (p / "configs" / "gpu.pbtxt").exists()], ids=lambda p: p.name
)
def test_the_gpu_variant_differs_only_in_where_and_how_it_runs(model: Path) -> None:
    cpu, gpu = load_config(model / "config.pbtxt"), load_config(model / "configs" / "gpu.pbtxt")
    assert gpu.max_batch_size == cpu.max_batch_size
    assert [g.kind for g in gpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    how = {"runtime", "execution_provider", "intra_op_threads"}
    assert set(gpu.parameters) ^ set(cpu.parameters) <= how


def test_the_gpu_variants_name_the_plans_build_engines_makes(model_files: None) -> None:
    """Whisper's engine specs read the exported model's dimensions."""
    planned = {(s.model, s.plan) for specs in SPECS.values() for s in specs(REPOSITORY)}
    named = set()
    for model in MODEL_DIRS:
        path = model / "configs" / "gpu.pbtxt"
        if not path.exists():
            continue
        parameters = load_config(path).parameters
        runtime = parameters["runtime"].string_value if "runtime" in parameters else ""
        if runtime == "tensorrt":
            files = [p.string_value for k, p in parameters.items() if k.endswith("_file")]
            named |= {(model.name, f) for f in files}
    assert named == planned


def test_the_repository_holds_models_and_the_shared_modules_only() -> None:
    """Triton loads every folder at the top level as a model (a stray __pycache__ included)."""
    entries = {p.name for p in REPOSITORY.iterdir()}
    assert entries == {p.name for p in MODEL_DIRS} | {
        "graph_runners.py",
        "whisper_features.py",
        "audio_input.py",
    }
