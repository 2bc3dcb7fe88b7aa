"""The dev gateway: a local, strict, Utilbot-compatible gateway server for tests and offline bots.

USAGE (with bindings/python on PYTHONPATH)
  python3 -m utilbot_gateway.devserver [--host H] [--port P] [--tls] [--certdir DIR]
      [--heartbeat MS] [--heartbeat-grace MS] [--strict-heartbeat] [--key KEY ...]
      [--zlib-style stream|message|split]
      [--hello-spelling heartbeat|hearbeat] [--echo] [--no-stdin] [--verbose]

  The first line on stdout is one JSON object, e.g. {"url": "ws://127.0.0.1:PORT/", "port": PORT};
  with --tls {"url": "wss://localhost:PORT/", "port": PORT, "ca": "/abs/path/ca.pem"}: a CA and a
  server certificate for localhost, 127.0.0.1 and ::1 (and --host) are generated into --certdir
  (a CA already there is reused) or a temporary directory removed at exit. TLS 1.2 minimum.
  Every later stdout line answers a control command. Logs go to stderr: errors always, one line
  per connection event with --verbose. The server exits (status 0) on SIGTERM, SIGINT or end of
  stdin (unless --no-stdin); open connections get close code 1001 (going away).
  Defaults: host 127.0.0.1, port 0 (a free one), heartbeat 45000 ms, grace a quarter of it,
  accepted key "dev-key", zlib style stream, Hello field "heartbeat". It listens on the first
  address the host resolves to.
  It needs the package's devserver extra (websockets, cryptography); without it, it exits with
  status 2 and one line on stderr: "the dev gateway needs its extra: pip install
  'utilbot-gateway[devserver]' (cannot import MODULE: ...)". The client package never needs it.

PROTOCOL (v1, strict, like the real gateway)
  URL: ?v=1 is required (absent or any other value: op -1 e 4000 "Wrong Version.", close 4000).
  compression=zlib compresses everything sent: zlib format, binary frames; style "stream" (one
  compressor per connection, every message ends with a sync flush 00 00 ff ff), "message"
  (each message a complete zlib stream) or "split" (like stream, but every message's compressed
  bytes go out as two binary WebSocket messages: the first never ends in 00 00 ff ff, the second
  does). Any other compression value, also an empty one:
  op -1 e 4000 "Unknown compression.", close 4000. With zlib on, the 4000 for a wrong version is
  compressed too. Other parameters are ignored (so is encoding=zlib), except the dev ones
  zlib_style=stream|message|split, hello_spelling=heartbeat|hearbeat and strict_heartbeat=1|0, and
  the fault_* ones (a bad value of any of these: HTTP 400). Any
  path is accepted. No permessage-deflate; a client message may be at most 1 MiB (else 1009).

  On connect: Hello {"op":5,"d":{"heartbeat":MS}} (or "hearbeat"). Every {"op":10} is answered
  with {"op":11}, also before identify. A heartbeat must arrive within interval + grace of the
  previous one (or of the Hello), else op -1 e 4006 "No heartbeat received.", close 4006.
  Strict heartbeat (strict_heartbeat=1 on the URL, or --strict-heartbeat for every connection;
  strict_heartbeat=0 turns it off for one): a fixed schedule with ZERO grace instead. With the
  Hello written at H and the interval I, the first beat (sent at once) covers slot 0 and is due
  by H + I; a later beat arriving at t covers slot ceil((t-H)/I); after a beat covering slot k
  the next is due by H + (k+1)*I exactly. A beat after its deadline, or none by it: the same
  4006 error and close (the log says how many ms late). Each beat's margin (deadline - arrival,
  ms) is recorded: see stats. Arrival is when the server's event loop read the message.
  Text that is not a JSON object (not JSON, NaN, an array, a number...) is dropped silently, and
  so is every binary frame. The envelope is checked on every message: no op (or op null) ->
  4003 "No opcode provided."; op not a JSON integer, or not 1 or 10 -> 4004 "Wrong opcode.";
  op 1 with t missing or not a string, or d present and not an object (null counts as absent)
  -> 4005 "Malformed data." with d {"errors":[...],"data":[...]} (one entry per problem and the
  offending value). Every op -1 is followed by a close with the same code (its message is the
  close reason). A close the gateway starts that the client does not answer within 3 s ends
  with the TCP connection being aborted.

  identify (op 1, t "identify", d {"type":"bot","key":KEY}): type/key missing or null ->
  "Type not provided." / "Key not provided.", not a string -> "Type must be a string." /
  "Key must be a string.", all in one 4005 (exactly {"op":-1,"e":4005,"d":{"errors":["Type not
  provided.","Key not provided."],"data":[null,null]},"m":"Malformed data."} for an empty d);
  then a type other than "bot" -> 4007 "Wrong identify." (d errors ["Unsupported type."]); then a
  key not accepted -> 4001 "Wrong auth key."; a second identify -> 4007 (d errors
  ["Already identified."]). Success: {"op":0,"t":"bot_connect_success","d":{"bot_id":ID}}, ID 16
  hex digits, unique among the connections. Before identify every other event is ignored and
  never answered.

  send_servers (after identify; d required): guilds (integer >= 0, or an array: its length),
  guildMembers or users, cachedGuildMembers or cachedUsers (integers >= 0); other fields are
  ignored, absent ones count 0, wrong types -> 4005 listing each. The latest report per bot
  counts; after every report each identified bot gets
  {"op":0,"t":"GLOBAL_GUILD_COUNT","d":{"guilds":G,"guildMembers":M,"cachedGuildMembers":C}},
  the sums over connected bots. When a bot that reported disconnects, its share drops out and
  the remaining identified bots get the new sums. Nothing is sent at identify.
  Other events after identify are ignored, or with --echo answered with
  {"op":0,"t":"ECHO","d":{"t":T,"d":D}} (D null when the event had no d).

FAULTS (query parameters on the bot's URL; a bad or unknown fault_* parameter -> HTTP 400)
  fault_no_ack=1            never answer heartbeats (they still keep 4006 away)
  fault_no_ack_after=N      answer the first N heartbeats, then none
  fault_close=CODE          close with CODE fault_close_after_ms (default 0) after the
  fault_close_after_ms=MS   bot_connect_success; 1000 and 4000-4007 send their op -1 first
                            (1000: "Unknown error."); other valid codes close without one
  fault_malformed=1         send {"op":0,"t": (cut short) right after bot_connect_success
  fault_no_hello=1          no Hello: the connection stalls from the start
  fault_stall_after_ms=MS   MS after the handshake stop sending and handling anything; the TCP
                            connection stays open (silent half-open server)
  fault_error=CODE          right after bot_connect_success send {"op":-1,"e":CODE,"d":{"errors":
                            ["Injected error."],"data":[null]},"m":<standard message>}, close CODE
  fault_no_ready=1          accept identify (the bot counts as identified) but never send
                            bot_connect_success; otherwise a healthy connection (ACKs go on)
  fault_flood=N             after identify (also with fault_no_ready), N events {"op":0,"t":"FLOOD",
                            "d":{"seq":i}} (i = 0..N-1) as fast as the client reads them (paced by
                            the transport's drain, at most 64 queued), then a healthy connection;
                            ACKs slip in between; never stamped; a close ends the flood
  Order after identify: bot_connect_success (unless fault_no_ready), malformed text, the flood
  (running on in the background), injected error, fault_close at 0 ms.

CONTROL (one JSON command per line on stdin; exactly one JSON answer line each on stdout,
{"ok":true,...} or {"ok":false,"error":"..."}; commands run one at a time, in order)
  {"cmd":"stats"}                 -> {"ok":true,"stats":{"connections","identified",
                                     "connects_total","identifies_total" (also those whose
                                     bot_connect_success fault_no_ready withheld),"heartbeats_total",
                                     "acks_total","flood_events_total" (FLOOD events written),
                                     "closes_by_code" (closes the gateway started),
                                     "client_closes_by_code" (closes the client started; 1006:
                                     no close frame),"events_by_name","global",
                                     strict heartbeat: "strict_heartbeat_beats_total" (beats it
                                     judged), "strict_heartbeat_min_margin_ms" (smallest margin of
                                     any beat, whole ms rounded down, negative = late; null before
                                     one), "strict_heartbeat_late_closes_total" (its 4006 closes),
                                     "strict_heartbeat_last_late_ms" (how late at the latest one;
                                     null before one), "strict_heartbeat_connections" (the latest
                                     100 strict connections, open or gone: [{"conn","beats",
                                     "min_margin_ms","last_margin_ms","closed": null|"late" (a beat
                                     came late_ms after its deadline)|"missed" (none came; closed
                                     late_ms past the deadline),"late_ms"}])}}
  {"cmd":"close_all","code":CODE} -> close every connection not already closing or stalled (op -1
                                     first for 1000/4000-4007; any valid close code), answered
                                     once they are gone: {"ok":true,"closed":N}
  {"cmd":"stop_acks"} / {"cmd":"resume_acks"}   for all current and future connections
  {"cmd":"send_all","t":NAME,"d":DATA}  op 0 event to every identified bot (without "d" in the
                                        command, the event has none) -> {"ok":true,"sent":N}
  {"cmd":"send_raw_all","text":"..."}   raw text to every identified bot (compressed on zlib
                                        connections) -> {"ok":true,"sent":N}
  {"cmd":"stall_all"}             -> stall every connection: {"ok":true,"stalled":N}
  {"cmd":"received"}              -> {"ok":true,"received":[{"conn":ID,"op":1,"t":T,"d":D},...],
                                     "dropped":N}: op 1 payloads since the last call, in arrival
                                     order, ignored ones included, identify's key as "***"
                                     (at most 100000 kept between calls; older ones are dropped)
  {"cmd":"keys","keys":[...]}     -> replace the accepted keys
  {"cmd":"connections"}           -> {"ok":true,"connections":[{"conn","path","identified",
                                     "bot_id","compression","zlib_style","closing","stalled",
                                     "outbox" (messages waiting to be written),"strict_heartbeat"}]}
"""

from typing import Any

from .config import Config

__all__ = ["Config", "Gateway"]


def __getattr__(name: str) -> Any:
    # Gateway needs websockets (the devserver extra); importing the package must not, so that
    # `python3 -m utilbot_gateway.devserver` can say what is missing instead of a traceback.
    if name == "Gateway":
        from .gateway import Gateway

        return Gateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
