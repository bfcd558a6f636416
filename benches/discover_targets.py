"""Loopback TLS endpoints for benches/discover.sh: one process listening on PORTS consecutive
ports from FIRST on HOST, each completing a TLS handshake with CERT/KEY (the chain file may hold
intermediates) and closing when the client does. Prints "ready" once every port listens.

Handshakes run on blocking sockets in a thread pool (OpenSSL releases the GIL): a failed
handshake then still sends its alert, which nmap's SSL detection needs (asyncio's TLS closes
without one).

    python3 discover_targets.py HOST FIRST PORTS CERT KEY
"""
import selectors
import socket
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor


def serve(ctx, conn):
    try:
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            while tls.recv(4096):
                pass
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main():
    host, first, count, cert, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    sel = selectors.DefaultSelector()
    for port in range(first, first + count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(64)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    with ThreadPoolExecutor(max_workers=256) as pool:
        while True:
            for key_, _ in sel.select():
                try:
                    conn, _ = key_.fileobj.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(True)
                pool.submit(serve, ctx, conn)


main()
