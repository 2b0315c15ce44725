"""rfc6455 over TLS against an independent client: Python's `websockets` and `ssl` (OpenSSL).

Run by tests/tls/run.sh, which installs `websockets` into a venv, makes the certificates and
builds the server; RFC6455_BIN and CERTS come from it. Prints `N passed, N failed`.
"""

import asyncio
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import traceback
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

BINARY = os.environ["RFC6455_BIN"]
CERTS = os.environ["CERTS"]
CA = os.path.join(CERTS, "ca.pem")
HANDSHAKE_TIMEOUT = 1.0


def client_context():
    context = ssl.create_default_context(cafile=CA)
    return context


class Server:
    """The rfc6455 binary in a child process, with TLS, on a free port."""

    def __init__(self, mode, *args):
        self.process = subprocess.Popen(
            [
                BINARY, mode, "--port", "0",
                "--tls-cert", os.path.join(CERTS, "cert.pem"),
                "--tls-key", os.path.join(CERTS, "key.pem"),
                "--handshake-timeout", f"{HANDSHAKE_TIMEOUT}s",
                *args,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stderr.readline()
        assert "listening on wss://" in line, line
        self.port = int(line.split("listening on wss://")[1].split()[0].rsplit(":", 1)[1])
        self.url = f"wss://localhost:{self.port}/"

    def metrics(self):
        with urllib.request.urlopen(
            f"https://localhost:{self.port}/metrics", context=client_context(), timeout=10
        ) as response:
            values = {}
            for line in response.read().decode().splitlines():
                if not line.startswith("#"):
                    name, value = line.rsplit(" ", 1)
                    values[name] = int(value)
            return values

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.process.stderr.close()
        return self.process.returncode


async def echo_with_compression():
    server = Server("echo")
    try:
        async with connect(server.url, ssl=client_context(), max_size=None) as ws:
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            assert extensions.startswith("permessage-deflate"), extensions
            await ws.send("héllo over TLS")
            assert await ws.recv() == "héllo over TLS"
            for size in [0, 125, 70_000, 1 << 20]:
                payload = bytes((i * 7) % 251 for i in range(size))
                await ws.send(payload)
                assert await ws.recv() == payload, size
            text = "compressible " * 10_000
            await ws.send(text)
            assert await ws.recv() == text
        assert ws.close_code == 1000, ws.close_code
    finally:
        assert server.stop() == 0


async def broadcast():
    server = Server("broadcast")
    try:
        clients = [await connect(server.url, ssl=client_context()) for _ in range(5)]
        for i, sender in enumerate(clients):
            await sender.send(f"message {i}")
            for client in clients:
                assert await asyncio.wait_for(client.recv(), 10) == f"message {i}"
        for client in clients:
            await client.close()
    finally:
        assert server.stop() == 0


async def refused_upgrade():
    server = Server("echo")
    try:
        try:
            async with connect(
                server.url, ssl=client_context(), origin="https://elsewhere.example"
            ):
                raise AssertionError("the upgrade was accepted")
        except InvalidStatus as refusal:
            assert refusal.response.status_code == 403, refusal
        assert server.metrics()['rfc6455_upgrades_refused_total{status="403"}'] == 1
    finally:
        assert server.stop() == 0


def client_hello():
    """A ClientHello from OpenSSL for localhost, without a socket."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def seconds_to_eof(sock, limit=10):
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def stalled_handshakes_are_cut():
    server = Server("echo")
    try:
        start = time.monotonic()
        silent = socket.create_connection(("127.0.0.1", server.port))
        halfway = socket.create_connection(("127.0.0.1", server.port))
        hello = client_hello()
        halfway.sendall(hello[: len(hello) // 2])
        for sock in (silent, halfway):
            seconds_to_eof(sock)
            took = time.monotonic() - start
            assert HANDSHAKE_TIMEOUT * 0.9 < took < HANDSHAKE_TIMEOUT + 3, took
            sock.close()
        plain = socket.create_connection(("127.0.0.1", server.port))
        plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert seconds_to_eof(plain) < HANDSHAKE_TIMEOUT / 2, "a plain request fails at once"
        plain.close()
        metrics = server.metrics()
        assert metrics["rfc6455_tls_handshake_timeouts_total"] == 2, metrics
        assert metrics["rfc6455_tls_handshake_failures_total"] == 1, metrics
    finally:
        assert server.stop() == 0


def masked(opcode, payload):
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + key + body


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "EOF"
        data += chunk
    return data


def close_notify_then_fin():
    """The server's half-close reaches OpenSSL as close_notify, then the TCP FIN."""
    server = Server("echo")
    try:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        tls = client_context().wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False
        )
        tls.sendall(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += recv_exactly(tls, 1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        tls.sendall(masked(0x8, struct.pack("!H", 1000) + b"bye"))
        header = recv_exactly(tls, 2)
        assert header[0] == 0x88, header
        assert struct.unpack("!H", recv_exactly(tls, header[1])[:2])[0] == 1000
        # close_notify: an orderly end of the TLS stream (a bare FIN would raise SSLEOFError
        # with suppress_ragged_eofs=False).
        assert tls.recv(1) == b""
        plain = tls.unwrap()  # answers with our close_notify
        assert plain.recv(64) == b"", "the TCP FIN, and nothing after close_notify"
        plain.close()
    finally:
        assert server.stop() == 0


TESTS = [
    ("echo over wss with permessage-deflate", echo_with_compression),
    ("broadcast over wss to five clients", broadcast),
    ("a refused upgrade over TLS (403)", refused_upgrade),
    ("stalled TLS handshakes cut at the deadline, a plain request at once", stalled_handshakes_are_cut),
    ("close_notify, then FIN", close_notify_then_fin),
]


def main():
    passed = failed = 0
    for name, test in TESTS:
        start = time.monotonic()
        try:
            result = test()
            if asyncio.iscoroutine(result):
                asyncio.run(asyncio.wait_for(result, 60))
            passed += 1
            print(f"ok   {name} ({time.monotonic() - start:.2f} s)")
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
