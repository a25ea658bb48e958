"""Parts that bring onnxruntime-gpu, Triton and the voice's packages to a bare lent GPU host.

    python -m benchmarks.gpu_carry --onnxruntime-gpu <onnxruntime_gpu-*.whl> --arch 90 \\
        --python 3.12 --out <dir>

A lent host takes at most 64 MiB a call and keeps what a call unpacks while it stays warm, so
the parts are cut to travel one or two a call; `benchmarks/gpu_host_prep.sh` unpacks each as it
arrives. The big one is onnxruntime-gpu's CUDA provider (284 MB, kernels for six GPU
generations): `prune_fatbins` zeroes every kernel image not built for the host's `--arch`, so the
library keeps its layout and the CUDA runtime still finds the images it loads, while xz shrinks
the zeros away (52 MB for sm_90 instead of 231 MB). Wheels the host lacks travel as they are
(`pip download --platform manylinux2014_x86_64 --python-version 3.12`): tritonclient and
python-rapidjson for the benchmark's client.
"""

from __future__ import annotations

import argparse
import importlib.util
import lzma
import struct
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
CUDA_PROVIDER = "onnxruntime/capi/libonnxruntime_providers_cuda.so"


def prune_fatbins(data: bytearray, keep: set[int]) -> tuple[int, int]:
    """Zeroes, in place, the payload of every fat-binary entry whose SM architecture is not in
    `keep`; returns (entries kept, bytes zeroed). Each container is a 16-byte header (magic,
    version 1, header size 16, size of the entries) and entries of their own header size and
    payload size, the architecture at byte 28 of the entry."""
    magic = struct.pack("<I", FATBIN_MAGIC)
    kept = zeroed = 0
    position = data.find(magic)
    while position != -1:
        _, version, header, size = struct.unpack_from("<IHHQ", data, position)
        end = position + 16 + size
        if version != 1 or header != 16 or end > len(data):
            position = data.find(magic, position + 4)
            continue
        entry = position + 16
        while entry + 32 <= end:
            _, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            if entry_header == 0:
                break
            arch = struct.unpack_from("<I", data, entry + 28)[0]
            start = entry + entry_header
            if arch in keep:
                kept += 1
            else:
                data[start : start + payload] = bytes(payload)
                zeroed += payload
            entry = start + payload
        position = data.find(magic, end)
    return kept, zeroed


def xz_tar(target: Path, members: Iterable[tuple[Path, str]]) -> Path:
    with tarfile.open(target, "w:xz", preset=6) as archive:
        for path, name in members:
            archive.add(
                path, name, filter=lambda info: None if "__pycache__" in info.name else info
            )
    return target


def onnxruntime_parts(wheel: Path, arch: int, out: Path) -> list[Path]:
    with tempfile.TemporaryDirectory() as folder:
        return onnxruntime_parts_from(wheel, arch, out, Path(folder))


def onnxruntime_parts_from(wheel: Path, arch: int, out: Path, staging: Path) -> list[Path]:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith("onnxruntime/")]
        archive.extractall(staging, names)
    provider = bytearray((staging / CUDA_PROVIDER).read_bytes())
    kept, zeroed = prune_fatbins(provider, {arch})
    if kept == 0:
        raise SystemExit(f"the CUDA provider holds no kernels for sm_{arch}")
    pruned = out / f"cuda{arch}.so.xz"
    pruned.write_bytes(lzma.compress(bytes(provider), preset=6))
    print(f"{pruned.name}: {kept} sm_{arch} images kept, {zeroed / 1e6:.0f} MB of others zeroed")
    (staging / CUDA_PROVIDER).unlink()
    (staging / CUDA_PROVIDER.replace("cuda", "tensorrt")).unlink(missing_ok=True)
    return [
        pruned,
        xz_tar(out / "onnxruntime_rest.tar.xz", [(staging / "onnxruntime", "onnxruntime")]),
    ]


def triton_part(python: str, out: Path) -> Path:
    package = package_dir("pytriton")
    server = package / "tritonserver"
    return xz_tar(
        out / "triton.tar.xz",
        [
            (server / "bin", "pytriton/tritonserver/bin"),
            (server / "backends", "pytriton/tritonserver/backends"),
            (
                server / "python_backend_stubs" / python,
                f"pytriton/tritonserver/python_backend_stubs/{python}",
            ),
            (package.parent / "nvidia_pytriton.libs", "nvidia_pytriton.libs"),
        ],
    )


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{name} is not installed here: run `make install`")
    return Path(spec.origin).parent


def piper_part(out: Path) -> Path:
    """Piper (and pathvalidate, which it imports) with its English espeak-ng data: the voice
    needs no other language."""
    piper = package_dir("piper")
    skip = {"hebrew", "train", "ru_dict", "cmn_dict"}
    members = [(path, f"piper/{path.name}") for path in piper.iterdir() if path.name not in skip]
    data = piper / "espeak-ng-data"
    members = [m for m in members if m[0] != data]
    members += [
        (path, f"piper/espeak-ng-data/{path.name}")
        for path in data.iterdir()
        if path.name not in skip
    ]
    members.append((package_dir("pathvalidate"), "pathvalidate"))
    return xz_tar(out / "piper.tar.xz", members)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--onnxruntime-gpu", type=Path, help="the onnxruntime-gpu wheel")
    parser.add_argument("--arch", type=int, default=90, help="the host GPU's SM version")
    parser.add_argument("--python", default="3.12", help="the host's Python, for Triton's stub")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = [triton_part(args.python, args.out), piper_part(args.out)]
    if args.onnxruntime_gpu:
        parts += onnxruntime_parts(args.onnxruntime_gpu, args.arch, args.out)
    for part in parts:
        print(f"{part.name}: {part.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
