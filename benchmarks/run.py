#!/usr/bin/env python3
"""The benchmark runner: builds the C programs, runs every client against the load server for
every workload, verifies every run, and writes one table to benchmarks/results.md (and prints
it). See benchmarks/README.md for what is measured and how.

Usage: .venv/bin/python3 benchmarks/run.py [--reps N] [--reps-10k N] [--quick]
                                           [--clients a,b] [--workloads a,b] [--out FILE]
Needs: scripts/bootstrap-bench.sh done, `make release` done (.build/release/libutilbot_gateway.so).
Exit status: 0 when every run that completed was verified; 1 when a client's count or checksum
was wrong (or the suite could not run); a client that cannot do a workload at all (time-out,
error, too many descriptors) is recorded in the table, not an exit failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
BUILD = ROOT / ".build" / "bench"
SO = ROOT / ".build" / "release" / "libutilbot_gateway.so"
VENV_PY = ROOT / ".venv" / "bin" / "python3"


# ------------------------------------------------------------------------------------------- build

CFLAGS = ["-O2", "-g", "-Wall", "-Wextra"]


def sh(cmd: list[str], **kw) -> None:
    r = subprocess.run(cmd, **kw)
    if r.returncode != 0:
        sys.exit(f"run.py: failed: {' '.join(map(str, cmd))}")


def pkg_config(*args: str) -> list[str]:
    out = subprocess.run(["pkg-config", *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"run.py: pkg-config {' '.join(args)} failed; run scripts/bootstrap-bench.sh")
    return out.stdout.split()


def build() -> None:
    if not SO.is_file():
        sys.exit(f"run.py: {SO} is missing: run `make release` first")
    BUILD.mkdir(parents=True, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    inc = ["-I", str(ROOT / "include")]
    ubg = ["-L", str(SO.parent), "-lutilbot_gateway", f"-Wl,-rpath,{SO.parent}", "-lpthread", "-lcjson"]
    targets = {
        "loadserver": (["loadserver.c"], ["-lssl", "-lcrypto", "-lz"]),
        "rusage_exec": (["rusage_exec.c"], []),
        "discard": (["discard.c"], ["-lssl", "-lcrypto"]),
        "baseline": (["baseline.c"], ["-lssl", "-lcrypto", "-lz", "-lcjson"]),
        "ubg_bench": (["ubg_bench.c"], ubg),
        "ubg_ready": (["ubg_ready.c"], ["-ldl", "-lpthread"]),
        "lws_bench": (["lws_bench.c"], pkg_config("--libs", "libwebsockets") + ["-lcjson", "-lz", "-lpthread"]),
    }
    headers = [BENCH / "bench_common.h", BENCH / "ws_raw.h"]
    for name, (srcs, libs) in targets.items():
        out = BUILD / name
        inputs = [BENCH / s for s in srcs] + headers
        if out.exists() and all(out.stat().st_mtime >= p.stat().st_mtime for p in inputs):
            continue
        extra = pkg_config("--cflags", "libwebsockets") if name == "lws_bench" else []
        sh([cc, "-std=gnu11", *CFLAGS, *inc, *extra, *[str(BENCH / s) for s in srcs], "-o", str(out), *libs])
    cert, key = BUILD / "cert.pem", BUILD / "key.pem"
    if not cert.exists() or not key.exists():
        sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "3650", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True)
    stripped = BUILD / "libutilbot_gateway.stripped.so"
    sh(["strip", "--strip-unneeded", "-o", str(stripped), str(SO)])


# ------------------------------------------------------------------------------------ processes

def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class LineReader:
    """Reads a pipe's lines on a thread into a queue."""

    def __init__(self, pipe) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.t = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.t.start()

    def _run(self, pipe) -> None:
        for line in pipe:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def get(self, timeout: float) -> str | None:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError


