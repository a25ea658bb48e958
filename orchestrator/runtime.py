"""The engine's long-lived parts, opened together in the app's lifespan and closed there."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from aiortc import RTCIceServer
from redis.exceptions import RedisError

from media.avatar.photo.portrait import Limits
from media.avatar.registry import AvatarRegistry
from orchestrator.admission import Admission
from orchestrator.asr import SpeechGate, SpeechRecognizer
from orchestrator.brain import EngineRegistry
from orchestrator.brain.grounded import GroundedTutor
from orchestrator.cluster.events import AvatarChanged, Event, KnowledgeChanged, SessionDeleted
from orchestrator.cluster.membership import Load
from orchestrator.cluster.node import ClusterNode, NodeSettings, Serving
from orchestrator.connection import OpenSockets, peer_key
from orchestrator.conversation import Conversation
from orchestrator.faces import FaceFinder
from orchestrator.knowledge.embedder import Embedder
from orchestrator.knowledge.store import KnowledgeStore
from orchestrator.lipsync import LipSync
from orchestrator.listening import EndOfTurn, Listener, Listeners, TurnRules
from orchestrator.metrics import (
    ACTIVE_PEERS,
    CLUSTER_EVENTS,
    LIVE_FRAMES_SKIPPED,
    LIVE_RENDER_SECONDS,
)
from orchestrator.photo_avatars import PhotoAvatars
from orchestrator.replies import Replies
from orchestrator.sessions import SessionRegistry
from orchestrator.settings import Settings
from orchestrator.tokens import TokenSigner, load_or_create_secret
from orchestrator.triton_client import TritonClient, TritonError
from orchestrator.tts import TextToSpeech
from orchestrator.tutors import TutorCatalog
from orchestrator.vad import EngineVad, TritonVad, VoiceActivity
from orchestrator.video_reply import TalkingVideo
from orchestrator.warmth import KeepWarm, WarmRequest
from triton_ops.contracts import (
    ASR,
    EMBED,
    EMBED_ZH,
    FACE_DETECT,
    FACE_MESH,
    LIPSYNC,
    TURN,
    VAD,
)
from triton_ops.server import TritonDistribution, TritonLaunch, TritonSupervisor
from webrtc.ice import loopback_if_alone, restrict_host_addresses
from webrtc.peers import PeerObserver, PeerRegistry, PeerSettings

log = logging.getLogger(__name__)

STOP_WAIT_S = 5.0  # how long stopping waits for a cancelled background task, or the peers


async def stop_all(tasks: list[asyncio.Task[None]], timeout_s: float = STOP_WAIT_S) -> list[str]:
    """Cancels `tasks` and waits up to `timeout_s` for them to end; the names of those that
    did not (a task that swallowed its cancellation must not keep the process from exiting)."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, stuck = await asyncio.wait(tasks, timeout=timeout_s)
    return sorted(task.get_name() for task in stuck)


def peer_settings(settings: Settings) -> PeerSettings:
    return PeerSettings(
        ice_servers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in settings.webrtc_ice_servers
        ],
        allowed_networks=[ipaddress.ip_network(n) for n in settings.webrtc_allowed_networks],
        idle_timeout_s=settings.webrtc_idle_timeout_s,
        fps=settings.video_fps,
    )


def triton_supervisor(settings: Settings) -> TritonSupervisor | None:
    """The embedded Triton, as the settings describe it (None when an external one serves)."""
    if not settings.embedded_triton:
        return None
    return TritonSupervisor(
        TritonLaunch(
            model_repository=settings.model_repository,
            workdir=settings.data_dir / "triton",
            grpc_port=settings.triton_grpc_port,
            http_port=settings.triton_http_port,
            metrics_port=settings.triton_metrics_port,
            model_config_name=settings.triton_model_config_name,
        ),
        startup_timeout_s=settings.triton_startup_timeout_s,
        backoff_s=settings.triton_restart_backoff_s,
        dist=TritonDistribution.from_binary(settings.triton_binary)
        if settings.triton_binary
        else None,
    )


