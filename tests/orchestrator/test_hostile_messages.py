"""Whatever arrives on a socket, the parser answers a message or a typed error that can be sent
back: never another exception (which dropped the socket without a word)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.messages import (
    CLIENT_TYPES,
    ErrorMessage,
    ProtocolError,
    parse_client_message,
)

SURROGATE = "\ud800"


def answer(raw: str | bytes) -> str:
    """What the socket would send back: the parsed type, or the error frame as JSON text."""
    try:
        return parse_client_message(raw).type
    except ProtocolError as error:
        frame = ErrorMessage.from_protocol_error(error).to_json()
        frame.encode("utf-8")  # it can be sent
        return json.loads(frame)["code"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (
            '{"type": "text_webrtc", "content": "hi", "user_id": ' + "7" * 5000 + "}",
            "malformed_json",
        ),
        (
            json.dumps({"type": "text", "content": "hi", "engine_session_id": SURROGATE}),
            "malformed_json",
        ),
        (
            json.dumps({"type": "webrtc_offer", "sdp": "v=0", "user_id": SURROGATE}),
            "malformed_json",
        ),
        (json.dumps({"type": SURROGATE}), "malformed_json"),
        ("[" * 3000 + "]" * 3000, "malformed_json"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "malformed_json"),
        ('{"type": "text", "content": ' + "[" * 5000 + "]" * 5000 + "}", "malformed_json"),
        (json.dumps({"type": "text", "content": "\u0000\u0007 control"}), "text"),
        (b"\xff\xfe binary", "malformed_json"),
        ('{"type": "text", "content": NaN}', "invalid_message"),
    ],
)
def test_each_hostile_message_the_audit_found_gets_a_typed_error(raw: str, code: str) -> None:
    assert answer(raw) == code


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),  # surrogates included
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
fields = st.sampled_from(
    ["content", "engine_session_id", "user_id", "avatar_id", "sdp", "candidate", "data", "format"]
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([*CLIENT_TYPES, "nope", SURROGATE, ""]) | st.none(),
    body=st.dictionaries(fields, json_values, max_size=5),
)
def test_any_message_of_any_shape_is_answered(kind: str | None, body: dict[str, object]) -> None:
    raw = json.dumps({"type": kind, **body}, ensure_ascii=True)  # \ud800 travels escaped
    assert answer(raw) in (
        *CLIENT_TYPES,
        "malformed_json",
        "malformed_message",
        "unknown_type",
        "invalid_message",
    )


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_any_frame_at_all_is_answered(raw: bytes | str) -> None:
    answer(raw)