class Server:
    def __init__(self, args: list[str]) -> None:
        self.log = open(BUILD / "loadserver.stderr", "a")
        self.p = subprocess.Popen([str(BUILD / "loadserver"), *args], stdout=subprocess.PIPE, stderr=self.log,
                                  text=True)
        self.lines = LineReader(self.p.stdout)
        first = self.lines.get(120)
        if first is None:
            sys.exit(f"run.py: the load server did not start ({' '.join(args)}); see {self.log.name}")
        self.info = json.loads(first)
        self.port = self.info["listening"]

    def next(self, key: str, timeout: float) -> dict | None:
        """The next line with `key` (a result or stats object), or None after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(left)
            except TimeoutError:
                return None
            if line is None:
                return None
            obj = json.loads(line)
            if key in obj:
                return obj[key]

    def stats(self) -> dict:
        self.p.send_signal(signal.SIGUSR1)
        s = self.next("stats", 10)
        if s is None:
            raise RuntimeError("the load server did not answer SIGUSR1")
        return s

    def drain(self) -> None:
        while True:
            try:
                if self.lines.q.get_nowait() is None:
                    return
            except queue.Empty:
                return

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


@dataclass
class Run:
    ok: bool
    error: str = ""
    out: list[dict] = field(default_factory=list)  # the client's JSON lines
    server: dict | None = None  # the server's result for this run
    wall: float = 0.0
    cpu: float = 0.0
    maxrss_kb: int = 0
    extra: dict = field(default_factory=dict)


def run_client(cmd: list[str], timeout: float, on_line=None) -> Run:
    """Runs a client; returns its JSON lines, wall time, CPU time and peak RSS (wait4)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "bindings" / "python")
    env.pop("UBG_LIBRARY", None)
    errf = open(BUILD / "client.stderr", "w+")
    ru_file = BUILD / "client.rusage"
    ru_file.unlink(missing_ok=True)
    t0 = time.monotonic()
    # Through rusage_exec (see there): the peak RSS is the client's own, not the runner's.
    p = subprocess.Popen([str(BUILD / "rusage_exec"), str(ru_file), *cmd], stdout=subprocess.PIPE, stderr=errf,
                         text=True, env=env, start_new_session=True)
    lines = LineReader(p.stdout)
    out: list[dict] = []
    timed_out = False
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)
            break
        try:
            line = lines.get(left)
        except TimeoutError:
            continue
        if line is None:
            break
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        out.append(obj)
        if on_line:
            on_line(obj)
    _, status, _ = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    try:
        usage = json.loads(ru_file.read_text())
    except (OSError, ValueError):
        usage = {"cpu_secs": 0.0, "maxrss_kb": 0}
    errf.seek(0)
    err = errf.read().strip().splitlines()
    errf.close()
    r = Run(ok=not timed_out and p.returncode == 0, out=out, wall=wall, cpu=usage["cpu_secs"],
            maxrss_kb=usage["maxrss_kb"])
    if timed_out:
        r.error = f"timed out after {timeout:.0f} s"
    elif p.returncode != 0:
        r.error = f"exit {p.returncode}: " + (err[0][:300] if err else "")
        r.extra["stderr"] = "\n".join(err[-5:])
        r.extra["emfile"] = any("Too many open files" in line for line in err)
    return r


# ------------------------------------------------------------------------------ clients, workloads

@dataclass
class Client:
    key: str
    label: str
    cmd: list[str]
    stream_only: bool = False  # the discard client


def clients(py: str) -> list[Client]:
    pyb = lambda name: [py, str(BENCH / "python" / name)]  # noqa: E731
    return [
        Client("baseline", "C baseline (socket/OpenSSL + cJSON + libz)", [str(BUILD / "baseline")]),
        Client("ubg-c-cb", "this library, C, callbacks (cJSON)", [str(BUILD / "ubg_bench")]),
        Client("ubg-c-pull", "this library, C, pull API (cJSON)", [str(BUILD / "ubg_bench"), "--pull"]),
        Client("ubg-c-scan", "extra: this library, C, callbacks, d hand-scanned (no JSON library)",
               [str(BUILD / "ubg_bench"), "--hand-scan"], stream_only=True),
        Client("ubg-py", "this library, Python binding", pyb("bench_ubg.py")),
        Client("lws", "libwebsockets 4.1, C (cJSON)", [str(BUILD / "lws_bench")]),
        Client("websockets", "Python websockets", pyb("bench_websockets.py")),
        Client("websocket-client", "Python websocket-client", pyb("bench_wsclient.py")),
        Client("picows", "Python picows", pyb("bench_picows.py")),
        Client("aiohttp", "Python aiohttp", pyb("bench_aiohttp.py")),
        Client("discard", "server check: discard client (reads, parses nothing)", [str(BUILD / "discard")],
               stream_only=True),
    ]


