"""A host whose only interface is loopback (a bare container, a network namespace): the engine
notices and gathers ICE candidates there, without ENGINE_WEBRTC_HOST_ADDRESSES."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.processes import EngineProcess, TritonProcess
from benchmarks.harness.webrtc_client import LiveClient

pytestmark = pytest.mark.serving


async def test_the_engine_streams_on_a_loopback_only_host_untold(
    triton: TritonProcess, tmp_path: Path
) -> None:
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        pytest.skip("this host has interfaces besides loopback (make test runs in a namespace)")
    engine = EngineProcess(
        tmp_path, env={"ENGINE_TRITON_URL": triton.grpc_url, "ENGINE_WEBRTC_HOST_ADDRESSES": ""}
    ).start()
    try:
        session = engine.create_session(student_id=990)
        url = engine.ws_url("user_990", session["engine_token"])
        async with connect(url, max_size=None) as ws:
            client = LiveClient()
            await client.connect(ws, 990)
            try:
                for _ in range(200):
                    if len(client.video) > 25:
                        break
                    await asyncio.sleep(0.05)
                assert len(client.video) > 25, "media flows"
            finally:
                await client.close()
        assert "only loopback here" in engine.log.read_text()
    finally:
        engine.stop()
