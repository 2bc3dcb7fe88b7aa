"""picows (asyncio, Cython) as a gateway client: a WSListener gets every frame; the gateway
never fragments messages, so a frame is a message."""

import asyncio

from picows import WSListener, WSMsgType, ws_connect

from common import Session, emit, fail, inflater, parse_args, run_many_async, ssl_context

TEXT, BINARY, CLOSE = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CLOSE


class Listener(WSListener):
    def __init__(self, session, inflate, ready=None):
        self.s = session
        self.inflate = inflate
        self.ready = ready  # a future set on bot_connect_success (idle/scale)
        self.finished = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport, frame):
        s = self.s
        t = frame.msg_type
        if t is TEXT:
            s.on_message(frame.get_payload_as_bytes())
        elif t is BINARY:
            s.on_message(self.inflate(frame.get_payload_as_bytes()))
        elif t is CLOSE:
            transport.disconnect()
            return
        else:
            return
        if s.out:
            for m in s.out:
                transport.send(TEXT, m.encode())
            s.out.clear()
            if s.done and not self.finished.done():
                self.finished.set_result(True)
                transport.send_close(1000)
        if self.ready is not None and s.ready and not self.ready.done():
            self.ready.set_result(True)

    def on_ws_disconnected(self, transport):
        if not self.finished.done():
            self.finished.set_result(False)


async def single(args):
    s = Session(args.mode, args.n)
    inflate = inflater(args)
    transport, listener = await ws_connect(lambda: Listener(s, inflate), args.url, ssl_context=ssl_context(args),
                                           max_frame_size=1 << 30)
    await listener.finished
    await transport.wait_disconnected()
    if not s.done:
        fail("picows: the connection ended before the workload did")
    emit(s.final())


async def open_one(args, s):
    ready = asyncio.get_running_loop().create_future()
    transport, _ = await ws_connect(lambda: Listener(s, None, ready), args.url, ssl_context=ssl_context(args))
    await ready

    async def send(text):
        transport.send(TEXT, text.encode())

    return send


def main():
    args = parse_args(__doc__)
    if args.mode in ("idle", "scale"):
        asyncio.run(run_many_async(args, lambda s: open_one(args, s)))
    else:
        asyncio.run(single(args))


if __name__ == "__main__":
    main()
