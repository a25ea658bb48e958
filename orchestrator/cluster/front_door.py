"""The front door's routing, as an HAProxy configuration: `/v1/…` and every other path go
round-robin to any live engine; `/e/<engine_id>/…` (the engine_url an engine hands out with
ENGINE_PUBLIC_URL=<front door>/e/<engine_id>) goes to that engine with the prefix stripped,
and to the other engines while it is down, with the header X-Tutor-Engine naming the engine
the path was for: the engine that receives it takes the student over at once, without waiting
for the dead engine's heartbeat to lapse. Engines are checked on `/health`, which answers 503
while an engine drains.

`python -m orchestrator.cluster.front_door --bind :8080 --resolver 127.0.0.11:53
engine-1=engine-1:9000 …` prints it (deploy/haproxy/haproxy.cfg is made so, for compose).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

RESOLV_CONF = "resolv.conf"
ROUTED_FOR = "x-tutor-engine"  # the engine a request's /e/<engine>/ path named


@dataclass(frozen=True)
class Backend:
    engine_id: str
    address: str  # host:port


def haproxy_config(
    engines: Sequence[Backend],
    bind: str,
    check_interval_ms: int = 500,
    stats: str | None = None,
    resolver: str | None = None,
    maxconn: int = 4096,
) -> str:
    """`bind`: where the front door listens (host:port); `stats`: where HAProxy's own stats
    page listens, if anywhere; `resolver`: a DNS server (host:port) that names the engines while
    they come and go (Docker's is 127.0.0.11:53; RESOLV_CONF: the host's, as in a Kubernetes
    pod); `maxconn`: connections at once (an open WebSocket is one; each takes two files)."""
    servers = "\n".join(f"    server {e.engine_id} {e.address}" for e in engines)
    lines = [
        "# Made by `python -m orchestrator.cluster.front_door`; see orchestrator/cluster/.",
        "global",
        f"    maxconn {maxconn}",
        "",
        "defaults",
        "    mode http",
        "    option forwardfor",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout tunnel 1h  # open WebSockets",
        "    timeout http-keep-alive 10s",
        "    default-server init-addr last,libc,none" + (" resolvers dns" if resolver else ""),
        "",
    ]
    if resolver:
        server = "parse-resolv-conf" if resolver == RESOLV_CONF else f"nameserver dns1 {resolver}"
        lines += ["resolvers dns", f"    {server}", "    hold valid 5s", ""]
    lines += [
        "frontend tutor",
        f"    bind {bind}",
        f"    http-request del-header {ROUTED_FOR}  # only the front door says it",
    ]
    for engine in engines:
        lines.append(f"    use_backend {engine.engine_id} if {{ path_beg /e/{engine.engine_id}/ }}")
    lines += [
        "    default_backend engines",
        "",
        "backend engines",
        "    balance roundrobin",
        "    option redispatch  # a failed connect is retried on another engine",
        "    retries 2",
        "    option httpchk GET /health",
        "    http-check expect status 200",
        f"    default-server check inter {check_interval_ms} fall 2 rise 2",
        servers,
    ]
    for engine in engines:
        lines += [
            "",
            f"backend {engine.engine_id}",
            f"    http-request replace-path /e/{engine.engine_id}(/.*) \\1",
            f"    http-request set-header {ROUTED_FOR} {engine.engine_id}",
            "    balance roundrobin",
            "    option allbackups",
            "    retries 0  # a dead engine's socket fails at once; the client comes back",
        ]
        for other in engines:
            role = "backup track" if other != engine else "track"
            lines.append(
                f"    server {other.engine_id} {other.address} {role} engines/{other.engine_id}"
            )
    if stats:
        lines += ["", "listen stats", f"    bind {stats}", "    stats enable", "    stats uri /"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the front door's HAProxy configuration.")
    parser.add_argument("--bind", default=":8080")
    parser.add_argument("--stats", help="host:port of HAProxy's stats page")
    parser.add_argument(
        "--resolver", help=f"host:port of the DNS server naming the engines, or {RESOLV_CONF}"
    )
    parser.add_argument("engines", nargs="+", help="engine_id=host:port, one per engine")
    args = parser.parse_args(argv)
    engines = []
    for item in args.engines:
        engine_id, sep, address = item.partition("=")
        if not sep or not engine_id or ":" not in address:
            parser.error(f"{item!r}: expected engine_id=host:port")
        engines.append(Backend(engine_id, address))
    print(haproxy_config(engines, args.bind, stats=args.stats, resolver=args.resolver), end="")


if __name__ == "__main__":
    main()
