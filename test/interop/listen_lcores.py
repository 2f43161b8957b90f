#!/usr/bin/python3
"""interop-listen-lcores: a shim listener in a process with two lcores.

    listen_lcores.py ECHO_SERVER_EXE NETNS_SH

ustack-echo-server runs two lcores on net_af_packet qpairs=2 (the kernel
spreads flows over both queues; the runtime's TCP steering moves each
segment to the lcore its hash names), both lcores on the first CPU so the
example's thread has the second. Kernel clients open 20 connections at
once: every one must be accepted and echoed (a listener on one lcore only
would have the other lcore answer its share with RST).
Needs root, network namespaces and two CPUs; skips (77) otherwise.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from examples import KERNEL_CLIENTS  # noqa: E402
from interop_lib import Failure, Netns, Ustack, Workdir, check, main, need_tools, skip_unless_namespaces_and_cpus  # noqa: E402

PORT = 7110
CONNS = 20
SIZE = 16 * 1024


def body():
    cpus = skip_unless_namespaces_and_cpus(2, "the lcores, the example's thread")
    if len(sys.argv) != 3:
        raise Failure("usage: listen_lcores.py ECHO_SERVER_EXE NETNS_SH")
    server_exe, netns_sh = sys.argv[1:]
    need_tools("ip", "ping")
    pid = os.getpid()
    with Workdir() as wd, Netns(netns_sh, f"ustll{pid % 1000000}", 1 + (pid + 53) % 250) as ns:
        eal = ["--lcores", f"0@{cpus[0]},1@{cpus[0]}", f"--vdev=net_af_packet0,iface={ns.host_if},qpairs=2",
               f"--file-prefix=ustack-ll-{pid}"]
        u = Ustack(server_exe, eal, ["--ip", f"{ns.ustack_ip}/{ns.prefix}", "--", str(PORT)], wd.path,
                   name="server").start()
        try:
            u.wait_for(r"^echo-server: listening on port", 30)
            ns.exec(["ping", "-c", "1", "-W", "2", ns.ustack_ip], check_rc=False)
            p = ns.exec(["/usr/bin/python3", "-c", KERNEL_CLIENTS, ns.ustack_ip, str(PORT), str(CONNS), str(SIZE)],
                        timeout=120, check_rc=False)
            check(p.returncode == 0, f"{CONNS} kernel clients through a two-lcore ustack-echo-server: "
                  f"{p.stdout.strip()}")
            status = u.stop(timeout=30)
            check(status == 0, f"ustack-echo-server: exit status after SIGINT {status}")
            m = u.wait_for(r"^echo-server: (\d+) connections, (\d+) bytes echoed", 5)
            check(int(m.group(1)) == CONNS and int(m.group(2)) == CONNS * SIZE,
                  f"ustack-echo-server reports {CONNS} connections: {m.group(0)}")
        except Failure:
            wd.failed = True
            u.dump()
            raise
        finally:
            u.kill()


if __name__ == "__main__":
    main(body)
