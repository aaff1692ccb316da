#!/usr/bin/env python3
"""A TCP proxy that adds latency, standing in for `tc netem` where the kernel has no netem.

    latency_proxy.py --rtt-ms N LISTEN_HOST:LISTEN_PORT=TARGET_HOST:TARGET_PORT ...

Every chunk read from either side is written to the other side N/2 ms later, so each round
trip through the proxy takes N ms longer (what `netem delay N` on a node's egress does to a
round trip), without limiting bandwidth: chunks are queued with their due time, in order, and
a writer per direction sends each one when it is due. One listening socket per mapping.
Prints "ready" on stdout once every socket listens; runs until SIGTERM.
"""
import argparse
import asyncio
import signal
import socket
import sys
import time


async def pump(reader, writer, delay):
    """Copy reader to writer, each chunk `delay` seconds after it was read."""
    queue = asyncio.Queue()

    async def read_side():
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, data))
            if not data:
                return

    async def write_side():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read_side(), write_side())
    except (ConnectionError, OSError):
        pass


async def handle(client_r, client_w, target, delay):
    try:
        server_r, server_w = await asyncio.open_connection(*target)
    except OSError:
        client_w.close()
        return
    for w in (client_w, server_w):
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.gather(pump(client_r, server_w, delay), pump(server_r, client_w, delay))
    for w in (client_w, server_w):
        w.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rtt-ms", type=float, required=True, help="added round-trip time (half each way)")
    ap.add_argument("mappings", nargs="+", metavar="LHOST:LPORT=THOST:TPORT")
    args = ap.parse_args()
    delay = args.rtt_ms / 2000.0
    servers = []
    for m in args.mappings:
        listen, target = m.split("=")
        lh, lp = listen.rsplit(":", 1)
        th, tp = target.rsplit(":", 1)
        t = (th, int(tp))
        servers.append(await asyncio.start_server(lambda r, w, t=t: handle(r, w, t, delay), lh, int(lp)))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