@dataclass
class Workload:
    key: str
    title: str
    unit: str
    server: list[str]
    mode: str
    zlib: str = "none"
    tls: bool = False
    conns: int = 0
    secs: float = 0
    n: int = 0
    many: bool = False
    reps: int = 3
    higher_better: bool = True
    # The clients that take part (None: all). The Python peers' idle mode speaks neither TLS
    # nor zlib at once, so the wss+zlib memory figure is for the C clients and this library.
    only: tuple[str, ...] | None = None


def workloads(a: argparse.Namespace) -> list[Workload]:
    small, large, lat = a.small_events, a.large_events, a.latency_n
    ws = [
        Workload("small", "small ws", "k ev/s", ["--workload", "small", "--events", str(small)], "stream"),
        Workload("small_wss", "small wss", "k ev/s", ["--workload", "small", "--events", str(small), "--tls",
                                                       str(BUILD / "cert.pem"), str(BUILD / "key.pem")],
                 "stream", tls=True),
        Workload("small_zmsg", "small zlib/msg", "k ev/s", ["--workload", "small", "--events", str(small),
                                                            "--zlib", "msg"], "stream", zlib="msg"),
        Workload("small_zstream", "small zlib/stream", "k ev/s", ["--workload", "small", "--events", str(small),
                                                                  "--zlib", "stream"], "stream", zlib="stream"),
        Workload("large", "large", "MB/s", ["--workload", "large", "--events", str(large)], "stream"),
        Workload("latency", "latency", "µs", ["--workload", "latency"], "latency", n=lat, higher_better=False),
        Workload("idle_small", f"idle {a.idle_small:,}", "KiB/conn", ["--workload", "idle"], "idle",
                 conns=a.idle_small, secs=1, many=True, higher_better=False),
        Workload("idle_large", f"idle {a.idle_large:,}", "KiB/conn", ["--workload", "idle"], "idle",
                 conns=a.idle_large, secs=1, many=True, reps=a.reps_10k, higher_better=False),
        Workload("idle_wss_zlib", f"idle wss+zlib {a.idle_small:,}", "KiB/conn",
                 ["--workload", "idle", "--zlib", "stream", "--tls", str(BUILD / "cert.pem"), str(BUILD / "key.pem")],
                 "idle", zlib="stream", tls=True, conns=a.idle_small, secs=1, many=True, higher_better=False,
                 only=("baseline", "ubg-c-cb", "ubg-c-pull", "ubg-py", "lws")),
        Workload("scale", f"scale {a.scale_conns:,}", "% CPU", ["--workload", "scale"], "scale",
                 conns=a.scale_conns, secs=a.scale_secs, many=True, reps=a.reps_10k, higher_better=False),
    ]
    for w in ws:
        if w.key not in ("idle_large", "scale"):
            w.reps = a.reps
    return ws


def client_args(w: Workload, port: int, conns: int) -> list[str]:
    scheme = "wss" if w.tls else "ws"
    url = f"{scheme}://127.0.0.1:{port}/?v=1" + ("&compression=zlib" if w.zlib != "none" else "")
    args = ["--url", url, "--mode", w.mode, "--zlib", w.zlib]
    if w.tls:
        args += ["--ca", str(BUILD / "cert.pem")]
    if w.mode == "latency":
        args += ["--n", str(w.n)]
    if w.many:
        args += ["--conns", str(conns), "--secs", str(w.secs)]
    return args


# ------------------------------------------------------------------------------------- measuring

class Failure(Exception):
    pass


