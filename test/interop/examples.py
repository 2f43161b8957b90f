#!/usr/bin/python3
"""interop-examples: the epoll examples (apps/examples/) against the kernel.

    examples.py ECHO_SERVER_EXE ECHO_CLIENT_EXE MCAST_RECEIVER_EXE NETNS_SH

Each example is a dedicated-core process: one lcore polls net_af_packet on
the near end of a veth pair, the example's thread (on another CPU) uses the
shim. The kernel in the namespace is the peer:
  - kernel clients (several connections at once, 256 KiB each, then a
    half-close) against ustack-echo-server: every byte comes back, in order;
    SIGINT stops the server cleanly and it reports the connections;
  - ustack-echo-client against a kernel echo server: 500 round trips of 64
    bytes, each checked, exit status 0;
  - ustack-mcast-receiver joined to a group (IP_ADD_MEMBERSHIP from its
    thread) while a kernel sender publishes to it, and to another group on
    the same port: it counts every datagram sent to its group, none of the
    other's, and leaves on SIGINT.
Needs root, network namespaces and two CPUs; skips (77) otherwise.
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import Failure, Netns, Ustack, Workdir, check, main, need_tools, skip_unless_namespaces_and_cpus  # noqa: E402

SERVER_PORT = 7100
KERNEL_PORT = 7101
MCAST_PORT = 7102
MCAST_COUNT = 400

KERNEL_CLIENTS = r"""
import os, socket, sys, threading
ip, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
errors = []
def one(i):
    try:
        data = os.urandom(size)
        s = socket.create_connection((ip, port), timeout=20)
        got = bytearray()
        def reader():
            while True:
                b = s.recv(65536)
                if not b:
                    return
                got.extend(b)
        r = threading.Thread(target=reader)
        r.start()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        r.join(30)
        s.close()
        if bytes(got) != data:
            errors.append(f"connection {i}: {len(got)} of {size} bytes came back" +
                          ("" if len(got) != size else ", different"))
    except Exception as e:
        errors.append(f"connection {i}: {e}")
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join(60)
print("\n".join(errors) if errors else f"all {n} echoed")
sys.exit(1 if errors else 0)
"""

KERNEL_SERVER = r"""
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("listening", flush=True)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

MCAST_SENDER = r"""
import socket, sys, time
src, group, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.bind((src, 0))
for i in range(n):
    s.sendto(i.to_bytes(4, "big") + bytes(60), (group, port))
    if i % 20 == 19:
        time.sleep(0.004)
print(f"sent {n}")
"""


def body():
    cpus = skip_unless_namespaces_and_cpus(2, "one lcore, one for the example's thread")
    if len(sys.argv) != 5:
        raise Failure("usage: examples.py ECHO_SERVER_EXE ECHO_CLIENT_EXE MCAST_RECEIVER_EXE NETNS_SH")
    server_exe, client_exe, mcast_exe, netns_sh = sys.argv[1:]
    need_tools("ip", "ping")
    pid = os.getpid()
    with Workdir() as wd, Netns(netns_sh, f"ustex{pid % 1000000}", 1 + (pid + 37) % 250) as ns:
        eal = ["-l", str(cpus[0]), f"--vdev=net_af_packet0,iface={ns.host_if}"]
        ip = ["--ip", f"{ns.ustack_ip}/{ns.prefix}"]
        try:
            # 1. ustack-echo-server, kernel clients.
            u = Ustack(server_exe, eal + [f"--file-prefix=ustack-exs-{pid}"], ip + ["--", str(SERVER_PORT)],
                       wd.path, name="server").start()
            try:
                u.wait_for(r"^echo-server: listening on port", 30)
                ns.exec(["ping", "-c", "1", "-W", "2", ns.ustack_ip], check_rc=False)
                p = ns.exec(["/usr/bin/python3", "-c", KERNEL_CLIENTS, ns.ustack_ip, str(SERVER_PORT), "8",
                             str(256 * 1024)], timeout=120, check_rc=False)
                check(p.returncode == 0, f"kernel clients through ustack-echo-server: {p.stdout.strip()}")
                status = u.stop(timeout=30)
                check(status == 0, f"ustack-echo-server: exit status after SIGINT {status}")
                m = u.wait_for(r"^echo-server: (\d+) connections, (\d+) bytes echoed", 5)
                check(int(m.group(1)) == 8 and int(m.group(2)) == 8 * 256 * 1024,
                      f"ustack-echo-server reports 8 connections and 2 MiB: {m.group(0)}")
            except Failure:
                u.dump()
                raise
            finally:
                u.kill()

            # 2. ustack-echo-client, kernel server.
            k = subprocess.Popen(["ip", "netns", "exec", ns.name, "/usr/bin/python3", "-c", KERNEL_SERVER,
                                  ns.peer_ip, str(KERNEL_PORT)], stdout=subprocess.PIPE, text=True)
            try:
                check(k.stdout.readline().strip() == "listening", "kernel echo server listening")
                c = Ustack(client_exe, eal + [f"--file-prefix=ustack-exc-{pid}"],
                           ip + ["--", ns.peer_ip, str(KERNEL_PORT), "500", "64"], wd.path, name="client").start()
                try:
                    status = c.proc.wait(timeout=120)
                    check(status == 0, f"ustack-echo-client exit status {status}")
                    m = c.wait_for(r"^echo-client: 500 round trips of 64 bytes ok: rtt p50 ([\d.]+) us", 5)
                    print(f"   {m.group(0)}", flush=True)
                except (Failure, subprocess.TimeoutExpired):
                    c.dump()
                    raise Failure("ustack-echo-client did not finish its round trips")
                finally:
                    c.kill()
            finally:
                k.send_signal(signal.SIGTERM)
                try:
                    k.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    k.kill()
                    k.wait()

            # 3. ustack-mcast-receiver, a kernel sender.
            group, other = f"239.71.{ns.n}.1", f"239.71.{ns.n}.2"
            r = Ustack(mcast_exe, eal + [f"--file-prefix=ustack-exm-{pid}"], ip + ["--", group, str(MCAST_PORT)],
                       wd.path, name="mcast").start()
            try:
                r.wait_for(r"^mcast-receiver: joined " + group.replace(".", r"\.") + f" port {MCAST_PORT}", 30)
                for g, n in ((group, MCAST_COUNT), (other, 100)):
                    p = ns.exec(["/usr/bin/python3", "-c", MCAST_SENDER, ns.peer_ip, g, str(MCAST_PORT), str(n)],
                                timeout=60, check_rc=False)
                    check(p.returncode == 0, f"kernel sender to {g}: {p.stdout.strip()} {p.stderr.strip()}")
                time.sleep(0.5)
                status = r.stop(timeout=30)
                check(status == 0, f"ustack-mcast-receiver: exit status after SIGINT {status}")
                m = r.wait_for(r"^mcast-receiver: (\d+) datagrams, (\d+) bytes", 5)
                check(int(m.group(1)) == MCAST_COUNT and int(m.group(2)) == MCAST_COUNT * 64,
                      f"ustack-mcast-receiver counts the {MCAST_COUNT} datagrams sent to {group}, "
                      f"none of {other}'s: {m.group(0)}")
            except Failure:
                r.dump()
                raise
            finally:
                r.kill()
        except Failure:
            wd.failed = True
            raise


if __name__ == "__main__":
    main(body)
