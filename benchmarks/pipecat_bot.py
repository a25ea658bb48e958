"""A minimal Pipecat 1.14 voice bot, built the way Pipecat's users build one: its SmallWebRTC
transport and its local Piper TTS service (our voice, en_US-joe-medium), audio only. The
comparison point of `benchmarks.first_speech`; it runs in its own environment (.venv-pipecat:
Pipecat wants numpy 2 and protobuf 5, the engine numpy 1).

    .venv-pipecat/bin/python benchmarks/pipecat_bot.py --port 7860 --voices DIR

POST /api/offer {"sdp", "type"} → the answer with its "pc_id" (SmallWebRTC's own handler);
POST /speak {"pc_id", "text"} → that user's bot speaks the text (a TTSSpeakFrame).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineTask
from pipecat.services.piper.tts import PiperTTSService
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from webrtc.ice import restrict_host_addresses

VOICE = "en_US-joe-medium"


def app(voices: Path) -> web.Application:
    handler = SmallWebRTCRequestHandler()
    tasks: dict[str, PipelineTask] = {}
    runs: set[asyncio.Task[Any]] = set()

    async def start_bot(connection: SmallWebRTCConnection) -> None:
        transport = SmallWebRTCTransport(
            webrtc_connection=connection,
            params=TransportParams(audio_in_enabled=False, audio_out_enabled=True),
        )
        tts = PiperTTSService(settings=PiperTTSService.Settings(voice=VOICE), download_dir=voices)
        task = PipelineTask(Pipeline([transport.input(), tts, transport.output()]))
        tasks[connection.pc_id] = task
        run = asyncio.create_task(PipelineRunner(handle_sigint=False).run(task))
        runs.add(run)
        run.add_done_callback(runs.discard)

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        answer = await handler.handle_web_request(SmallWebRTCRequest.from_dict(body), start_bot)
        return web.json_response(answer)

    async def speak(request: web.Request) -> web.Response:
        body = await request.json()
        task = tasks.get(body["pc_id"])
        if task is None:
            return web.json_response({"detail": "unknown pc_id"}, status=404)
        await task.queue_frames([TTSSpeakFrame(body["text"])])
        return web.json_response({"queued": True})

    application = web.Application()
    application.add_routes([web.post("/api/offer", offer), web.post("/speak", speak)])
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--voices", type=Path, required=True, help=f"holds {VOICE}.onnx(.json)")
    args = parser.parse_args()
    restrict_host_addresses(["127.0.0.1"])  # loopback only, as the engine in the benchmark
    web.run_app(app(args.voices), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
