"""Several engines against one Triton on this machine: what placement, Redis and the front door
cost, what one, two and three engines serve, and how long a student waits when their engine
dies.

    .venv/bin/python -m benchmarks.scale_out [--engines 1,2,3] [--students 8] [--seconds 20]
        [--streams 4] [--failovers 3]

It starts Triton (`python -m triton_ops.server`), Debian's redis-server, the engines and HAProxy
itself, on loopback (in a namespace holding only loopback, where it may). This machine has two
cores: the numbers show overhead and correctness, not capacity (every engine and Triton share
the same two cores). Results: benchmarks/results/scale_out.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import RESULTS, rerun_in_loopback, summary_ms, triton_server
from benchmarks.harness.cluster import Cluster, Student, tutors_with_llm
from benchmarks.harness.fake_llm import FakeLLM
from benchmarks.harness.processes import EngineProcess, create_session
from benchmarks.harness.webrtc_client import LiveClient
from benchmarks.reply_latency import QUESTIONS
from benchmarks.webrtc_load import tree_cpu_seconds

QUICK, EMBEDDED = 40, 1  # the fake LLM's tutor (no knowledge base); the shipped science tutor


async def create_sessions(base_url: str, prefix: str, count: int) -> list[float]:
    """Seconds each `POST /v1/sessions` took, one new student at a time."""
    took = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for i in range(count):
            started = time.perf_counter()
            response = await http.post(
                "/v1/sessions", json={"tutor_id": QUICK, "student_id": f"{prefix}{i}"}
            )
            took.append(time.perf_counter() - started)
            response.raise_for_status()
    return took


def new_student(base_url: str, student_id: str, tutor_id: int) -> Student:
    session = create_session(base_url, tutor_id, student_id, timeout_s=30)
    return Student(session["engine_url"], session["engine_token"])


async def sequential_replies(student: Student, count: int) -> list[float]:
    """Seconds from a `text` message to its spoken reply, one after another (after a warm-up)."""
    await student.ask(type="text", content="Hello!")
    took = []
    for i in range(count):
        started = time.perf_counter()
        answer = await student.ask(type="text", content=f"Question {i}?")
        assert answer["type"] == "text", answer
        took.append(time.perf_counter() - started)
    return took


async def throughput(cluster: Cluster, students: int, seconds: float) -> dict[str, Any]:
    """`students` students asking one question after another (a tutor on the fake LLM: one
    sentence to speak, so the engines' and Triton's own work is what is measured); a `busy`
    answer is retried after half a second, as a client would."""
    askers = [
        new_student(cluster.base_url, f"load{len(cluster.engines)}-{i}", QUICK)
        for i in range(students)
    ]
    await asyncio.gather(*(a.ask(type="text", content="Hello!") for a in askers))
    latencies: list[float] = []
    errors = busy = 0
    deadline = time.monotonic() + seconds

    async def keep_asking(asker: Student, offset: int) -> None:
        nonlocal errors, busy
        n = offset
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = await asker.ask(type="text", content=QUESTIONS[n % len(QUESTIONS)])
            n += 1
            if answer["type"] == "text":
                latencies.append(time.perf_counter() - started)
            elif answer.get("code") == "busy":
                busy += 1
                await asyncio.sleep(0.5)
            else:
                errors += 1

    started = time.monotonic()
    await asyncio.gather(*(keep_asking(a, i) for i, a in enumerate(askers)))
    elapsed = time.monotonic() - started
    spread: dict[str, int] = {}
    for asker in askers:
        spread[asker.engine] = spread.get(asker.engine, 0) + 1
    return {
        "replies_per_s": round(len(latencies) / elapsed, 2),
        "latency": summary_ms(latencies),
        "errors": errors,
        "busy": busy,
        "students_per_engine": dict(sorted(spread.items())),
    }


async def live_streams(cluster: Cluster, streams: int, window_s: float = 8.0) -> dict[str, Any]:
    """`streams` idle live streams (WebRTC, the drawn avatar) through placement: the frame rate
    the students receive and the engines' CPU."""
    clients: list[LiveClient] = []
    sockets = []
    try:
        for i in range(streams):
            user = f"live{len(cluster.engines)}-{i}"
            session = new_student(cluster.base_url, user, EMBEDDED)
            socket = Student(session.url.rsplit("/", 1)[0] + f"/user_{user}", session.token)
            client = LiveClient()
            ws, answer = await socket.open(
                type="webrtc_offer", sdp=await client.offer(), user_id=user
            )
            await client.answered(answer)
            clients.append(client)
            sockets.append(ws)
        await asyncio.sleep(3.0)
        pids = [e.process.pid for e in cluster.engines.values() if e.process is not None]
        cpu_before = sum(tree_cpu_seconds(pid) for pid in pids)
        started = time.monotonic()
        await asyncio.sleep(window_s)
        elapsed = time.monotonic() - started
        cores = (sum(tree_cpu_seconds(pid) for pid in pids) - cpu_before) / elapsed
        fps = [len([r for r in c.video if r.arrived >= started]) / elapsed for c in clients]
    finally:
        for ws in sockets:
            await ws.close()
        for client in clients:
            await client.close()
    return {
        "streams": streams,
        "fps_min": round(min(fps), 1),
        "fps_mean": round(sum(fps) / len(fps), 1),
        "engine_cores": round(cores, 3),
        "engine_cores_per_stream": round(cores / streams, 3),
    }


