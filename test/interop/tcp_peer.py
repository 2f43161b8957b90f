#!/usr/bin/python3
"""The kernel's side of interop-tcp: run inside the namespace (ip netns exec).

    tcp_peer.py echo HOST PORT BYTES [SEED]
        one connection: send BYTES of seeded pseudo-random data while
        receiving; half-close after sending; read until EOF. Byte-exact when
        the SHA-256 of what came back equals that of what was sent.
    tcp_peer.py short HOST PORT COUNT PARALLEL BYTES
        COUNT short echo connections, PARALLEL at a time (connect, send BYTES,
        half-close, read the echo until EOF, compare, close).
    tcp_peer.py many HOST PORT CLIENTS BYTES [SOURCES]
        CLIENTS concurrent echo connections of BYTES each (threads), bound in
        turn to the SOURCES addresses (comma-separated; default: any).
    tcp_peer.py fetch HOST PORT
        one connection, read until EOF (the --tcp-source service).
    tcp_peer.py discard HOST PORT BYTES
        send BYTES, half-close, wait for the server's FIN.
    tcp_peer.py serve PORT BYTES COUNT [ADDR]
        a server: accept COUNT clients one by one and send each BYTES of the
        test pattern, then close. Prints "listening" once it listens.

Each mode prints one JSON object on its last line: what was sent and
received (counts, SHA-256) and "ok". The test pattern (services/pattern.hpp):
byte i = (7 * (i mod 251) + i // 251) mod 256.
"""

import hashlib
import json
import os
import random
import socket
import sys
import threading
import time

TIMEOUT = 120
PERIOD = bytes((7 * (i % 251) + i // 251) % 256 for i in range(251 * 256))
BIG = PERIOD * 20  # any chunk of up to 1 MiB from any offset in the period


def pattern_sha256(n):
    h = hashlib.sha256()
    done = 0
    while done < n:
        k = min(n - done, 1 << 20)
        off = done % len(PERIOD)
        h.update(BIG[off:off + k])
        done += k
    return h.hexdigest()


def pseudo_random(n, seed):
    """n seeded pseudo-random bytes (reproducible: a failure can be replayed)."""
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        out += rnd.randbytes(min(1 << 20, n - len(out)))
    return bytes(out)


def connect(host, port, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


def echo_once(host, port, data, source=None):
    """Sends data, half-closes, returns (sha256 of what came back, count)."""
    s = connect(host, port, source)
    h = hashlib.sha256()
    got = [0]
    err = []

    def reader():
        try:
            while True:
                b = s.recv(1 << 20)
                if not b:
                    return
                h.update(b)
                got[0] += len(b)
        except OSError as e:
            err.append(repr(e))

    t = threading.Thread(target=reader)
    t.start()
    mv = memoryview(data)
    sent = 0
    try:
        while sent < len(mv):
            sent += s.send(mv[sent:sent + (1 << 20)])
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        err.append(repr(e))
    t.join(TIMEOUT)
    s.close()
    if t.is_alive():
        err.append("reader still running")
    return h.hexdigest(), got[0], sent, err


def mode_echo(host, port, nbytes, seed=1):
    data = pseudo_random(nbytes, seed)
    want = hashlib.sha256(data).hexdigest()
    t0 = time.monotonic()
    got_sha, got, sent, err = echo_once(host, port, data)
    dt = time.monotonic() - t0
    return {"sent": sent, "received": got, "sha_sent": want, "sha_received": got_sha, "seconds": dt,
            "errors": err, "ok": not err and got == nbytes and got_sha == want}


def mode_short(host, port, count, parallel, nbytes):
    failures = []
    lock = threading.Lock()
    next_i = [0]

    def worker():
        while True:
            with lock:
                i = next_i[0]
                if i >= count:
                    return
                next_i[0] += 1
            data = bytes((i + k) % 256 for k in range(nbytes))
            try:
                sha, got, sent, err = echo_once(host, port, data)
                if err or got != nbytes or sha != hashlib.sha256(data).hexdigest():
                    with lock:
                        failures.append(f"connection {i}: got {got} of {nbytes} bytes, errors {err}")
            except OSError as e:
                with lock:
                    failures.append(f"connection {i}: {e!r}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"count": count, "parallel": parallel, "failures": failures[:10], "failed": len(failures),
            "seconds": time.monotonic() - t0, "ok": not failures}


def mode_many(host, port, clients, nbytes, sources=None):
    srcs = sources.split(",") if sources else [None]
    results = [None] * clients
    data = pseudo_random(nbytes, 7)
    want = hashlib.sha256(data).hexdigest()

    def worker(i):
        try:
            results[i] = echo_once(host, port, data, srcs[i % len(srcs)])
        except OSError as e:
            results[i] = (None, 0, 0, [repr(e)])

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [f"client {i}: got {r[1]} bytes, errors {r[3]}" for i, r in enumerate(results)
           if r[3] or r[1] != nbytes or r[0] != want]
    return {"clients": clients, "bytes": nbytes, "failures": bad[:10], "seconds": time.monotonic() - t0,
            "ok": not bad}


def mode_fetch(host, port):
    s = connect(host, port)
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    s.close()
    return {"received": n, "sha_received": h.hexdigest(), "seconds": time.monotonic() - t0, "ok": True}


def mode_discard(host, port, nbytes):
    s = connect(host, port)
    data = pseudo_random(nbytes, 3)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    extra = s.recv(1)  # the server's FIN
    s.close()
    return {"sent": nbytes, "ok": extra == b""}


def mode_serve(port, nbytes, count, addr="0.0.0.0"):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(16)
    ls.settimeout(TIMEOUT)
    print("listening", flush=True)
    served = []
    for _ in range(count):
        c, peer = ls.accept()
        c.settimeout(TIMEOUT)
        sent = 0
        while sent < nbytes:
            off = sent % len(PERIOD)
            sent += c.send(BIG[off:off + min(nbytes - sent, 1 << 20)])
        c.shutdown(socket.SHUT_WR)
        # Wait for the client's FIN (it closes once it has everything).
        rest = c.recv(1 << 16)
        c.close()
        served.append({"peer": f"{peer[0]}:{peer[1]}", "sent": sent, "client_sent": len(rest)})
    ls.close()
    return {"served": served, "sha_sent": pattern_sha256(nbytes), "ok": True}


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "echo":
        r = mode_echo(args[0], int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 1)
    elif mode == "short":
        r = mode_short(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]))
    elif mode == "many":
        r = mode_many(args[0], int(args[1]), int(args[2]), int(args[3]), args[4] if len(args) > 4 else None)
    elif mode == "fetch":
        r = mode_fetch(args[0], int(args[1]))
    elif mode == "discard":
        r = mode_discard(args[0], int(args[1]), int(args[2]))
    elif mode == "serve":
        r = mode_serve(int(args[0]), int(args[1]), int(args[2]), args[3] if len(args) > 3 else "0.0.0.0")
    elif mode == "pattern-sha256":
        r = {"sha": pattern_sha256(int(args[0])), "ok": True}
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(r), flush=True)
    sys.exit(0 if r["ok"] else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