def measure(w: Workload, c: Client, srv: Server, conns: int) -> Run:
    """One run of client c on workload w; returns the run with r.extra["value"] (and p99)."""
    cmd = c.cmd + client_args(w, srv.port, conns)
    if not w.many:
        r = run_client(cmd, timeout=240)
        if not r.ok:
            return r
        res = srv.next("result", 10)
        r.server = res
        if res is None:
            r.ok, r.error = False, "the server recorded no result"
            return r
        if res.get("discard"):
            secs = res["secs"]
        else:
            if res["ok"] is not True:
                r.ok = False
                r.error = (f"VERIFICATION FAILED: count {res['count']} sum {res['sum']}, expected "
                           f"{res['expected_count']} / {res['expected_sum']}")
                r.extra["mismatch"] = True
                return r
            secs = res["secs"]
        if w.mode == "latency":
            last = r.out[-1]
            r.extra["value"], r.extra["p99"] = last["p50_us"], last["p99_us"]
        elif w.unit == "MB/s":
            r.extra["value"] = srv.info["payload_bytes"] / secs / 1e6
        else:
            r.extra["value"] = srv.info["events"] / secs / 1e3
        r.extra["secs"] = secs
        return r

    # idle / scale: server counters at the client's "ready" line and at its final line
    snaps: dict[str, dict] = {}
    before = srv.stats()

    def on_line(obj: dict) -> None:
        if "ready" in obj:
            snaps["ready"] = srv.stats()
        elif "conns" in obj:
            snaps["end"] = srv.stats()

    r = run_client(cmd, timeout=240 + w.secs, on_line=on_line)
    final = next((o for o in reversed(r.out) if "conns" in o), None)
    if r.ok and final is None:
        r.ok, r.error = False, "no result line"
    if not r.ok:
        return r
    ident = snaps.get("ready", {}).get("identified", 0) - before["identified"]
    if ident < conns:
        r.ok, r.error = False, f"the server saw {ident} of {conns} connections identified"
        return r
    if w.mode == "idle":
        r.extra["value"] = (final["rss_kb"] - final["rss0_kb"]) / conns
        r.extra["rss_mib"] = final["rss_kb"] / 1024
    else:
        beats = snaps["end"]["heartbeats"] - snaps["ready"]["heartbeats"]
        span = snaps["end"]["time"] - snaps["ready"]["time"]
        rate = beats / conns / span if span > 0 else 0
        r.extra["beat_rate"] = rate
        # A periodic timer started at "ready" fits secs-1 beats in the window: allow for that. A
        # client below it could not keep up: its figure is kept and flagged.
        r.extra["slow"] = rate < (span - 1.5) / span
        r.extra["value"] = final["cpu_secs"] / final["wall_secs"] * 100
    return r


# -------------------------------------------------------------------------------------- the table

def fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(v: float | None, base: float | None, note: str = "") -> str:
    if v is None:
        return note or "–"
    ratio = f" ({v / base:.2f}×)" if base else ""
    if base == 0 and v is not None:
        ratio = ""
    return f"{fmt(v)}{ratio}{note}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3, help="runs per figure, best kept (default 3)")
    ap.add_argument("--reps-10k", type=int, default=1,
                    help="runs per figure for the 10,000-connection workloads (default 1, to fit 15 minutes)")
    ap.add_argument("--quick", action="store_true", help="smaller workloads and 1 run: for trying the harness")
    ap.add_argument("--clients", help="comma-separated client keys (default: all)")
    ap.add_argument("--workloads", help="comma-separated workload keys (default: all)")
    ap.add_argument("--out", default=str(BENCH / "results.md"))
    ap.add_argument("--small-events", type=int, default=200000)
    ap.add_argument("--large-events", type=int, default=2000)
    ap.add_argument("--latency-n", type=int, default=20000)
    ap.add_argument("--idle-small", type=int, default=500)
    ap.add_argument("--idle-large", type=int, default=10000)
    ap.add_argument("--scale-conns", type=int, default=10000)
    ap.add_argument("--scale-secs", type=float, default=10)
    a = ap.parse_args()
    if a.quick:
        a.reps, a.reps_10k = 1, 1
        a.small_events, a.large_events, a.latency_n = 50000, 500, 5000
        a.idle_large, a.scale_conns, a.scale_secs = 2000, 2000, 5
    t_start = time.monotonic()
    hard = raise_nofile()
    build()
    py = str(VENV_PY if VENV_PY.exists() else sys.executable)
    cl = clients(py)
    if a.clients:
        keep = set(a.clients.split(",")) | {"baseline"}
        cl = [c for c in cl if c.key in keep]
    wl = workloads(a)
    if a.workloads:
        keep = set(a.workloads.split(","))
        wl = [w for w in wl if w.key in keep]
    # Descriptors: the hard limit bounds the connections a client can hold (this library keeps
    # one per connection, two when the host asks for the pull queue's eventfd, as the pull
    # client does to wait on all of them with epoll).
    fd_cap = hard - 200

    results: dict[tuple[str, str], dict] = {}
    failures: list[str] = []
    mismatches = 0
    details: dict[tuple[str, str], Run] = {}
    prebuild: dict[str, float] = {}
    for w in wl:
        srv = Server(w.server)
        prebuild[w.key] = srv.info.get("build_secs", 0)
        print(f"== {w.title} ({' '.join(w.server[:2])}, server built the workload in {prebuild[w.key]:.2f} s)",
              flush=True)
        runs: dict[str, list[Run]] = {c.key: [] for c in cl}
        conns_of: dict[str, int] = {}
        for rep in range(w.reps):
            for c in cl:
                if c.stream_only and w.mode != "stream" or w.only is not None and c.key not in w.only:
                    continue
                prev = runs[c.key]
                if prev and not prev[-1].ok and not prev[-1].extra.get("retryable"):
                    continue  # it failed for good: do not spend the time again
                conns = conns_of.get(c.key, w.conns)
                srv.drain()
                r = measure(w, c, srv, conns)
                if not r.ok and r.extra.get("emfile") and w.many and conns > fd_cap // 2 \
                        and conns_of.get(c.key) is None:
                    # Possibly out of descriptors: retry once with as many as two per connection allow.
                    fallback = fd_cap // 2
                    print(f"   {c.key}: {r.error}; retrying with {fallback} connections", flush=True)
                    r.extra["first_error"] = r.error
                    conns_of[c.key] = fallback
                    r2 = measure(w, c, srv, fallback)
                    r2.extra["first_error"] = r.error
                    r2.extra["fallback"] = fallback
                    r = r2
                conns_of.setdefault(c.key, conns)
                if r.extra.get("mismatch"):
                    mismatches += 1
                runs[c.key].append(r)
                v = r.extra.get("value")
                shown = f"{fmt(v)} {w.unit}" if v is not None else r.error
                if "beat_rate" in r.extra:
                    shown += f", {r.extra['beat_rate']:.2f} beats/conn/s at the server"
                if w.mode == "latency" and r.ok:
                    shown = f"p50 {r.extra['value']} µs, p99 {r.extra['p99']} µs"
                print(f"   [{rep + 1}/{w.reps}] {c.key:17s} {shown}  (wall {r.wall:.2f} s, cpu {r.cpu:.2f} s, "
                      f"peak rss {r.maxrss_kb / 1024:.1f} MiB)", flush=True)
        srv.stop()
        for c in cl:
            good = [r for r in runs[c.key] if r.ok]
            if not runs[c.key]:
                continue
            if not good:
                last = runs[c.key][-1]
                failures.append(f"{c.label}, {w.title}: {last.error}"
                                + (f" (first try: {last.extra['first_error']})" if "first_error" in last.extra else ""))
                results[(c.key, w.key)] = {"fail": True}
                details[(c.key, w.key)] = last
                continue
            pick = max if w.higher_better else min
            best = pick(good, key=lambda r: r.extra["value"])
            entry = {"value": best.extra["value"], "n": len(good)}
            if w.mode == "latency":
                entry["p99"] = min(r.extra["p99"] for r in good)
            if best.extra.get("slow"):
                entry["slow"] = best.extra["beat_rate"]
            if "fallback" in best.extra:
                entry["fallback"] = best.extra["fallback"]
                failures.append(f"{c.label}, {w.title}: {best.extra['first_error']}; measured with "
                                f"{best.extra['fallback']} connections instead")
            results[(c.key, w.key)] = entry
            details[(c.key, w.key)] = best

    # ready time and library size
    ready = {}
    for tls in (False, True):
        srv = Server(["--workload", "idle"] + (["--tls", str(BUILD / "cert.pem"), str(BUILD / "key.pem")]
                                               if tls else []))
        url = f"{'wss' if tls else 'ws'}://127.0.0.1:{srv.port}/?v=1"
        best = None
        for _ in range(3):
            r = run_client([str(BUILD / "ubg_ready"), str(BUILD / "libutilbot_gateway.stripped.so"), "--url", url]
                           + (["--ca", str(BUILD / "cert.pem")] if tls else []), timeout=30)
            if r.ok and r.out:
                v = r.out[-1]
                best = v if best is None or v["ready_us"] < best["ready_us"] else best
        srv.stop()
        ready["wss" if tls else "ws"] = best
    so_size = (BUILD / "libutilbot_gateway.stripped.so").stat().st_size
    elapsed = time.monotonic() - t_start

    md = render(a, cl, wl, results, details, failures, ready, so_size, elapsed, prebuild)
    Path(a.out).write_text(md)
    print()
    print(md)
    print(f"run.py: wrote {a.out} in {elapsed:.0f} s")
    if mismatches:
        print(f"run.py: {mismatches} run(s) returned a wrong count or checksum", file=sys.stderr)
        return 1
    return 0


