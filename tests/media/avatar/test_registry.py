"""Avatar folders: the default ones load; broken ones are refused with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media.avatar import draw
from media.avatar.registry import AvatarError, AvatarRegistry, load_avatar
from media.avatar.visemes import VISEMES


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("avatars")
    for style in draw.STYLES:
        draw.write_avatar(style, folder)
    return folder


def test_the_default_avatars_load_with_every_viseme(drawn: Path) -> None:
    registry = AvatarRegistry.load([drawn])
    assert registry.ids == ["avatar_tutor_1", "avatar_tutor_13", "avatar_tutor_2"]
    avatar = registry.get("avatar_tutor_13")
    assert avatar is not None and (avatar.width, avatar.height) == (512, 512)
    assert avatar.mouths.shape[0] == len(VISEMES) and avatar.mouths.shape[-1] == 4
    # every mouth differs from every other: 15 shapes, not copies
    flat = avatar.mouths.reshape(len(VISEMES), -1)
    distances = np.abs(flat[:, None] - flat[None]).mean(axis=2)
    assert (distances + np.eye(len(VISEMES)) > 1e-3).all()


def _copy(drawn: Path, tmp_path: Path) -> Path:
    target = tmp_path / "avatar_broken"
    shutil.copytree(drawn / "avatar_tutor_1", target)
    return target


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / "mouth" / "aa.png").unlink(), "missing aa.png"),
        (lambda f: (f / "avatar.toml").write_text("name = 3"), "avatar.toml"),
        (lambda f: Image.new("RGB", (100, 100)).save(f / "head.png"), "head.png is 100×100"),
        (
            lambda f: Image.new("RGBA", (512, 512), (9, 9, 9, 255)).save(f / "front.png"),
            "must not reach",
        ),
        (lambda f: Image.new("RGBA", (512, 512)).save(f / "head.png"), "must be opaque wherever"),
    ],
)
def test_a_broken_avatar_says_what_is_wrong_and_is_skipped(
    drawn: Path, tmp_path: Path, damage, reason: str
) -> None:  # type: ignore[no-untyped-def]
    folder = _copy(drawn, tmp_path)
    damage(folder)
    with pytest.raises(AvatarError, match=reason):
        load_avatar(folder)
    assert AvatarRegistry.load([tmp_path]).ids == []
