"""perf_analyzer's input data for every model, made from the same real requests as our own
load generator (speech our voice speaks, sentences a tutor says):

    .venv/bin/python -m benchmarks.perf_analyzer.make_inputs [--out DIR] [models…]

For each model: <model>.json, entries in perf_analyzer's "data" format (`--input-data`), each
tensor with its own shape; and <model>.args, the `--shape` defaults perf_analyzer still wants
for variable-size inputs. `run.sh` beside this file passes both.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.triton_load import Inputs, workload
from triton_ops.contracts import CONTRACTS

INPUTS = Path(__file__).resolve().parent / "inputs"


def tensor(array: npt.NDArray[Any]) -> dict[str, Any]:
    """One request's tensor without its batch dimension (perf_analyzer adds it, -b 1)."""
    row = array[0]
    if row.dtype == np.object_:
        content: list[Any] = [v.decode("utf-8") for v in row.reshape(-1)]
    else:
        content = [round(float(v), 6) for v in row.reshape(-1)]
    return {"content": content, "shape": list(row.shape)}


def shape_args(model: str, first: Inputs) -> list[str]:
    """--shape for every input whose contract has a variable dimension."""
    variable = {spec.name for spec in CONTRACTS[model].inputs if -1 in spec.dims}
    return [
        f"--shape={name}:{','.join(str(d) for d in first[name].shape[1:])}"
        for name in sorted(variable)
    ]


def write(model: str, out: Path) -> Path:
    requests = workload(model).requests
    data = {"data": [{name: tensor(value) for name, value in r.items()} for r in requests]}
    path = out / f"{model}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    (out / f"{model}.args").write_text(" ".join(shape_args(model, requests[0])) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", default=sorted(CONTRACTS))
    parser.add_argument("--out", type=Path, default=INPUTS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        path = write(model, args.out)
        print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
