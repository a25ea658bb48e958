"""Pruning the CUDA provider keeps one GPU generation's kernels byte for byte, zeroes the rest."""

from __future__ import annotations

import struct

from benchmarks.gpu_carry import FATBIN_MAGIC, prune_fatbins


def entry(arch: int, payload: bytes, header: int = 64) -> bytes:
    fields = struct.pack("<HHIQ", 2, 0x101, header, len(payload)) + bytes(12)
    fields += struct.pack("<I", arch)
    return fields + bytes(header - len(fields)) + payload


def container(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, len(body)) + body


def test_only_the_kept_architecture_s_kernels_survive_across_containers() -> None:
    sm80, sm90, sm120 = b"\x80" * 40, b"\x90" * 24, b"\x12" * 56
    library = bytearray(
        b"host code"
        + container(entry(80, sm80), entry(90, sm90), entry(120, sm120, header=72))
        + b"more host code"
        + container(entry(90, sm90), entry(75, b"\x75" * 8))
    )
    size = len(library)

    kept, zeroed = prune_fatbins(library, {90})

    assert (kept, zeroed) == (2, len(sm80) + len(sm120) + 8)
    assert len(library) == size
    assert library.count(sm90) == 2
    assert sm80 not in library and sm120 not in library and b"\x75" * 8 not in library
    assert library.startswith(b"host code") and b"more host code" in library


def test_a_magic_number_inside_host_code_is_not_taken_for_a_container() -> None:
    stray = struct.pack("<IHHQ", FATBIN_MAGIC, 7, 16, 10**9)  # wrong version, impossible size
    library = bytearray(stray + container(entry(86, b"\x86" * 16)))

    kept, zeroed = prune_fatbins(library, {90})

    assert (kept, zeroed) == (0, 16)
    assert library.startswith(stray)
