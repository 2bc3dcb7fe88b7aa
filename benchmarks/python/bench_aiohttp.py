"""aiohttp's WebSocket client as a gateway client (one ClientSession, no connection limit)."""

import asyncio

import aiohttp

from common import Session, emit, fail, inflater, parse_args, run_many_async, ssl_context

READERS = set()  # the reader tasks of the idle/scale connections


def ws_options(args):
    ctx = ssl_context(args)
    # No WebSocket-level heartbeat of its own (the protocol's heartbeats keep it alive), no
    # permessage-deflate offer, no message size limit.
    return dict(ssl=ctx if ctx is not None else True, heartbeat=None, compress=0, max_msg_size=0)


def session(args):
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def single(args):
    s = Session(args.mode, args.n)
    inflate = inflater(args)
    TEXT, BINARY = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
    async with session(args) as http, http.ws_connect(args.url, **ws_options(args)) as ws:
        async for msg in ws:
            if msg.type is TEXT:
                s.on_message(msg.data)
            elif msg.type is BINARY:
                s.on_message(inflate(msg.data))
            else:
                break
            if s.out:
                for m in s.out:
                    await ws.send_str(m)
                s.out.clear()
                if s.done:
                    break
    if not s.done:
        fail("aiohttp: the connection ended before the workload did")
    emit(s.final())


async def many(args):
    async with session(args) as http:

        async def open_one(s):
            ws = await http.ws_connect(args.url, **ws_options(args))
            while not s.ready:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    fail(f"aiohttp: unexpected {msg.type} during setup")
                s.on_message(msg.data)
                for m in s.out:
                    await ws.send_str(m)
                s.out.clear()

            async def reader():
                async for msg in ws:
                    s.on_message(msg.data)

            READERS.add(asyncio.create_task(reader()))
            return ws.send_str

        await run_many_async(args, open_one)


def main():
    args = parse_args(__doc__)
    asyncio.run(many(args) if args.mode in ("idle", "scale") else single(args))


if __name__ == "__main__":
    main()
