"""The line echo protocol on asyncio streams, the replacement Python's
documentation points asynchat users to: readuntil() per line, write and
drain per reply. Usage: asyncio_echo.py [PORT]; prints "listening on
127.0.0.1:PORT" and serves until SIGINT or SIGTERM."""
import asyncio
import signal
import socket
import sys


async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            line = await reader.readuntil(b"\n")
            writer.write(line)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError,
            asyncio.CancelledError):
        pass  # the client left, or the server is stopping
    finally:
        writer.close()


async def serve(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port,
                                        limit=1 << 20, backlog=1024)
    print("listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1],
          flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(
            sig, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


def main():
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))


if __name__ == "__main__":
    main()
