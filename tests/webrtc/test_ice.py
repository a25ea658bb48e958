import ipaddress

from webrtc.ice import acceptable, filter_sdp

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
OFFER = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50001 typ host generation 0",
        "a=candidate:2 1 udp 2122260223 4f2a1d6e-8f0b-4a4b-9c4e-1f2a3b4c5d6e.local 50002 typ host",
        "a=candidate:3 1 udp 2122260223 10.1.2.3 50003 typ host generation 0",
        "a=end-of-candidates",
    ]
)


def test_mdns_names_are_never_used() -> None:
    assert not acceptable("4f2a1d6e.local", [])
    assert acceptable("10.1.2.3", [])  # no networks configured: any address


def test_only_allowed_networks_are_kept() -> None:
    kept = filter_sdp(OFFER, LOOPBACK)
    assert "127.0.0.1 50001" in kept
    assert ".local" not in kept and "10.1.2.3" not in kept
    assert "m=audio" in kept and "a=end-of-candidates" in kept
    assert kept.endswith("\r\n")