def render(a, cl, wl, results, details, failures, ready, so_size, elapsed, prebuild) -> str:
    base = "baseline"
    lines = []
    lines.append("# Benchmark results")
    lines.append("")
    lines.append(f"Generated by `benchmarks/run.py` ({time.strftime('%Y-%m-%d %H:%M')}, {elapsed:.0f} s in all) on "
                 f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
                 f"{platform.python_version()}. Loopback; one load server (C, epoll, every frame prebuilt).")
    lines.append("")
    reps_note = (f"best of {a.reps} runs; the {a.idle_large:,}-connection idle and the scale workloads: best of "
                 f"{a.reps_10k}")
    scaled = []
    if a.small_events != 200000:
        scaled.append(f"small = {a.small_events:,} events")
    if a.large_events != 2000:
        scaled.append(f"large = {a.large_events:,} events")
    if a.latency_n != 20000:
        scaled.append(f"latency = {a.latency_n:,} round trips")
    if a.scale_secs != 10 or a.scale_conns != 10000 or a.idle_large != 10000:
        scaled.append(f"idle {a.idle_large:,}, scale {a.scale_conns:,} connections for {a.scale_secs:g} s")
    lines.append(f"**Every figure is followed by its ratio to the C baseline of the same run** ({reps_note}"
                 + (f"; SCALED DOWN: {', '.join(scaled)}" if scaled else "") + "). Throughput: higher is better "
                 "(ratio > 1 beats the baseline); latency, memory and CPU: lower is better (ratio < 1 beats it).")
    lines.append("")
    head = ["client"]
    for w in wl:
        if w.mode == "latency":
            head += ["latency p50 µs", "latency p99 µs"]
        else:
            head.append(f"{w.title} {w.unit}")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for c in cl:
        row = [c.label]
        for w in wl:
            e = results.get((c.key, w.key))
            b = results.get((base, w.key))
            bv = b.get("value") if b and not b.get("fail") else None
            if e is None:
                row += ["–"] * (2 if w.mode == "latency" else 1)
                continue
            if e.get("fail"):
                row += ["FAILED¹"] * (2 if w.mode == "latency" else 1)
                continue
            note = f" ²{e['fallback']:,}" if "fallback" in e else ""
            if "slow" in e:
                note += f" ³{e['slow']:.2f}/s"
            row.append(cell(e["value"], bv, note))
            if w.mode == "latency":
                row.append(cell(e["p99"], b.get("p99") if b and not b.get("fail") else None))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("¹ see *Could not run as specified* below. ² measured with that many connections instead (descriptor limit). "
                 "³ could not keep up: only that many heartbeats per connection per second reached the server "
                 "(1 expected).")
    lines.append("")
    lines.append("## This library")
    lines.append("")
    lines.append(f"- Stripped `libutilbot_gateway.so` (`strip --strip-unneeded`): {so_size:,} bytes "
                 f"({so_size / 1048576:.2f} MiB).")
    for k in ("ws", "wss"):
        v = ready.get(k)
        if v:
            lines.append(f"- dlopen to a connected, identified client (READY), {k}, fresh process, best of 3: "
                         f"{v['ready_us'] / 1000:.2f} ms (dlopen itself {v['dlopen_us'] / 1000:.2f} ms).")
        else:
            lines.append(f"- dlopen to READY, {k}: could not be measured.")
    lines.append("")
    # server check
    lines.append("## The load server is not the bottleneck")
    lines.append("")
    lines.append("The discard client reads the same bytes and parses nothing (its row above). For each stream "
                 "workload, its throughput over the best real client's:")
    lines.append("")
    for w in wl:
        if w.mode != "stream":
            continue
        d = results.get(("discard", w.key))
        others = [results[(c.key, w.key)]["value"] for c in cl
                  if c.key != "discard" and (c.key, w.key) in results and not results[(c.key, w.key)].get("fail")]
        if d and not d.get("fail") and others:
            lines.append(f"- {w.title}: discard {fmt(d['value'])} {w.unit}, best client {fmt(max(others))} "
                         f"{w.unit}: {d['value'] / max(others):.1f}× headroom.")
    lines.append(f"- The server prebuilt each workload before accepting (small: {prebuild.get('small', 0):.2f} s, "
                 f"zlib/msg {prebuild.get('small_zmsg', 0):.2f} s, large {prebuild.get('large', 0):.2f} s).")
    lines.append("")
    lines.append("## Client process cost of the best run (wall time, CPU time user+system, peak RSS)")
    lines.append("")
    head = ["client"] + [w.title for w in wl]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for c in cl:
        row = [c.label]
        for w in wl:
            r = details.get((c.key, w.key))
            if r is None or not r.ok:
                row.append("–")
            else:
                row.append(f"{r.wall:.2f} s, {r.cpu:.2f} s, {r.maxrss_kb / 1024:.0f} MiB")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if failures:
        lines.append("## Could not run as specified")
        lines.append("")
        for f in failures:
            lines.append(f"- {f}")
        lines.append("")
    lines.append("## How it is measured")
    lines.append("")
    lines.append(METHOD)
    return "\n".join(lines) + "\n"


