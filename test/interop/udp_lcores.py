#!/usr/bin/python3
"""interop-udp-lcores: a shim UDP socket in a process with two lcores.

    udp_lcores.py MCAST_RECEIVER_EXE NETNS_SH

ustack-mcast-receiver runs two lcores on net_af_packet qpairs=2 (the kernel
spreads flows over both queues; the runtime steers multicast to queue 0,
whose lcore has the IgmpHost), both lcores on the first CPU so the
example's thread has the second. Its one socket is bound to the port on
every lcore and joined to a group. The kernel sends unicast datagrams to the
port from many source ports (so both queues get some) and datagrams to the
group: every one must be read through the one socket (a socket on one lcore
only would lose the other lcore's share to ICMP port unreachable).
Needs root, network namespaces and two CPUs; skips (77) otherwise.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from examples import MCAST_SENDER  # noqa: E402
from interop_lib import Failure, Netns, Ustack, Workdir, check, main, need_tools, skip_unless_namespaces_and_cpus  # noqa: E402

PORT = 7120
SOURCES = 64   # unicast source ports
EACH = 4       # datagrams per source port
MCAST = 200

UNICAST_SENDER = r"""
import socket, sys, time
dst, port, sources, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
socks = []
for i in range(sources):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", 0))
    socks.append(s)
n = 0
for k in range(each):
    for s in socks:
        s.sendto(n.to_bytes(4, "big") + bytes(60), (dst, port))
        n += 1
        if n % 20 == 0:
            time.sleep(0.004)
print(f"sent {n} from {sources} ports")
"""


def body():
    cpus = skip_unless_namespaces_and_cpus(2, "the lcores, the example's thread")
    if len(sys.argv) != 3:
        raise Failure("usage: udp_lcores.py MCAST_RECEIVER_EXE NETNS_SH")
    exe, netns_sh = sys.argv[1:]
    need_tools("ip", "ping")
    pid = os.getpid()
    with Workdir() as wd, Netns(netns_sh, f"ustul{pid % 1000000}", 1 + (pid + 59) % 250) as ns:
        group = f"239.72.{ns.n}.1"
        eal = ["--lcores", f"0@{cpus[0]},1@{cpus[0]}", f"--vdev=net_af_packet0,iface={ns.host_if},qpairs=2",
               f"--file-prefix=ustack-ul-{pid}"]
        r = Ustack(exe, eal, ["--ip", f"{ns.ustack_ip}/{ns.prefix}", "--", group, str(PORT)], wd.path,
                   name="receiver").start()
        try:
            r.wait_for(r"^mcast-receiver: joined " + group.replace(".", r"\.") + f" port {PORT}", 30)
            ns.exec(["ping", "-c", "1", "-W", "2", ns.ustack_ip], check_rc=False)
            p = ns.exec(["/usr/bin/python3", "-c", UNICAST_SENDER, ns.ustack_ip, str(PORT), str(SOURCES), str(EACH)],
                        timeout=60, check_rc=False)
            check(p.returncode == 0, f"kernel unicast sender: {p.stdout.strip()} {p.stderr.strip()}")
            p = ns.exec(["/usr/bin/python3", "-c", MCAST_SENDER, ns.peer_ip, group, str(PORT), str(MCAST)],
                        timeout=60, check_rc=False)
            check(p.returncode == 0, f"kernel sender to {group}: {p.stdout.strip()} {p.stderr.strip()}")
            time.sleep(0.5)
            status = r.stop(timeout=30)
            check(status == 0, f"ustack-mcast-receiver: exit status after SIGINT {status}")
            m = r.wait_for(r"^mcast-receiver: (\d+) datagrams, (\d+) bytes", 5)
            want = SOURCES * EACH + MCAST
            check(int(m.group(1)) == want and int(m.group(2)) == want * 64,
                  f"a two-lcore ustack-mcast-receiver reads all {SOURCES * EACH} unicast datagrams from "
                  f"{SOURCES} ports and {MCAST} to {group}: {m.group(0)}")
        except Failure:
            wd.failed = True
            r.dump()
            raise
        finally:
            r.kill()


if __name__ == "__main__":
    main(body)
