import pytest

from orchestrator.sentences import SentenceSplitter


def split(pieces: list[str], max_chars: int = 240) -> list[str]:
    splitter = SentenceSplitter(max_chars)
    out = [s for piece in pieces for s in splitter.push(piece)]
    return out + splitter.flush()


def test_sentences_come_out_as_soon_as_they_end() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Plants need light.") == []  # the period may still be "3.5"
    assert splitter.push(" They also need") == ["Plants need light."]
    assert splitter.push(" water. ") == ["They also need water."]


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (
            ["Dr. Smith met Mrs. Jones. Then they left."],
            ["Dr. Smith met Mrs. Jones.", "Then they left."],
        ),
        (
            ["Pi is about 3", ".14 and e is 2.72! Right?"],
            ["Pi is about 3.14 and e is 2.72!", "Right?"],
        ),
        (["你好。我们开始吧！今天学什么？"], ["你好。", "我们开始吧！", "今天学什么？"]),
        (["First line\nSecond line"], ["First line", "Second line"]),
        (['He said "Stop!" Then', " he left."], ['He said "Stop!"', "Then he left."]),
        (["e.g. this is fine. Next."], ["e.g. this is fine.", "Next."]),
    ],
)
def test_boundaries(pieces: list[str], expected: list[str]) -> None:
    assert split(pieces) == expected


def test_run_on_text_is_cut_at_a_comma_within_the_limit() -> None:
    text = "one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve"
    pieces = split([text], max_chars=30)
    assert all(len(p) <= 30 for p in pieces)
    assert " ".join(pieces) == text
