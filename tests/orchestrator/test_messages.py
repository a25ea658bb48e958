import json

import pytest

from orchestrator.messages import (
    AudioMessage,
    ErrorMessage,
    ProtocolError,
    TextMessage,
    TextReply,
    TextWebRTCMessage,
    WebRTCIceCandidateMessage,
    WebRTCOfferMessage,
    parse_client_message,
    parse_server_message,
)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"type": "text", "content": "你好", "avatar_id": "avatar_tutor_13"}, TextMessage),
        ({"type": "audio", "data": "UklGRg=="}, AudioMessage),
        (
            {"type": "webrtc_offer", "sdp": "v=0", "user_id": 123, "avatar_id": "a"},
            WebRTCOfferMessage,
        ),
        (
            {
                "type": "webrtc_ice_candidate",
                "candidate": {
                    "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                    "sdpMid": "0",
                    "sdpMLineIndex": 0,
                },
                "user_id": 123,
            },
            WebRTCIceCandidateMessage,
        ),
        (
            {"type": "text_webrtc", "content": "hi", "user_id": 1, "engine_session_id": "s"},
            TextWebRTCMessage,
        ),
    ],
)
def test_every_protocol_message_parses(raw: dict[str, object], kind: type) -> None:
    assert isinstance(parse_client_message(json.dumps(raw)), kind)


def test_unknown_fields_are_ignored() -> None:
    message = parse_client_message('{"type": "text", "content": "hi", "future_field": 1}')
    assert isinstance(message, TextMessage) and message.content == "hi"


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        ("not json", "malformed_json", "not valid JSON"),
        ("[1, 2]", "malformed_message", "JSON object"),
        ('{"content": "hi"}', "unknown_type", "unknown message type None"),
        ('{"type": "dance"}', "unknown_type", "expected one of: text, audio"),
        ('{"type": "text"}', "invalid_message", "'content' is required"),
        ('{"type": "text", "content": "   "}', "invalid_message", "'content'"),
        ('{"type": "audio"}', "invalid_message", "'data' is required"),
        ('{"type": "webrtc_offer", "sdp": "v=0"}', "invalid_message", "'user_id' is required"),
        ('{"type": "webrtc_ice_candidate", "candidate": null}', "invalid_message", "'user_id'"),
        ('{"type": "text", "content": 5}', "invalid_message", "'content'"),
    ],
)
def test_bad_messages_name_their_problem(raw: str, code: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(raw)
    assert caught.value.code == code
    assert words in caught.value.content


def test_errors_keep_the_session_they_were_about() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message('{"type": "text", "engine_session_id": "abc"}')
    assert caught.value.engine_session_id == "abc"


def test_server_messages_carry_type_role_and_timestamp() -> None:
    reply = json.loads(TextReply(content="Hi", audio="UklG").to_json())
    assert reply["type"] == "text" and reply["role"] == "assistant" and reply["audio"] == "UklG"
    assert reply["timestamp"].endswith("+00:00")
    error = parse_server_message(ErrorMessage(content="bad", code="x").to_json())
    assert isinstance(error, ErrorMessage) and error.content == "bad"
