"""Photo avatars made from uploaded portraits: each build runs in the background (decode, find
the face in Triton, check it, frame and rig it, save), shows its stage, and either registers a
ready avatar or leaves nothing behind but its failure, which GET can still tell. With several
engines, a build's state is told to the others (`BuildBoard`), and they take in the avatar
from the shared folder once it is ready."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt
from redis.exceptions import RedisError

from media.avatar.photo.avatar import RECORD, PhotoAvatar
from media.avatar.photo.portrait import Limits, PortraitError, check, decode, frame
from media.avatar.registry import AvatarRegistry
from orchestrator.faces import FaceFinder
from orchestrator.triton_client import TritonError

log = logging.getLogger(__name__)

Status = Literal["building", "ready", "failed"]
MAX_SIDE = 2048  # larger pictures are scaled down first: the video is far smaller
_FAILURES_KEPT = 100


@dataclass
class Build:
    avatar_id: str
    name: str
    status: Status = "building"
    stage: str = "queued"
    progress: float = 0.0
    error_code: str | None = None
    error: str | None = None
    http_status: int = 200
    warnings: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def at(self, stage: str, progress: float) -> None:
        self.stage, self.progress = stage, progress

    @property
    def state(self) -> dict[str, Any]:
        """What other engines are told of it (all but the event its POST waits on)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "done"}

    @classmethod
    def of(cls, state: dict[str, Any]) -> Build:
        build = cls(**state)
        build.done.set()
        return build


class BuildBoard(Protocol):
    """Where several engines tell each other of builds (orchestrator/cluster/avatar_builds.py)."""

    async def told(self, avatar_id: str, state: dict[str, Any], ready: bool) -> None: ...

    async def read(self, avatar_id: str) -> dict[str, Any] | None: ...

    async def gone(self, avatar_id: str) -> None: ...


