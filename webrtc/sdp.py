"""What an offer or a trickled candidate must look like before aiortc sees it.

aiortc accepts some broken SDP and fails later, deep inside ICE or DTLS (a port of 99999, an
address of 999.999.999.999, a fingerprint that is not one): such input is refused here, with a
message that says what is wrong.
"""

from __future__ import annotations

import ipaddress
import re

FINGERPRINT_BYTES = {"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}
_HEX_PAIRS = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*$")


class SdpError(ValueError):
    """Why an offer or candidate cannot be used."""


def _port(value: str, what: str, lowest: int = 0) -> int:
    if not value.isdigit() or not lowest <= int(value) <= 65535:
        raise SdpError(f"{what} port {value!r} is not a port ({lowest}–65535)")
    return int(value)


def _address(value: str, what: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError as error:
        raise SdpError(f"{what} address {value!r} is not an IP address") from error


def check_offer(sdp: str) -> None:
    """Ports, connection addresses, fingerprints and candidates of an offer, or SdpError."""
    fingerprints = 0
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            fields = line[2:].split()
            if len(fields) < 4:
                raise SdpError(f"media line {line!r} needs: media port protocol formats")
            _port(fields[1].split("/")[0], "media")
        elif line.startswith("c="):
            fields = line[2:].split()
            if len(fields) != 3 or fields[0] != "IN" or fields[1] not in ("IP4", "IP6"):
                raise SdpError(f"connection line {line!r} needs: IN IP4|IP6 address")
            _address(fields[2].split("/")[0], "connection")
        elif line.startswith("a=fingerprint:"):
            fingerprints += 1
            check_fingerprint(line.removeprefix("a=fingerprint:"))
        elif line.startswith("a=candidate:"):
            check_candidate(line.removeprefix("a="))
    if not fingerprints:
        raise SdpError("the offer has no DTLS fingerprint")


def check_fingerprint(value: str) -> None:
    algorithm, _, digest = value.strip().partition(" ")
    size = FINGERPRINT_BYTES.get(algorithm.lower())
    if size is None:
        raise SdpError(
            f"fingerprint algorithm {algorithm!r} is not one of {list(FINGERPRINT_BYTES)}"
        )
    if not _HEX_PAIRS.match(digest) or len(digest.split(":")) != size:
        raise SdpError(f"the {algorithm} fingerprint is not {size} hexadecimal bytes")


def check_candidate(candidate: str) -> None:
    """`candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>…`"""
    fields = candidate.removeprefix("candidate:").split()
    if len(fields) < 8 or fields[6] != "typ":
        raise SdpError(
            "an ICE candidate needs: foundation component transport priority address port typ type"
        )
    if not fields[1].isdigit() or not fields[3].isdigit():
        raise SdpError("an ICE candidate's component and priority are numbers")
    _port(fields[5], "candidate", lowest=0 if fields[2].lower() == "tcp" else 1)
    if not fields[4].endswith(".local"):
        _address(fields[4], "candidate")
