"""This library's Python binding (utilbot_gateway.Client, ctypes, the pull API) as a gateway
client: events pulled with `client.events()`, each GLOBAL_GUILD_COUNT decoded with
`event.data["guilds"]` (d decoded by the binding on first access, with the json module's C scanner). idle and scale:
every client on the library's default loop (one I/O thread, which also heartbeats); this
thread waits on the clients' event descriptors with selectors and pulls what comes."""

import selectors
import time

from utilbot_gateway import Client, EventType

from common import cpu_secs, emit, fail, latency_result, parse_args, rss_kb

DISPATCH, READY, CLOSED, ERROR, FATAL = (EventType.DISPATCH, EventType.READY, EventType.CLOSED, EventType.ERROR,
                                         EventType.FATAL)


def make(args):
    compression = "zlib" if "compression=zlib" in args.url else None
    return Client("bench-key", url=args.url, ca_file=args.ca, compression=compression)


def single(args):
    count = total = 0
    rtts, pong_sum, ping_ns, done = [], 0, 0, False
    latency = args.mode == "latency"
    perf = time.perf_counter_ns
    with make(args) as client:
        client.connect()
        for event in client.events():
            t = event.type
            if t is DISPATCH:
                name = event.name
                if name == "GLOBAL_GUILD_COUNT":
                    count += 1
                    total += event.data["guilds"]
                elif name == "bench_pong":
                    rtts.append(perf() - ping_ns)
                    pong_sum += event.data["seq"]
                    if len(rtts) < args.n:
                        ping_ns = perf()
                        client.send("bench_ping", {"seq": len(rtts)})
                    else:
                        client.send("bench_result", {"count": len(rtts), "sum": pong_sum})
                        client.close()
                        done = True
                elif name == "BENCH_END":
                    client.send("bench_result", {"count": count, "sum": total})
                    client.close()
                    done = True
            elif t is READY:
                if latency:
                    ping_ns = perf()
                    client.send("bench_ping", {"seq": 0})
            elif (t is CLOSED and event.reconnect) or t is FATAL or t is ERROR:
                fail(f"binding: {event!r}")
    if not done:
        fail("binding: the client finished before the workload did")
    emit(latency_result(rtts, pong_sum) if latency else {"count": count, "sum": total})


def many(args):
    # Start the default loop first, so that the baseline RSS includes it.
    warm = make(args)
    warm.free()
    time.sleep(0.1)
    rss0 = rss_kb()
    clients = [make(args) for _ in range(args.conns)]
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c, selectors.EVENT_READ, c)
        c.connect()
    ready = 0

    def drain(timeout):
        nonlocal ready
        for key, _ in sel.select(timeout):
            c = key.data
            while (event := c.next_event(0)) is not None:
                if event.type is READY:
                    ready += 1
                elif (event.type is CLOSED and event.reconnect) or event.type is FATAL:
                    fail(f"binding: {event!r}")

    deadline = time.monotonic() + 120
    while ready < len(clients) and time.monotonic() < deadline:
        drain(1.0)
    if ready < len(clients):
        fail(f"binding: only {ready} of {len(clients)} clients ready")
    emit({"ready": ready, "rss0_kb": rss0, "rss_kb": rss_kb()})
    cpu0, t0 = cpu_secs(), time.monotonic()
    end = t0 + args.secs
    while (left := end - time.monotonic()) > 0:
        drain(left)
    cpu, wall = cpu_secs() - cpu0, time.monotonic() - t0
    emit({"conns": len(clients), "rss0_kb": rss0, "rss_kb": rss_kb(), "cpu_secs": round(cpu, 4),
          "wall_secs": round(wall, 4)})
    for c in clients:
        c.free()


def main():
    args = parse_args(__doc__)
    if args.mode in ("idle", "scale"):
        many(args)
    else:
        single(args)


if __name__ == "__main__":
    main()
