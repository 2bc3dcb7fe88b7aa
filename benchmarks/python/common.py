"""What every Python client of the benchmark shares: the options (the same as the C clients',
benchmarks/bench_common.h), the protocol session, measurements and the result line.

The session (`Session.on_message`) is the same code for every raw WebSocket peer, so they
differ only in their transport: every message is decoded with `json.loads` (bytes or str, after
zlib when compressed), `op` and `t` are read, and for GLOBAL_GUILD_COUNT `d["guilds"]` is counted
and summed. What it wants sent goes to `session.out` (a list of JSON texts) for the peer to send.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import zlib

IDENTIFY = '{"op":1,"t":"identify","d":{"type":"bot","key":"bench-key"}}'
HEARTBEAT = '{"op":10}'


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True)
    p.add_argument("--mode", choices=["stream", "latency", "idle", "scale"], default="stream")
    p.add_argument("--zlib", choices=["none", "msg", "stream"], default="none")
    p.add_argument("--ca")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--conns", type=int, default=500)
    p.add_argument("--secs", type=float, default=None)
    p.add_argument("--pull", action="store_true", help="(C clients only)")
    args = p.parse_args()
    if args.secs is None:
        args.secs = 10.0 if args.mode == "scale" else 1.0
    raise_nofile()
    return args


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def ssl_context(args: argparse.Namespace):
    if not args.url.startswith("wss://"):
        return None
    import ssl

    ctx = ssl.create_default_context(cafile=args.ca)
    return ctx


def inflater(args: argparse.Namespace):
    """A function turning one binary message into its JSON text (bytes)."""
    if args.zlib == "msg":
        return zlib.decompress
    if args.zlib == "stream":
        return zlib.decompressobj().decompress
    return lambda data: data


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def cpu_secs() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def emit(obj: dict) -> None:
    print(json.dumps(obj, separators=(",", ":")), flush=True)


def latency_result(rtts_ns: list[int], pong_sum: int) -> dict:
    n = len(rtts_ns)
    s = sorted(rtts_ns)
    return {
        "count": n,
        "sum": pong_sum,
        "p50_us": round(s[n * 50 // 100] / 1e3, 2) if n else -1,
        "p99_us": round(s[min(n * 99 // 100, n - 1)] / 1e3, 2) if n else -1,
    }


class Session:
    """One gateway connection's protocol state; transport-independent."""

    __slots__ = ("mode", "n", "out", "count", "sum", "acks", "ready", "done", "heartbeat_ms", "rtts", "pong_sum",
                 "ping_ns")

    def __init__(self, mode: str, n: int = 0) -> None:
        self.mode = mode
        self.n = n
        self.out: list[str] = []
        self.count = 0
        self.sum = 0
        self.acks = 0
        self.ready = False
        self.done = False
        self.heartbeat_ms = 45000
        self.rtts: list[int] = []
        self.pong_sum = 0
        self.ping_ns = 0

    def ping(self, seq: int) -> None:
        self.out.append('{"op":1,"t":"bench_ping","d":{"seq":%d}}' % seq)
        self.ping_ns = time.perf_counter_ns()

    def result(self, count: int, total: int) -> None:
        self.out.append('{"op":1,"t":"bench_result","d":{"count":%d,"sum":%d}}' % (count, total))
        self.done = True

    def on_message(self, data) -> None:
        m = json.loads(data)
        op = m["op"]
        if op == 0:
            t = m.get("t")
            if t == "GLOBAL_GUILD_COUNT":
                self.count += 1
                self.sum += m["d"]["guilds"]
            elif t == "bench_pong":
                now = time.perf_counter_ns()
                self.rtts.append(now - self.ping_ns)
                self.pong_sum += m["d"]["seq"]
                if len(self.rtts) < self.n:
                    self.ping(len(self.rtts))
                else:
                    self.result(len(self.rtts), self.pong_sum)
            elif t == "bot_connect_success":
                self.ready = True
                if self.mode == "latency":
                    self.ping(0)
            elif t == "BENCH_END":
                self.result(self.count, self.sum)
        elif op == 11:
            self.acks += 1
        elif op == 5:
            self.heartbeat_ms = m["d"].get("heartbeat", 45000)
            self.out.append(HEARTBEAT)
            self.out.append(IDENTIFY)

    def final(self) -> dict:
        if self.mode == "latency":
            return latency_result(self.rtts, self.pong_sum)
        return {"count": self.count, "sum": self.sum}


def fail(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    sys.exit(1)


async def run_many_async(args, open_one) -> None:
    """idle and scale for the asyncio peers: `args.conns` connections on one event loop, set up
    at most 256 at a time. `open_one(session)` connects, serves the session until it is ready
    (bot_connect_success), leaves a reader task running and returns an async send function.
    One periodic task heartbeats every connection at the interval of Hello."""
    import asyncio

    rss0 = rss_kb()
    gate = asyncio.Semaphore(256)

    async def one():
        s = Session(args.mode)
        async with gate:
            send = await open_one(s)
        return s, send

    pairs = await asyncio.gather(*[one() for _ in range(args.conns)])
    emit({"ready": len(pairs), "rss0_kb": rss0, "rss_kb": rss_kb()})
    cpu0, t0 = cpu_secs(), time.monotonic()
    interval = pairs[0][0].heartbeat_ms / 1000
    beats = 0

    async def beat():
        nonlocal beats
        due = time.monotonic()
        while True:
            due += interval  # a fixed schedule: the time the sends take does not stretch it
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            for _, send in pairs:
                await send(HEARTBEAT)
            beats += len(pairs)

    task = asyncio.create_task(beat())
    await asyncio.sleep(args.secs)
    task.cancel()
    cpu, wall = cpu_secs() - cpu0, time.monotonic() - t0
    emit({"conns": len(pairs), "rss0_kb": rss0, "rss_kb": rss_kb(), "cpu_secs": round(cpu, 4),
          "wall_secs": round(wall, 4), "beats": beats, "acks": sum(s.acks for s, _ in pairs)})
