"""One WebRTC peer connection per user (`user_<id>`), shared by all that user's sessions."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from media.avatar.registry import AnyAvatar
from webrtc.encoders import use_avatar_encoders
from webrtc.ice import acceptable, filter_sdp
from webrtc.microphone import Hear, listen
from webrtc.pictures import I420
from webrtc.sdp import SdpError, check_candidate, check_offer
from webrtc.stream import AvatarStream
from webrtc.tracks import AvatarVideoTrack, SpeechAudioTrack

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# Why a reply's task was cancelled. Kept beside the task, not in the CancelledError: a
# cancellation that lands inside grpc's or aiortc's own awaits can come out without its message.
_CUT: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = weakref.WeakKeyDictionary()


def cut_reason(task: asyncio.Task[Any] | None) -> str | None:
    """Why `Peer.interrupt` cut this reply off, or None if it did not."""
    return _CUT.get(task) if task is not None else None


class SignalingError(ValueError):
    """An offer or candidate we cannot use; the message says why."""


@dataclass
class Peer:
    key: str
    pc: RTCPeerConnection
    stream: AvatarStream
    sockets: int = 0  # open WebSockets of this user
    last_activity: float = field(default_factory=time.monotonic)
    reply: asyncio.Task[None] | None = None  # the live reply now being spoken
    microphone: asyncio.Task[None] | None = None  # reading the student's microphone track

    @property
    def connected(self) -> bool:
        return self.pc.connectionState == "connected"

    @property
    def speaking(self) -> bool:
        return self.stream.speaking

    def recent_level(self, seconds: float) -> float:
        return self.stream.recent_level(seconds)

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def interrupt(self, reason: str = "interrupt") -> bool:
        """Barge-in: the reply being spoken stops and the avatar falls silent within a frame.
        A reply still being made is cancelled with `reason`, which its socket reports. Returns
        True when speech was cut off that no such task reports (the reply's text was all sent
        and its last sentences were playing): the caller tells the client."""
        reported = self.reply is not None and not self.reply.done()
        if self.reply is not None and reported:
            _CUT[self.reply] = reason
            self.reply.cancel(reason)
        self.reply = None
        return self.stream.interrupt() > 0 and not reported


def _ignore(_: float) -> None:
    pass


@dataclass(frozen=True)
class PeerObserver:
    """What the app learns of its live streams (its metrics): webrtc/ imports no app code."""

    peers_changed: Callable[[int], None] = _ignore  # how many peers are open now
    frame_rendered: Callable[[float], None] = _ignore  # seconds one live frame took to render
    frames_skipped: Callable[[int], None] = _ignore  # frames a stream left out to catch up
    # who hears a peer's microphone track, when the browser sends one (None: nobody)
    microphone: Callable[[Peer], Hear | None] = lambda peer: None
    microphone_closed: Callable[[Peer], None] = lambda peer: None


@dataclass
class PeerSettings:
    ice_servers: list[RTCIceServer]
    allowed_networks: list[Network]
    idle_timeout_s: float
    fps: int


class PeerRegistry:
    def __init__(self, settings: PeerSettings, observer: PeerObserver | None = None) -> None:
        self.settings = settings
        self.observer = observer or PeerObserver()
        self._peers: dict[str, Peer] = {}
        use_avatar_encoders()

    def __len__(self) -> int:
        return len(self._peers)

    def get(self, key: str) -> Peer | None:
        return self._peers.get(key)

    def __iter__(self) -> Iterator[str]:
        """The keys of the open peers."""
        return iter(list(self._peers))

    async def answer(self, key: str, offer_sdp: str, avatar: AnyAvatar) -> str:
        """A new peer for `key` from the browser's offer (replacing any old one): the answer.
        An offer that cannot be used leaves the old peer as it was."""
        try:
            check_offer(offer_sdp)
        except SdpError as error:
            raise SignalingError(f"the offer cannot be used: {error}") from error
        await self.close(key, "peer_replaced")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.settings.ice_servers))
        stream = AvatarStream(
            avatar,
            self.settings.fps,
            self.observer.frame_rendered,
            I420(),
            on_skip=self.observer.frames_skipped,
        )
        peer = Peer(key, pc, stream)
        self._peers[key] = peer
        self.observer.peers_changed(len(self._peers))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and peer.microphone is None:
                hear = self.observer.microphone(peer)
                peer.microphone = asyncio.create_task(listen(track, hear))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("peer state", extra={"peer": key, "state": pc.connectionState})
            if pc.connectionState in ("failed", "closed") and self._peers.get(key) is peer:
                await self.close(key, "peer_closed")

        try:
            await pc.setRemoteDescription(
                RTCSessionDescription(
                    sdp=filter_sdp(offer_sdp, self.settings.allowed_networks), type="offer"
                )
            )
            kinds = {t.kind for t in pc.getTransceivers()}
            if "video" not in kinds or "audio" not in kinds:
                raise SignalingError("the offer must receive both audio and video")
            pc.addTrack(SpeechAudioTrack(stream))
            pc.addTrack(AvatarVideoTrack(stream))
            await pc.setLocalDescription(await pc.createAnswer())
        except SignalingError:
            await self.close(key)
            raise
        except Exception as error:  # aiortc raises bare ValueErrors for bad SDP
            await self.close(key)
            raise SignalingError(f"the offer cannot be used: {error}") from error
        log.info("peer answered", extra={"peer": key})
        return str(pc.localDescription.sdp)

    async def add_candidate(self, key: str, candidate: dict[str, object] | None) -> bool:
        """Applies a trickled remote candidate; False when it was not one we may use."""
        peer = self._peers.get(key)
        if peer is None:
            raise SignalingError("no WebRTC connection for this user: send webrtc_offer first")
        peer.touch()
        if candidate is None or not candidate.get("candidate"):
            return False  # end of candidates: nothing to do for aiortc
        if candidate.get("sdpMid") is None and candidate.get("sdpMLineIndex") is None:
            raise SignalingError("an ICE candidate needs its sdpMid or sdpMLineIndex")
        line = str(candidate["candidate"]).removeprefix("a=")
        try:
            check_candidate(line)
            parsed = candidate_from_sdp(line.removeprefix("candidate:"))
        except (SdpError, ValueError, IndexError) as error:
            raise SignalingError(f"unreadable ICE candidate: {error}") from error
        if not acceptable(parsed.ip, self.settings.allowed_networks):
            return False
        parsed.sdpMid = candidate.get("sdpMid")  # type: ignore[assignment]
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")  # type: ignore[assignment]
        await peer.pc.addIceCandidate(parsed)
        return True

    async def close(self, key: str, reason: str = "peer_closed") -> None:
        peer = self._peers.pop(key, None)
        self.observer.peers_changed(len(self._peers))
        if peer is None:
            return
        peer.interrupt(reason)
        if peer.microphone is not None:
            peer.microphone.cancel()
            self.observer.microphone_closed(peer)
        await peer.pc.close()
        log.info("peer closed", extra={"peer": key})

    async def close_all(self) -> None:
        for key in list(self._peers):
            await self.close(key)

    async def sweep_forever(self, interval_s: float) -> None:
        """Closes user peers no socket has used for the idle timeout."""
        while True:
            await asyncio.sleep(interval_s)
            now = time.monotonic()
            for key, peer in list(self._peers.items()):
                if peer.sockets == 0 and now - peer.last_activity > self.settings.idle_timeout_s:
                    log.info("peer idle; closing", extra={"peer": key})
                    with contextlib.suppress(Exception):
                        await self.close(key)
