"""websocket-client (blocking) as a gateway client.

skip_utf8_validation=True: its default check of text frames is a pure-Python loop over every
byte (unless the optional wsaccel is installed), which its documentation tells users to turn
off for speed; text frames are still decoded from UTF-8 (in C) into str, which rejects invalid
UTF-8 anyway. idle and scale: connections made one after the other, then served from one
selectors loop that also heartbeats every connection at the interval of Hello."""

import selectors
import ssl
import time

import websocket

from common import HEARTBEAT, Session, cpu_secs, emit, fail, inflater, parse_args, rss_kb


def open_ws(args):
    sslopt = {"ca_certs": args.ca, "cert_reqs": ssl.CERT_REQUIRED} if args.url.startswith("wss://") else None
    return websocket.create_connection(args.url, sslopt=sslopt, skip_utf8_validation=True,
                                       enable_multithread=False)


def single(args):
    s = Session(args.mode, args.n)
    inflate = inflater(args)
    ws = open_ws(args)
    recv, send = ws.recv, ws.send
    while not s.done:
        msg = recv()
        if not msg:
            fail("websocket-client: the connection ended before the workload did")
        s.on_message(inflate(msg) if type(msg) is bytes else msg)
        if s.out:
            for m in s.out:
                send(m)
            s.out.clear()
    ws.close()
    emit(s.final())


def many(args):
    rss0 = rss_kb()
    conns = []
    for _ in range(args.conns):
        s = Session(args.mode)
        ws = open_ws(args)
        while not s.ready:
            s.on_message(ws.recv())
            for m in s.out:
                ws.send(m)
            s.out.clear()
        conns.append((s, ws))
    emit({"ready": len(conns), "rss0_kb": rss0, "rss_kb": rss_kb()})
    sel = selectors.DefaultSelector()
    for s, ws in conns:
        sel.register(ws.sock, selectors.EVENT_READ, (s, ws))
    cpu0, t0 = cpu_secs(), time.monotonic()
    interval = conns[0][0].heartbeat_ms / 1000
    next_beat, end, beats = t0 + interval, t0 + args.secs, 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_beat:
            for _, ws in conns:
                ws.send(HEARTBEAT)
            beats += len(conns)
            next_beat += interval
        for key, _ in sel.select(min(end, next_beat) - now):
            s, ws = key.data
            s.on_message(ws.recv())
    cpu, wall = cpu_secs() - cpu0, time.monotonic() - t0
    emit({"conns": len(conns), "rss0_kb": rss0, "rss_kb": rss_kb(), "cpu_secs": round(cpu, 4),
          "wall_secs": round(wall, 4), "beats": beats, "acks": sum(s.acks for s, _ in conns)})


def main():
    args = parse_args(__doc__)
    if args.mode in ("idle", "scale"):
        many(args)
    else:
        single(args)


if __name__ == "__main__":
    main()
