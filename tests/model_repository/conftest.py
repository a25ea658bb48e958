"""Model tests call the shared Triton over gRPC, as the orchestrator does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from benchmarks.harness.processes import TritonProcess
from orchestrator.triton_client import TritonClient


@pytest_asyncio.fixture(loop_scope="session")
async def client(triton: TritonProcess) -> AsyncIterator[TritonClient]:
    client = TritonClient(triton.grpc_url, request_timeout_s=120)
    yield client
    await client.close()
