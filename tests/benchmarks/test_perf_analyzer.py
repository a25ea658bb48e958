"""perf_analyzer's inputs and sweep script: what the SDK image would send is what our models take.

perf_analyzer itself is not installable here. Its input files are checked against the models'
contracts and then sent, entry by entry, to the real Triton; run.sh is checked for the
command line it builds, with a stand-in `perf_analyzer` on PATH that only records its argv.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness.processes import TritonProcess
from benchmarks.perf_analyzer import make_inputs
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import CONTRACTS

pytestmark = pytest.mark.serving

RUN_SH = Path(make_inputs.__file__).with_name("run.sh")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, model_files: None) -> Path:
    out = tmp_path_factory.mktemp("perf-inputs")
    make_inputs.main(["--out", str(out)])
    return out


def as_request(entry: dict[str, dict[str, list[object]]], model: str) -> dict[str, np.ndarray]:
    request = {}
    for name, tensor in entry.items():
        spec = CONTRACTS[model].input(name)
        values = np.array(tensor["content"], dtype=spec.numpy_dtype)
        if spec.numpy_dtype == np.object_:
            values = np.array([str(v).encode() for v in tensor["content"]], dtype=np.object_)
        request[name] = values.reshape([1, *tensor["shape"]])
    return request


@pytest.mark.parametrize("model", sorted(CONTRACTS))
async def test_every_entry_fits_the_contract_and_is_served(
    model: str, inputs: Path, triton: TritonProcess
) -> None:
    data = json.loads((inputs / f"{model}.json").read_text(encoding="utf-8"))["data"]
    assert len(data) >= 4
    contract = CONTRACTS[model]
    client = TritonClient(triton.grpc_url, request_timeout_s=120)
    try:
        for entry in data:
            assert set(entry) == {spec.name for spec in contract.inputs}
            for name, tensor in entry.items():
                assert len(tensor["content"]) == int(np.prod(tensor["shape"]))
                dims = contract.input(name).dims
                assert len(tensor["shape"]) == len(dims)
                assert all(d == -1 or d == s for d, s in zip(dims, tensor["shape"], strict=True))
            out = await client.infer(contract, as_request(entry, model))
            assert set(out) == set(contract.output_names)
    finally:
        await client.close()
    shapes = (inputs / f"{model}.args").read_text().split()
    variable = {spec.name for spec in contract.inputs if -1 in spec.dims}
    assert {s.split("=")[1].split(":")[0] for s in shapes} == variable


def run_script(tmp_path: Path, inputs: Path, *models: str) -> subprocess.CompletedProcess[str]:
    recorder = tmp_path / "bin" / "perf_analyzer"
    recorder.parent.mkdir(exist_ok=True)
    recorder.write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$RECORD"\n')
    recorder.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{recorder.parent}:{os.environ['PATH']}",
        "RECORD": str(tmp_path / "argv"),
        "RESULTS": str(tmp_path / "results"),
        "TRITON_GRPC": "triton:8001",
    }
    # the inputs folder beside a copy of the script, as `make perf-inputs` leaves it
    script = tmp_path / "run.sh"
    script.write_text(RUN_SH.read_text())
    (tmp_path / "inputs").mkdir(exist_ok=True)
    for file in inputs.iterdir():
        (tmp_path / "inputs" / file.name).write_bytes(file.read_bytes())
    return subprocess.run(
        ["bash", str(script), *models], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_sweep_covers_every_model_over_grpc_with_metrics(inputs: Path, tmp_path: Path) -> None:
    result = run_script(tmp_path, inputs)
    assert result.returncode == 0, result.stderr
    calls = [shlex.split(line) for line in (tmp_path / "argv").read_text().splitlines()]
    assert sorted(call[call.index("-m") + 1] for call in calls) == sorted(CONTRACTS)
    for call in calls:
        model = call[call.index("-m") + 1]
        assert call[call.index("-i") + 1] == "grpc" and call[call.index("-u") + 1] == "triton:8001"
        assert call[call.index("--concurrency-range") + 1] == "1:16:1"
        assert "--collect-metrics" in call and "--metrics-url" in call
        assert Path(call[call.index("--input-data") + 1]).name == f"{model}.json"
        assert call[call.index("-f") + 1] == str(tmp_path / "results" / f"{model}.csv")
        shapes = [a for a in call if a.startswith("--shape=")]
        assert shapes == (inputs / f"{model}.args").read_text().split()


def test_a_model_without_inputs_is_a_clear_error(inputs: Path, tmp_path: Path) -> None:
    result = run_script(tmp_path, inputs, "no_such_model")
    assert result.returncode == 2 and "make perf-inputs" in result.stderr
    assert not (tmp_path / "argv").exists()