def node_settings(settings: Settings) -> NodeSettings | None:
    """This engine's place among several, when ENGINE_REDIS_URL names their shared Redis."""
    if settings.redis_url is None or settings.public_url is None:
        return None
    return NodeSettings(
        redis_url=settings.redis_url,
        prefix=settings.redis_prefix,
        engine_id=settings.engine_name,
        public_url=settings.public_url,
        heartbeat_s=settings.heartbeat_s,
        dead_after_s=settings.dead_after_s,
        session_ttl_s=settings.session_ttl_s,
        history_len=settings.history_max_turns * 2,
        revoke_for_s=settings.token_ttl_s,
    )


def listeners_for(settings: Settings, triton: TritonClient) -> Listeners:
    """Hands-free listening: the VAD where the settings put it, the end-of-turn model in Triton."""
    vad: VoiceActivity = (
        EngineVad(settings.model_repository / "vad" / "1" / "silero_vad.onnx")
        if settings.vad_runs_in == "engine"
        else TritonVad(triton)
    )
    rules = TurnRules(
        max_s=settings.max_audio_s,
        start_s=settings.turn_start_s,
        pause_s=settings.turn_pause_s,
        timeout_s=settings.turn_timeout_s,
        barge_in_s=settings.barge_in_s,
        echo_gate_db=settings.echo_gate_db,
    )
    end_of_turn = EndOfTurn(triton)
    return Listeners(lambda tutor: Listener(vad, end_of_turn, rules, tutor))