METHOD = """\
- Throughput (small, wss, zlib, large): the load server times each connection from the client's identify to
  its `bench_result`, so process start-up is left out and every client is timed the same way; events/s =
  events / that time, MB/s = uncompressed JSON payload bytes / that time (10^6 bytes). Each client parses every
  message (cJSON in C, `json.loads` in the Python peers; this library validates every message itself and
  hands `d` on, which its C client parses with cJSON and the binding with the json module's C scanner) and
  returns the count and the sum of `d.guilds`; the server checks both against what it sent (a wrong one fails
  the run and `run.py` exits 1).
- small: 200,000 GLOBAL_GUILD_COUNT events of about 108 bytes; wss: the same over TLS (the server's
  self-signed certificate, verified); zlib/msg: every message its own zlib stream; zlib/stream: one zlib
  stream per connection with a sync flush per message (binary frames). large: 2,000 events of about 64 KiB.
- Latency: 20,000 sequential round trips of an application event (`bench_ping` op 1 → `bench_pong` op 0,
  answered at once by the server), timed by the client from before its send to after it has the parsed
  answer; p50 and p99 (each the best of the runs). This library sends heartbeats by itself and exposes no way to send one on demand, so a
  client event measures the same path (send, server, receive, parse) for every client.
- Idle: memory per connection = (RSS with N identified, idle connections − RSS with none, in the same
  process after its set-up) / N, read from /proc/self/status after 1 s. Idle wss+zlib: the same over TLS with
  compression=zlib (one zlib stream per connection), for the C clients and this library; a dash: the Python
  peers' idle mode does not speak TLS and zlib together.
- Scale: N connections on one event loop, heartbeating every second (the interval of Hello); % CPU = CPU
  time of the whole client process (every thread, getrusage) / wall time over the window; the server checks
  that about one heartbeat per connection per second arrived.
- Clients: this library from C (`d` parsed with cJSON, after the library's own validation of every
  message) in callback and pull mode, plus an extra row whose C client finds `d.guilds` by a hand-written scan
  of `d` (no JSON library: not what a real bot does, shown only to separate the library's cost from cJSON's),
  and from Python (the binding's `client.events()`, `event.data["guilds"]`); libwebsockets 4.1 and the
  baseline parse with cJSON; the Python
  peers with `json.loads` per message (websocket-client with `skip_utf8_validation=True`: its default check is a
  pure-Python loop over every byte, and str decoding validates UTF-8 anyway). Set-up time (connect, TLS,
  upgrade, identify) is in no figure but the dlopen-to-READY time.
- Descriptors: the hard limit here is 20,000 (RLIMIT_NOFILE cannot be raised without CAP_SYS_RESOURCE). This
  library uses one per client, and a second (the pull queue's eventfd) only when the host asks for it: the pull
  client does, to wait on all clients with epoll, so at 10,000 clients it runs out and is measured with 9,900.
"""


if __name__ == "__main__":
    sys.exit(main())
