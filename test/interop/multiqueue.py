#!/usr/bin/python3
"""interop-multiqueue: two lcores, two queue pairs, one stack instance each.

    multiqueue.py USTACK_EXE NETNS_SH

ustack runs on lcores 0-1 with net_af_packet qpairs=2 (the kernel spreads
flows over the two sockets by hash). The kernel pings ustack from 8 source
addresses at once; every ping must be answered, which needs each lcore to
resolve the kernel's MAC in its own ARP cache although ARP replies land on
one queue (the runtime copies ARP replies to every lcore). Also checked: the
JSON has both lcores and their counters add up, one capture per queue, and
neither capture has a malformed packet or a bad checksum. net_af_packet has
no RSS: the JSON must say steering is unknown (start-up unaffected).
Skips (77) when not root, without network namespaces, or with fewer than 2 CPUs.
"""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import (SKIP, Failure, Netns, Ustack, Workdir, can_make_namespaces, check, need_tools, main,  # noqa: E402
                         ping_counts, tshark_count)

SOURCES = 8
PINGS = 5
BAD_CHECKSUM = 'ip.checksum.status == "Bad" || icmp.checksum.status == "Bad"'
PREFS = ("ip.check_checksum:TRUE",)


def body():
    ok, why = can_make_namespaces()
    if not ok:
        print(f"SKIP: {why}")
        sys.exit(SKIP)
    if len(os.sched_getaffinity(0)) < 2:
        print("SKIP: needs 2 CPUs")
        sys.exit(SKIP)
    if len(sys.argv) != 3:
        raise Failure("usage: multiqueue.py USTACK_EXE NETNS_SH")
    exe, netns_sh = sys.argv[1], sys.argv[2]
    need_tools("ip", "ping", "tshark")
    pid = os.getpid()
    cpus = sorted(os.sched_getaffinity(0))[:2]
    prefix = f"ustack-mq-{pid}"

    with Workdir() as wd, Netns(netns_sh, f"ustm{pid % 1000000}", 1 + (pid + 7) % 250) as ns:
        base = ns.peer_ip.rsplit(".", 1)[0]
        sources = [f"{base}.{100 + i}" for i in range(SOURCES)]
        for s in sources:
            ns.exec(["ip", "addr", "add", f"{s}/{ns.prefix}", "dev", ns.peer_if])
        capture = os.path.join(wd.path, "mq.pcap")
        stats_json = os.path.join(wd.path, "stats.json")
        u = Ustack(exe, ["-l", f"{cpus[0]},{cpus[1]}", f"--vdev=net_af_packet0,iface={ns.host_if},qpairs=2",
                         f"--file-prefix={prefix}"],
                   ["--ip", f"{ns.ustack_ip}/{ns.prefix}", "--pcap-out", capture, "--stats-json", stats_json], wd.path)
        try:
            u.start()
            u.wait_for(r"^ready: .*, 2 lcore\(s\)", 30)
            procs = [subprocess.Popen(["ip", "netns", "exec", ns.name, "ping", "-q", "-c", str(PINGS), "-i", "0.05",
                                       "-W", "2", "-I", s, ns.ustack_ip], stdout=subprocess.PIPE, text=True)
                     for s in sources]
            total = 0
            for s, p in zip(sources, procs):
                out, _ = p.communicate(timeout=60)
                sent, got = ping_counts(out)
                check(sent == PINGS and got == PINGS, f"ping from {s}: {got}/{sent} replies")
                total += got
            status = u.stop()
            check(status == 0, f"ustack exit status after SIGINT: {status}")
        except (Failure, subprocess.TimeoutExpired):
            wd.failed = True
            u.dump()
            raise
        finally:
            u.kill()
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)

        try:
            doc = json.load(open(stats_json))
            lcores = doc["lcores"]
            check(sorted(l["queue"] for l in lcores) == [0, 1], "the JSON has one entry per queue (0 and 1)")
            per = [l["counters"]["icmp_rx_echo_request"] for l in lcores]
            print(f"echo requests per lcore: {per}; ARP replies shared: {[l['arp_shared'] for l in lcores]}",
                  flush=True)
            check(sum(per) == doc["totals"]["icmp_rx_echo_request"] == SOURCES * PINGS,
                  f"echo requests add up: {per} -> {doc['totals']['icmp_rx_echo_request']}")
            check(doc["totals"]["icmp_tx_echo_reply"] == SOURCES * PINGS,
                  f"echo replies: {doc['totals']['icmp_tx_echo_reply']}")
            check(all(l["arp_share_dropped"] == 0 for l in lcores), "no ARP copy was dropped")
            rss = doc["ports"][0]["rss"]
            check(rss["steering"] == "unknown" and not rss["known"] and rss["queues"] == 2 and
                  "no RSS hash function" in rss["note"],
                  f"net_af_packet offers no RSS: steering unknown ({rss['note']})")
            root, ext = os.path.splitext(capture)
            n = 0
            for q in (0, 1):
                path = f"{root}-q{q}{ext}"
                check(os.path.exists(path), f"capture for queue {q}: {os.path.basename(path)}")
                n += tshark_count(path, "icmp.type == 8", PREFS)
                check(tshark_count(path, "_ws.malformed", PREFS) == 0, f"queue {q} capture: no malformed packet")
                check(tshark_count(path, BAD_CHECKSUM, PREFS) == 0, f"queue {q} capture: no bad checksum")
            check(n == SOURCES * PINGS, f"the captures hold {n} echo requests")
        except Failure:
            wd.failed = True
            raise


if __name__ == "__main__":
    main(body)
