from pathlib import Path

import pytest

from orchestrator.settings import Settings
from orchestrator.tutors import TutorCatalog


def test_the_shipped_tutor_file_loads() -> None:
    catalog = TutorCatalog.load(Settings().tutors_file)
    assert 1 in catalog.ids and 13 in catalog.ids
    for tutor in catalog:
        assert catalog.voice_of(tutor).model


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            '[voices.a]\nmodel="tts"\nlanguage="en"\n[[tutors]]\nid=1\nname="x"\npersona="p"\nvoice="b"\n',
            "voice 'b'",
        ),
        (
            '[voices.a]\nmodel="tts"\nlanguage="en"\n'
            '[[tutors]]\nid=1\nname="x"\npersona="p"\nvoice="a"\n'
            '[[tutors]]\nid=1\nname="y"\npersona="p"\nvoice="a"\n',
            "appears twice",
        ),
        ("voices = 3", "cannot load"),
        ("not toml ===", "cannot load"),
    ],
)
def test_broken_tutor_files_say_what_is_wrong(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "tutors.toml"
    path.write_text(body)
    with pytest.raises(ValueError, match=problem):
        TutorCatalog.load(path)