async def failovers(cluster: Cluster, trials: int) -> list[dict[str, Any]]:
    """A student's engine is killed (SIGKILL) between two questions: seconds from the kill to
    the next spoken reply (reconnect, placement on a live engine, history from Redis)."""
    results = []
    for trial in range(trials):
        student = new_student(cluster.base_url, f"failover{trial}", QUICK)
        await student.ask(type="text", content="Before.")
        victim = student.engine
        killed = time.perf_counter()
        cluster.kill(victim)
        answer = await student.ask(timeout_s=60, type="text", content="After?")
        took = time.perf_counter() - killed
        assert answer["type"] == "text", answer
        results.append({"killed": victim, "talking_again_s": round(took, 2)})
        await asyncio.to_thread(cluster.engines[victim].start)
        await asyncio.to_thread(cluster.wait_up, set(cluster.engines))
    return results


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"engines": {}, "machine": "2 cores (this VM); one Triton, CPU"}
    llm = FakeLLM(reply="Plants make sugar from light.").start()
    try:
        async with triton_server() as triton_url:
            with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
                root = Path(scratch)
                tutors = tutors_with_llm(root, llm.base_url)
                env = {"ENGINE_TUTORS_FILE": str(tutors)}
                single = EngineProcess(
                    root / "single",
                    env={"ENGINE_TRITON_URL": triton_url, "ENGINE_KEEP_WARM_S": "0", **env},
                ).start()
                try:
                    base = single.base_url
                    report["single"] = {
                        "create_session": summary_ms(await create_sessions(base, "alone", 100)),
                        "reply": summary_ms(
                            await sequential_replies(new_student(base, "alone-r", QUICK), 30)
                        ),
                    }
                finally:
                    single.stop()
                for size in args.engines:
                    cluster = Cluster(root / f"cluster{size}", triton_url, size, env=env)
                    await asyncio.to_thread(cluster.start)
                    try:
                        result: dict[str, Any] = {
                            "create_session": summary_ms(
                                await create_sessions(cluster.base_url, f"c{size}-", 100)
                            )
                        }
                        if size == 1:
                            through = new_student(cluster.base_url, "redis-r", QUICK)
                            result["reply_through_front_door"] = summary_ms(
                                await sequential_replies(through, 30)
                            )
                            engine = next(iter(cluster.engines.values()))
                            direct = Student(
                                through.url.replace(
                                    through.url.split("/ws/")[0],
                                    engine.base_url.replace("http://", "ws://"),
                                ),
                                through.token,
                            )
                            result["reply_direct"] = summary_ms(
                                await sequential_replies(direct, 30)
                            )
                        result["throughput"] = await throughput(
                            cluster, args.students, args.seconds
                        )
                        result["live"] = await live_streams(cluster, args.streams)
                        if size == max(args.engines) and size > 1 and args.failovers:
                            result["failover"] = await failovers(cluster, args.failovers)
                        report["engines"][str(size)] = result
                    finally:
                        await asyncio.to_thread(cluster.stop)
    finally:
        llm.stop()
    return report


def markdown(report: dict[str, Any]) -> str:
    single = report["single"]
    lines = [
        "# Scale-out: engines behind the front door, one Triton",
        "",
        f"Machine: {report['machine']}. Every engine, Triton, Redis, HAProxy and the clients "
        "share its two cores: this shows what the parts cost, not capacity.",
        "",
        "## Placement and what Redis adds to a reply",
        "",
        "| | create a session (p50 / p99 ms) | reply, tutor on a fake LLM (p50 / p90 ms) |",
        "| --- | --- | --- |",
        f"| one engine, no Redis | {single['create_session']['p50_ms']} / "
        f"{single['create_session']['p99_ms']} | {single['reply']['p50_ms']} / "
        f"{single['reply']['p90_ms']} |",
    ]
    one = report["engines"].get("1")
    if one:
        lines += [
            f"| 1 engine + Redis, direct | – | {one['reply_direct']['p50_ms']} / "
            f"{one['reply_direct']['p90_ms']} |",
            f"| 1 engine + Redis, through HAProxy | {one['create_session']['p50_ms']} / "
            f"{one['create_session']['p99_ms']} | {one['reply_through_front_door']['p50_ms']} / "
            f"{one['reply_through_front_door']['p90_ms']} |",
        ]
    lines += [
        "",
        "## One, two and three engines",
        "",
        "| engines | create a session p50 / p99 ms | replies/s | reply p50 / p90 ms "
        "| errors / busy | students per engine | live streams: fps min / mean "
        "| engine cores per stream |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, result in report["engines"].items():
        t, live = result["throughput"], result["live"]
        lines.append(
            f"| {size} | {result['create_session']['p50_ms']} / "
            f"{result['create_session']['p99_ms']} | {t['replies_per_s']} | "
            f"{t['latency']['p50_ms']} / {t['latency']['p90_ms']} | {t['errors']} / {t['busy']} | "
            f"{t['students_per_engine']} | {live['fps_min']} / {live['fps_mean']} | "
            f"{live['engine_cores_per_stream']} |"
        )
    for size, result in report["engines"].items():
        if "failover" in result:
            times = [f["talking_again_s"] for f in result["failover"]]
            lines += [
                "",
                f"## Failover ({size} engines)",
                "",
                "An engine killed (SIGKILL) between a student's questions; seconds until the "
                f"student's next reply: {', '.join(map(str, times))}.",
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engines", default="1,2,3", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args()
    if rerun_in_loopback("benchmarks.scale_out"):
        return
    report = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale_out.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "scale_out.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
