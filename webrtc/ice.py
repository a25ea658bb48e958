"""ICE plumbing: which host addresses we offer, and which remote candidates we accept."""

from __future__ import annotations

import ipaddress
import re

import aioice.ice

_CANDIDATE_LINE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ", re.IGNORECASE)


def restrict_host_addresses(addresses: list[str]) -> None:
    """Gather host candidates on exactly these addresses.

    aioice lists every interface but skips 127.0.0.1, so a single-host deployment (or a test
    inside a loopback-only network namespace) gathers nothing. With a list, ICE uses it as
    given — e.g. ["127.0.0.1"]. Process-wide: aioice reads this function at gathering time.
    """
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def loopback_if_alone() -> list[str] | None:
    """["127.0.0.1"] on a host (a container, a network namespace) whose only interface is
    loopback, where ICE would otherwise gather no candidate at all and media never flows."""
    if aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True):
        return None
    return ["127.0.0.1"]


def acceptable(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """A remote candidate we may send to: never an mDNS name (aiortc cannot resolve it, and
    waiting for it stalls the answer), and inside `networks` when any are configured."""
    if address.endswith(".local"):
        return False
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def filter_sdp(sdp: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The offer without the candidates we may not or cannot use."""
    lines = []
    for line in sdp.splitlines():
        match = _CANDIDATE_LINE.match(line)
        if match and not acceptable(match.group(1), networks):
            continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"
