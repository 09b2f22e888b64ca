"""The line echo protocol on Python 3.11's asynchat, the model evchat
follows: the reference for instructions per request and requests per
second. Usage: asynchat_echo.py [PORT]; prints "listening on
127.0.0.1:PORT" and serves until SIGINT or SIGTERM."""
import signal
import socket
import sys
import warnings

with warnings.catch_warnings():
    # asynchat and asyncore are deprecated since 3.6, removed in 3.12.
    warnings.simplefilter("ignore", DeprecationWarning)
    import asynchat
    import asyncore


class EchoHandler(asynchat.async_chat):
    def __init__(self, sock):
        super().__init__(sock)
        self.set_terminator(b"\n")
        self.parts = []

    def collect_incoming_data(self, data):
        self.parts.append(data)

    def found_terminator(self):
        self.push(b"".join(self.parts) + b"\n")
        self.parts = []


class EchoServer(asyncore.dispatcher):
    def __init__(self, port):
        super().__init__()
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(("127.0.0.1", port))
        self.listen(1024)

    def handle_accepted(self, sock, addr):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        EchoHandler(sock)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = EchoServer(port)
    print("listening on 127.0.0.1:%d" % server.socket.getsockname()[1], flush=True)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    asyncore.loop(timeout=1.0, use_poll=True)


if __name__ == "__main__":
    main()
