"""The Python `websockets` library (asyncio implementation) as a gateway client."""

import asyncio

from websockets.asyncio.client import connect

from common import Session, emit, fail, inflater, parse_args, run_many_async, ssl_context


READERS = set()  # the reader tasks of the idle/scale connections


def options(args):
    # No permessage-deflate offer (the gateway compresses with zlib itself), no size limit, and
    # no WebSocket pings of its own: the protocol's heartbeats keep the connection alive.
    return dict(ssl=ssl_context(args), compression=None, max_size=None, ping_interval=None)


async def single(args):
    s = Session(args.mode, args.n)
    inflate = inflater(args)
    async with connect(args.url, **options(args)) as ws:
        async for msg in ws:
            s.on_message(inflate(msg) if type(msg) is bytes else msg)
            if s.out:
                for m in s.out:
                    await ws.send(m)
                s.out.clear()
                if s.done:
                    break
    if not s.done:
        fail("websockets: the connection ended before the workload did")
    emit(s.final())


async def open_one(args, s):
    ws = await connect(args.url, **options(args))
    while not s.ready:
        s.on_message(await ws.recv())
        for m in s.out:
            await ws.send(m)
        s.out.clear()

    async def reader():
        async for msg in ws:
            s.on_message(msg)

    READERS.add(asyncio.create_task(reader()))
    return ws.send


def main():
    args = parse_args(__doc__)
    if args.mode in ("idle", "scale"):
        asyncio.run(run_many_async(args, lambda s: open_one(args, s)))
    else:
        asyncio.run(single(args))


if __name__ == "__main__":
    main()
