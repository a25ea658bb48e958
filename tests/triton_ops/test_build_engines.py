"""The TensorRT build plan agrees with the configs and graphs it builds for.

Building a plan needs a GPU and TensorRT; what can be checked without one is checked here.
"""

from __future__ import annotations

import onnxruntime as ort
import pytest

from triton_ops.build_engines import REPOSITORY, SPECS, max_batch


@pytest.mark.parametrize("model", sorted(SPECS))
def test_profiles_span_the_batch_sizes_triton_forms(model: str, model_files: None) -> None:
    for spec in SPECS[model](REPOSITORY):
        graph = ort.InferenceSession(str(REPOSITORY / model / "1" / spec.onnx))
        dynamic = {
            i.name for i in graph.get_inputs() if any(not isinstance(d, int) for d in i.shape)
        }
        assert set(spec.profiles) == dynamic  # every dynamic input, and only those, has a profile
        for profile in spec.profiles.values():
            assert all(
                lo <= opt <= hi
                for lo, opt, hi in zip(
                    profile.minimum, profile.optimum, profile.maximum, strict=True
                )
            )
        batch_axis = {name: (2 if name in ("past", "cross") else 0) for name in spec.profiles}
        assert {p.maximum[batch_axis[n]] for n, p in spec.profiles.items()} == {max_batch(model)}
        assert {p.minimum[batch_axis[n]] for n, p in spec.profiles.items()} == {1}


@pytest.mark.parametrize("model", sorted(SPECS))
def test_the_check_inputs_fit_the_profiles_and_run_on_onnx_runtime(
    model: str, model_files: None
) -> None:
    for spec in SPECS[model](REPOSITORY):
        sample = spec.sample()
        for name, value in sample.items():
            profile = spec.profiles[name]
            assert all(
                lo <= d <= hi
                for lo, d, hi in zip(profile.minimum, value.shape, profile.maximum, strict=True)
            )
        graph = ort.InferenceSession(str(REPOSITORY / model / "1" / spec.onnx))
        assert graph.run(None, sample)