@dataclass
class Runtime:
    settings: Settings
    tokens: TokenSigner
    sessions: SessionRegistry
    tutors: TutorCatalog
    engines: EngineRegistry
    triton: TritonClient
    supervisor: TritonSupervisor | None
    replies: Replies
    avatars: AvatarRegistry
    photo_avatars: PhotoAvatars
    peers: PeerRegistry
    knowledge: KnowledgeStore
    admission: Admission
    listeners: Listeners
    cluster: ClusterNode | None = None
    sockets: OpenSockets = field(default_factory=OpenSockets)
    draining: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, environ: Mapping[str, str] = os.environ) -> Runtime:
        secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
        tutors = TutorCatalog.load(settings.tutors_file)
        triton = TritonClient(settings.triton_grpc_target, settings.triton_request_timeout_s)
        node = node_settings(settings)
        cluster = await ClusterNode.join(node) if node is not None else None
        knowledge = KnowledgeStore(
            settings.knowledge_root,
            Embedder(triton),
            exact_below=settings.knowledge_exact_below,
            writers=cluster.knowledge_lock if cluster is not None else None,
        )
        grounded = GroundedTutor(
            knowledge,
            {
                EMBED.name: settings.knowledge_min_score_en,
                EMBED_ZH.name: settings.knowledge_min_score_zh,
            },
        )
        engines = EngineRegistry(tutors, environ, grounded)
        supervisor = triton_supervisor(settings)
        if supervisor is not None:
            supervisor.start()
        sessions = SessionRegistry(
            settings.session_ttl_s,
            settings.history_max_turns,
            revoke_for_s=settings.token_ttl_s,
            shared=cluster.records if cluster is not None else None,
        )
        lipsync = LipSync(
            triton,
            settings.video_fps,
            settings.lipsync_source,
            lead_s=settings.lipsync_lead_ms / 1000,
        )
        settings.photo_avatars.mkdir(parents=True, exist_ok=True)
        avatars = AvatarRegistry.load([settings.avatars_dir], settings.photo_avatars)
        replies = Replies(
            settings,
            Conversation(
                tutors,
                engines,
                TextToSpeech(triton, settings.tts_in_flight),
                knowledge,
                settings.retrieval_k,
            ),
            SpeechRecognizer(
                triton,
                SpeechGate(
                    settings.silence_dbfs, settings.no_speech_prob, settings.no_speech_logprob
                ),
            ),
            lipsync,
            TalkingVideo(lipsync, settings.video_fps, settings.video_size, settings.video_crf),
        )
        listeners = listeners_for(settings, triton)
        runtime = cls(
            settings=settings,
            tokens=TokenSigner(
                load_or_create_secret(secret_key, settings.data_dir), settings.token_ttl_s
            ),
            sessions=sessions,
            tutors=tutors,
            engines=engines,
            triton=triton,
            supervisor=supervisor,
            replies=replies,
            admission=Admission(settings.max_replies_in_flight),
            knowledge=knowledge,
            avatars=avatars,
            photo_avatars=PhotoAvatars(
                settings.photo_avatars,
                avatars,
                FaceFinder(triton),
                Limits(
                    max_pixels=settings.avatar_max_pixels,
                    min_eye_distance_px=settings.avatar_min_eye_distance_px,
                    max_yaw_degrees=settings.avatar_max_yaw_degrees,
                    max_pitch_degrees=settings.avatar_max_pitch_degrees,
                ),
                settings.photo_avatar_size,
                settings.avatar_builds_at_once,
                settings.max_photo_avatars,
                board=cluster.avatar_builds if cluster is not None else None,
            ),
            peers=PeerRegistry(
                peer_settings(settings),
                PeerObserver(
                    ACTIVE_PEERS.set,
                    LIVE_RENDER_SECONDS.observe,
                    LIVE_FRAMES_SKIPPED.inc,
                    microphone=lambda peer: listeners.open(peer.key, peer).hear,
                    microphone_closed=lambda peer: listeners.closed(peer.key, peer),
                ),
            ),
            listeners=listeners,
            cluster=cluster,
        )
        if settings.webrtc_host_addresses is not None:
            restrict_host_addresses(settings.webrtc_host_addresses)
        elif (loopback := loopback_if_alone()) is not None:
            log.info("only loopback here: WebRTC gathers on it", extra={"addresses": loopback})
            restrict_host_addresses(loopback)
        runtime._tasks += [
            asyncio.create_task(
                sessions.sweep_forever(settings.session_sweep_interval_s), name="session sweep"
            ),
            asyncio.create_task(
                runtime.peers.sweep_forever(settings.webrtc_sweep_interval_s), name="peer sweep"
            ),
            asyncio.create_task(runtime.load_knowledge(), name="knowledge load"),
        ]
        if cluster is not None:
            runtime._tasks += [
                asyncio.create_task(runtime.join_when_ready(cluster), name="heartbeat"),
                asyncio.create_task(
                    cluster.events.listen(runtime.heard, runtime.read_again), name="cluster events"
                ),
            ]
        if settings.keep_warm_s > 0:
            warmth = KeepWarm(triton, settings.keep_warm_s, runtime.warm_requests)
            runtime._tasks.append(asyncio.create_task(warmth.run_forever(), name="keep-warm"))
        log.info(
            "engine started",
            extra={
                "triton": settings.triton_grpc_target,
                "embedded_triton": settings.embedded_triton,
                "engine_id": cluster.engine_id if cluster else None,
            },
        )
        return runtime

    # --- one engine of several ---------------------------------------------------------

    async def join_when_ready(self, cluster: ClusterNode) -> None:
        """Beats (and so takes students) once Triton serves this engine's models."""
        while True:
            if (await self.triton.health(self.served_models, 2.0)).ready:
                break
            await asyncio.sleep(0.5)
        log.info("engine joins the cluster", extra={"engine_id": cluster.engine_id})
        await cluster.heartbeat_forever(self.serving, self.gone, self.let_go)

    @property
    def load(self) -> Load:
        return Load(
            sockets=len(self.sockets),
            peers=len(self.peers),
            replies=self.admission.in_flight,
            capacity=self.admission.capacity,
        )

    def serving(self) -> Serving:
        """This engine's load, the students it serves now and its sessions in use."""
        students = self.sockets.users() | {
            key.removeprefix("user_") for key in self.peers if key.startswith("user_")
        }
        return Serving(
            load=self.load,
            students=sorted(students),
            sessions=self.sessions.in_use(),
            renewed=self.sessions.renewed,
        )

    async def knowledge_changed(self, kb_id: str) -> None:
        """A knowledge base was changed through this engine: the others read it again."""
        if self.cluster is not None:
            await self.cluster.events.publish(
                KnowledgeChanged(kb_id=kb_id, engine_id=self.cluster.engine_id)
            )

    async def session_deleted(self, session_id: str) -> None:
        """A session was deleted through this engine: its sockets close, here and on the
        engine that serves it."""
        await self._close_deleted(session_id)
        if self.cluster is not None:
            await self.cluster.events.publish(SessionDeleted(session_id=session_id))

    async def heard(self, event: Event) -> None:
        """A change made through another engine."""
        match event:
            case SessionDeleted(session_id=session_id):
                await self._close_deleted(session_id)
            case KnowledgeChanged(kb_id=kb_id, engine_id=engine_id):
                if self.cluster is not None and engine_id != self.cluster.engine_id:
                    await self.knowledge.reload(kb_id)
            case AvatarChanged(avatar_id=avatar_id, present=present, engine_id=engine_id):
                if self.cluster is None or engine_id == self.cluster.engine_id:
                    return
                if present:
                    await self.photo_avatars.adopt(avatar_id)
                else:
                    self.photo_avatars.drop(avatar_id)

    async def let_go(self, students: list[str]) -> None:
        """Students served here but placed on another engine (this engine's heartbeat stalled
        and they were placed again): their sockets close (1012: connect again, to their engine)
        and their peers too, so that no student is served by two engines."""
        leaving = set(students)
        CLUSTER_EVENTS.labels("student_let_go").inc(len(leaving))
        log.warning("students placed elsewhere let go", extra={"students": sorted(leaving)})
        reason = "this student is served by another engine now: reconnect"
        await asyncio.gather(
            *(s.close(1012, reason) for s in self.sockets.all() if s.identity.user_id in leaving)
        )
        for student in leaving:
            await self.peers.close(peer_key(student))

    async def read_again(self) -> None:
        """After events may have been missed: knowledge bases and photo avatars as the shared
        folders hold them now (a missed deletion is caught by the heartbeat's renewal)."""
        await self.knowledge.reload_all()
        await self.photo_avatars.rescan()

    async def gone(self, session_ids: list[str]) -> None:
        """Sessions held here whose shared record vanished: deleted through another engine (a
        deletion this engine missed hearing of), or lost with Redis's memory (written back)."""
        for session_id in session_ids:
            if await self.sessions.is_revoked(session_id):
                await self._close_deleted(session_id)
            else:
                await self.sessions.restore(session_id)
                CLUSTER_EVENTS.labels("session_restored").inc()

    async def _close_deleted(self, session_id: str) -> None:
        """A deleted session: forgotten here, its tokens refused, its sockets closed."""
        self.sessions.delete(session_id)
        await self.sockets.close_for(session_id, f"session {session_id} was deleted")

    async def drain(self) -> None:
        """SIGTERM: no new students (other engines take them), replies in flight finish, then
        every socket closes (1012: reconnect, to the student's new engine) and every peer."""
        self.draining = True
        log.info("engine draining", extra={"timeout_s": self.settings.drain_timeout_s})
        if self.cluster is not None:
            try:
                await self.cluster.drain(self.load)
            except RedisError as error:  # the other engines learn it when the heartbeat lapses
                log.warning("drain not announced", extra={"error": str(error)})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.drain_timeout_s
        reason = "the engine is draining: reconnect"
        while self.sockets and loop.time() < deadline:
            idle = [socket for socket in self.sockets.all() if not socket.busy]
            await asyncio.gather(*(socket.close(1012, reason) for socket in idle))
            await asyncio.sleep(0.05)
        await asyncio.gather(*(socket.close(1012, reason) for socket in self.sockets.all()))
        await self.peers.close_all()
        log.info("engine drained", extra={"replies_in_flight": self.admission.in_flight})

    async def load_knowledge(self) -> None:
        """Loads the knowledge bases once Triton can embed; retries while it cannot."""
        while True:
            try:
                await self.knowledge.load(self.settings.knowledge_seed_dir)
                return
            except TritonError as error:
                log.info("knowledge bases wait for Triton", extra={"error": str(error)})
                await asyncio.sleep(2.0)

    def warm_requests(self) -> list[WarmRequest]:
        """What keeps warm the voices and knowledge models of the tutors that connected
        students talk to; not for a student still hearing a reply, until it nears its end:
        they ask nothing before it ends."""
        requests = []
        for session_id in self.sockets.session_ids():
            session = self.sessions.get(session_id)
            tutor = self.tutors.get(session.tutor_id) if session else None
            if session is None or tutor is None:
                continue
            peer = self.peers.get(peer_key(session.student_id))
            if peer is not None and peer.stream.speech_left() > 2 * self.settings.keep_warm_s:
                continue
            requests.append(WarmRequest.voice(self.tutors.voice_of(tutor)))
            base = self.knowledge.get(session.kb_id or tutor.kb_id or "")
            if base is not None:
                requests.append(WarmRequest.embedding(base.model))
        return requests

    @property
    def served_models(self) -> list[str]:
        """The Triton models this engine needs: speech recognition, lip-sync, embeddings, the
        face models (photo avatars), end of turn (and voice activity, when it runs there) and
        its tutors' voices."""
        voices = {voice.model for voice in self.tutors.voices.values()}
        needed = {ASR, LIPSYNC, EMBED, EMBED_ZH, FACE_DETECT, FACE_MESH, TURN}
        if self.settings.vad_runs_in == "triton":
            needed.add(VAD)
        return sorted({contract.name for contract in needed} | voices)

    async def health(self) -> dict[str, Any]:
        state = await self.triton.health(self.served_models, self.settings.health_probe_timeout_s)
        triton: dict[str, Any] = {
            "mode": "embedded" if self.supervisor else "external",
            "url": self.triton.url,
            "live": state.live,
            "ready": state.ready,
            "models": state.models,
        }
        if state.error:
            triton["error"] = state.error
        if self.supervisor is not None:
            triton.update(
                state=self.supervisor.state,
                pid=self.supervisor.pid,
                restarts=self.supervisor.restarts,
                last_error=self.supervisor.last_error,
            )
        status = "healthy" if state.ready else "unhealthy"
        return {
            "status": "draining" if self.draining else status,
            "service": "GPU Server",
            "version": metadata.version("tutor-engine"),
            "triton": triton,
            "sessions": len(self.sessions),
            "avatars": len(self.avatars),
            "webrtc_peers": len(self.peers),
            "knowledge_ready": self.knowledge.ready.is_set(),
            "knowledge_bases": {
                kb: len(base.chunks)
                for kb in self.knowledge.ids
                if (base := self.knowledge.get(kb))
            },
            "connections": len(self.sockets),
            "engine_id": self.cluster.engine_id if self.cluster else None,
        }

    async def aclose(self) -> None:
        if stuck := await stop_all(self._tasks):
            log.warning("background tasks did not stop", extra={"tasks": stuck})
        await self.photo_avatars.aclose()
        closing = asyncio.create_task(self.peers.close_all())
        if (await asyncio.wait([closing], timeout=STOP_WAIT_S))[1]:
            log.warning("peers did not close in time")
        await self.engines.aclose()
        await self.triton.close()
        if self.cluster is not None:
            await self.cluster.leave()
        if self.supervisor is not None:
            await self.supervisor.stop()
        log.info("engine stopped")