class PhotoAvatars:
    def __init__(
        self,
        folder: Path,
        registry: AvatarRegistry,
        faces: FaceFinder,
        limits: Limits,
        size: tuple[int, int],
        at_once: int,
        max_avatars: int,
        board: BuildBoard | None = None,
    ) -> None:
        self.folder = folder
        self._board = board
        self.registry = registry
        self.faces = faces
        self.limits = limits
        self.size = size
        self.max_avatars = max_avatars
        self._slots = asyncio.Semaphore(at_once)
        self._builds: dict[str, Build] = {}
        self._failed: OrderedDict[str, Build] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        for avatar_id in registry.ids:
            avatar = registry.get(avatar_id)
            if isinstance(avatar, PhotoAvatar):
                self._ready(avatar)

    def _ready(self, avatar: PhotoAvatar) -> None:
        ready = Build(avatar.avatar_id, avatar.name, "ready", "ready", 1.0)
        ready.warnings = list(avatar.record.get("warnings", []))
        ready.created_at = float(avatar.record.get("created_at", 0.0))
        ready.done.set()
        self._builds[avatar.avatar_id] = ready

    def start(self, data: bytes, name: str) -> Build:
        """Starts building an avatar from the uploaded bytes."""
        if len(self._builds) >= self.max_avatars:
            raise PortraitError(
                "too_many_avatars",
                f"this engine keeps at most {self.max_avatars} photo avatars: delete one first",
                status=409,
            )
        build = Build(f"photo_{uuid.uuid4().hex[:12]}", name)
        self._builds[build.avatar_id] = build
        task = asyncio.create_task(self._run(build, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return build

    def get(self, avatar_id: str) -> Build | None:
        return self._builds.get(avatar_id) or self._failed.get(avatar_id)

    async def find(self, avatar_id: str) -> Build | None:
        """A build here, else as the engine running it told (taking in a ready avatar this
        engine has not heard of yet)."""
        build = self.get(avatar_id)
        if build is not None or self._board is None:
            return build
        state = await self._board.read(avatar_id)
        if state is None:
            return None
        if state["status"] == "ready":
            await self.adopt(avatar_id)
            return self.get(avatar_id)
        return Build.of(state)

    async def adopt(self, avatar_id: str) -> None:
        """Takes in an avatar another engine made (it is in the shared folder)."""
        if isinstance(self.registry.get(avatar_id), PhotoAvatar):
            return
        try:
            avatar = await asyncio.to_thread(PhotoAvatar.load, self.folder / avatar_id)
        except (OSError, ValueError, KeyError) as error:
            log.error(
                "photo avatar not taken in", extra={"avatar_id": avatar_id, "error": str(error)}
            )
            return
        self.registry.add(avatar)
        self._ready(avatar)

    async def rescan(self) -> None:
        """Takes in the shared folder's avatars this engine has not, and drops those gone."""
        on_disk = await asyncio.to_thread(
            lambda: {p.parent.name for p in self.folder.glob(f"*/{RECORD}")}
        )
        for avatar_id in sorted(on_disk):
            await self.adopt(avatar_id)
        for build in self.builds():
            if build.status == "ready" and build.avatar_id not in on_disk:
                self.drop(build.avatar_id)

    def drop(self, avatar_id: str) -> None:
        """Forgets an avatar another engine deleted (its folder is gone)."""
        self._builds.pop(avatar_id, None)
        self._failed.pop(avatar_id, None)
        self.registry.remove(avatar_id)

    def builds(self) -> list[Build]:
        """Ready and building avatars (failures are only told by GET of their id)."""
        return sorted(self._builds.values(), key=lambda b: b.created_at)

    async def forget(self, avatar_id: str) -> None:
        """Drops a failure's record (its client has been told)."""
        self._failed.pop(avatar_id, None)
        await self._gone(avatar_id)

    async def delete(self, avatar_id: str) -> bool:
        """Deletes an avatar, or stops its build: here, or on the engine building it."""
        build = self._builds.pop(avatar_id, None) or self._failed.pop(avatar_id, None)
        if build is None and (self._board is None or await self._board.read(avatar_id) is None):
            return False
        self.registry.remove(avatar_id)
        await asyncio.to_thread(shutil.rmtree, self.folder / avatar_id, ignore_errors=True)
        await self._gone(avatar_id)
        return True

    async def _tell(self, build: Build) -> None:
        if self._board is None or self.get(build.avatar_id) is not build:
            return  # one deleted while it built is not told of again
        try:
            await self._board.told(build.avatar_id, build.state, build.status == "ready")
        except RedisError as error:
            log.warning("build not told", extra={"avatar_id": build.avatar_id, "error": str(error)})

    async def _gone(self, avatar_id: str) -> None:
        if self._board is None:
            return
        try:
            await self._board.gone(avatar_id)
        except RedisError as error:
            log.warning("deletion not told", extra={"avatar_id": avatar_id, "error": str(error)})

    async def _at(self, build: Build, stage: str, progress: float) -> None:
        build.at(stage, progress)
        await self._tell(build)

    async def _run(self, build: Build, data: bytes) -> None:
        staging = self.folder / f".{build.avatar_id}.building"
        try:
            await self._tell(build)
            async with self._slots:
                avatar = await self._make(build, data)
                await self._at(build, "saving", 0.9)
                await asyncio.to_thread(self._save, avatar, staging)
            if self._builds.get(build.avatar_id) is not build:  # deleted while it built
                await asyncio.to_thread(shutil.rmtree, self.folder / build.avatar_id, True)
                return
            self.registry.add(avatar)
            build.status = "ready"
            await self._at(build, "ready", 1.0)
            log.info("photo avatar ready", extra={"avatar_id": build.avatar_id})
        except PortraitError as error:
            self._fail(build, error.code, str(error), error.status)
        except TritonError as error:
            self._fail(build, "triton_unavailable", f"the face models could not run: {error}", 503)
        except Exception as error:  # a bug: say so, keep nothing
            log.exception("photo avatar build failed", extra={"avatar_id": build.avatar_id})
            self._fail(build, "internal_error", f"the avatar could not be built: {error}", 500)
        finally:
            if staging.exists():
                await asyncio.to_thread(shutil.rmtree, staging, True)
            if build.status == "failed":
                await self._tell(build)
            build.done.set()

    async def _make(self, build: Build, data: bytes) -> PhotoAvatar:
        await self._at(build, "decoding", 0.1)
        picture = await asyncio.to_thread(_decode, data, self.limits)
        await self._at(build, "finding the face", 0.3)
        found = await self.faces.find(picture)
        if found.faces > 1:
            build.warnings.append(f"{found.faces} faces were found; the largest one is animated")
        await self._at(build, "checking the face", 0.5)
        pose = check(picture, found.points, found.presence, self.limits)
        await self._at(build, "rigging", 0.7)
        width, height = self.size
        portrait, points = await asyncio.to_thread(frame, picture, found.points, width, height)
        record = {
            "created_at": build.created_at,
            "source": {"width": picture.shape[1], "height": picture.shape[0]},
            "face": {
                "score": round(found.score, 3),
                "presence": round(found.presence, 3),
                "yaw": round(pose.yaw, 1),
                "pitch": round(pose.pitch, 1),
                "roll": round(pose.roll, 1),
            },
            "warnings": build.warnings,
        }
        return await asyncio.to_thread(
            PhotoAvatar.make, build.avatar_id, build.name, portrait, points, record
        )

    def _save(self, avatar: PhotoAvatar, staging: Path) -> None:
        """Written aside, then renamed into place: a folder under its id is always whole."""
        shutil.rmtree(staging, ignore_errors=True)
        avatar.save(staging)
        staging.rename(self.folder / avatar.avatar_id)

    def _fail(self, build: Build, code: str, message: str, http_status: int) -> None:
        build.status, build.error_code, build.error = "failed", code, message
        build.http_status = http_status
        build.stage = "failed"
        if self._builds.pop(build.avatar_id, None) is not None:
            self._failed[build.avatar_id] = build
            while len(self._failed) > _FAILURES_KEPT:
                self._failed.popitem(last=False)
        log.info("photo avatar refused", extra={"avatar_id": build.avatar_id, "error": code})

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _decode(data: bytes, limits: Limits) -> npt.NDArray[np.uint8]:
    picture = decode(data, limits)
    longest = max(picture.shape[:2])
    if longest > MAX_SIDE:
        scale = MAX_SIDE / longest
        size = (round(picture.shape[1] * scale), round(picture.shape[0] * scale))
        picture = np.asarray(cv2.resize(picture, size, interpolation=cv2.INTER_AREA), np.uint8)
    return picture
