#!/usr/bin/python3
"""interop-l2l3: ARP, IPv4 and ICMP against the Linux kernel.

    l2l3.py USTACK_EXE NETNS_SH

The kernel lives in a fresh network namespace behind a veth pair; ustack
drives the near end through net_af_packet. Checked:
  - the kernel resolves ustack by ARP (ip neigh shows ustack's MAC, and the
    capture holds ustack's ARP reply)
  - kernel -> ustack: ping -c 5, ping -s 1472 (a full 1500-byte packet, DF),
    flood ping -c 500: every reply received
  - ustack -> kernel: --ping PEER:5, every reply received
  - ustack -> an address nobody has: ARP gives up, the pings fail cleanly,
    the ARP timeout counters show it (telemetry while running, JSON at exit)
  - SIGUSR1 prints a stats line; SIGINT exits 0
  - --stats-json is valid JSON (python3 -m json.tool) with every counter
  - the --pcap-out capture has no malformed packet and no bad IPv4/ICMP
    checksum (tshark, validated by a self-check on a capture with both)
Skips (77) when not root or when network namespaces are not permitted.
"""

import json
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import (SKIP, Failure, Netns, Ustack, Workdir, can_make_namespaces, check, need_tools, inet_checksum,  # noqa: E402
                         main, ping_counts, run, telemetry, tshark_count, write_pcap)

KERNEL_PINGS = 5
LARGE_PINGS = 5
FLOOD_PINGS = 500
USTACK_PINGS = 5
GHOST_PINGS = 3
GHOST_HOST = 77  # 10.99.N.77: on the subnet, nobody there

BAD_CHECKSUM = ('ip.checksum.status == "Bad" || icmp.checksum.status == "Bad" || '
                'udp.checksum.status == "Bad" || tcp.checksum.status == "Bad"')
MALFORMED = "_ws.malformed"
SERIOUS = '_ws.expert.severity >= "Warning"'
PREFS = ("ip.check_checksum:TRUE", "udp.check_checksum:TRUE", "tcp.check_checksum:TRUE")


def tshark_self_check(workdir):
    """The filters must find a bad ICMP checksum and a truncated ARP, or the real check proves nothing."""
    eth = bytes.fromhex("020000000001020000000002")
    icmp = bytes([8, 0, 0x12, 0x34, 0, 1, 0, 1]) + b"x" * 8  # wrong checksum
    ip = bytearray([0x45, 0, 0, 20 + len(icmp), 0, 1, 0, 0, 64, 1, 0, 0, 10, 99, 0, 1, 10, 99, 0, 2])
    ip[10:12] = inet_checksum(bytes(ip)).to_bytes(2, "big")
    path = os.path.join(workdir, "selfcheck.pcap")
    write_pcap(path, [eth + b"\x08\x00" + bytes(ip) + icmp, eth + b"\x08\x06" + bytes([0, 1, 8, 0, 6])])
    check(tshark_count(path, BAD_CHECKSUM, PREFS) == 1, "tshark self-check: the bad-checksum filter finds a bad ICMP checksum")
    check(tshark_count(path, MALFORMED, PREFS) == 1, "tshark self-check: the malformed filter finds a truncated ARP")


def body():
    ok, why = can_make_namespaces()
    if not ok:
        print(f"SKIP: {why}")
        sys.exit(SKIP)
    if len(sys.argv) != 3:
        raise Failure("usage: l2l3.py USTACK_EXE NETNS_SH")
    exe, netns_sh = sys.argv[1], sys.argv[2]
    need_tools("ip", "ping", "tshark")
    pid = os.getpid()
    name = f"ustl{pid % 1000000}"
    subnet = 1 + pid % 250
    prefix = f"ustack-l2l3-{pid}"

    with Workdir() as wd, Netns(netns_sh, name, subnet) as ns:
        ghost = ns.peer_ip.rsplit(".", 1)[0] + f".{GHOST_HOST}"
        capture = os.path.join(wd.path, "capture.pcap")
        stats_json = os.path.join(wd.path, "stats.json")
        u = Ustack(exe, [f"--vdev=net_af_packet0,iface={ns.host_if}", f"--file-prefix={prefix}"],
                   ["--ip", f"{ns.ustack_ip}/{ns.prefix}", "--pcap-out", capture, "--stats-json", stats_json,
                    "--ping", f"{ns.peer_ip}:{USTACK_PINGS}", "--ping", f"{ghost}:{GHOST_PINGS}"], wd.path)
        try:
            u.start()
            m = u.wait_for(r"^ready: \S+ mac ([0-9a-f:]{17})", 30)
            mac = m.group(1)
            print(f"ustack is up, mac {mac}", flush=True)

            # ARP: forget whatever the kernel learnt from ustack's own traffic,
            # so the first ping makes the kernel ask.
            ns.exec(["ip", "neigh", "flush", "dev", ns.peer_if], check_rc=False)
            p = ns.exec(["ping", "-c", str(KERNEL_PINGS), "-i", "0.2", "-W", "2", ns.ustack_ip], timeout=30,
                        check_rc=False)
            sent, got = ping_counts(p.stdout)
            check(sent == KERNEL_PINGS and got == KERNEL_PINGS, f"kernel ping -c {KERNEL_PINGS}: {got}/{sent} replies")
            neigh = ns.exec(["ip", "neigh", "show", ns.ustack_ip, "dev", ns.peer_if]).stdout.strip()
            print(f"ip neigh: {neigh}", flush=True)
            check(re.search(rf"lladdr {mac}\b", neigh) is not None, "the kernel's neighbour entry has ustack's MAC")
            check(re.search(r"\b(REACHABLE|STALE|DELAY|PROBE)\b", neigh) is not None,
                  "the kernel's neighbour entry is resolved (REACHABLE/STALE/DELAY/PROBE)")

            p = ns.exec(["ping", "-c", str(LARGE_PINGS), "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", ns.ustack_ip],
                        timeout=30, check_rc=False)
            sent, got = ping_counts(p.stdout)
            check(sent == LARGE_PINGS and got == LARGE_PINGS, f"kernel ping -s 1472 -M do: {got}/{sent} replies")

            p = ns.exec(["ping", "-f", "-q", "-c", str(FLOOD_PINGS), "-w", "30", ns.ustack_ip], timeout=60,
                        check_rc=False)
            sent, got = ping_counts(p.stdout)
            check(sent == FLOOD_PINGS and got == FLOOD_PINGS, f"kernel flood ping -c {FLOOD_PINGS}: {got}/{sent} replies")

            m = u.wait_for(rf"^ping {re.escape(ns.peer_ip)}: (\d+) sent, (\d+) received", 20)
            check(m.group(1) == str(USTACK_PINGS) and m.group(2) == str(USTACK_PINGS),
                  f"ustack --ping {ns.peer_ip}: {m.group(2)}/{m.group(1)} replies")
            rtts = re.findall(rf"^ping {re.escape(ns.peer_ip)}: seq=\d+ bytes=\d+ rtt=([0-9.]+) ms", u.text(), re.M)
            check(len(rtts) == USTACK_PINGS, f"ustack printed {len(rtts)} RTT lines")

            m = u.wait_for(rf"^ping {re.escape(ghost)}: (\d+) sent, (\d+) received", 20)
            check(m.group(2) == "0", f"ustack --ping {ghost} (nobody there): {m.group(2)}/{m.group(1)} replies")
            # ARP gives up after the first request and 3 retries, 1 s apart.
            deadline = time.monotonic() + 15
            failed = 0
            while time.monotonic() < deadline:
                try:
                    failed = (telemetry(prefix, "/ustack/stats") or {}).get("arp_resolve_failed", 0)
                except (OSError, ValueError) as e:
                    raise Failure(f"telemetry /ustack/stats: {e}")
                if failed >= 1:
                    break
                time.sleep(0.2)
            check(failed >= 1, f"telemetry /ustack/stats: arp_resolve_failed = {failed}")

            u.signal(signal.SIGUSR1)
            u.wait_for(r"^stats t=\S+ lcore\d+/q0 rx=\d+ tx=\d+ drop=\d+ \| port\d+ ipackets=\d+", 10)
            check(True, "SIGUSR1 printed a stats line")

            status = u.stop()
            check(status == 0, f"ustack exit status after SIGINT: {status}")
            check("\nstopped\n" in u.text(), "ustack logged a clean stop")
            err = open(u.err_path).read().strip()
            check(err == "", f"nothing on ustack's stderr ({err[:200]!r})")
        except Failure:
            wd.failed = True
            u.dump()
            raise
        finally:
            u.kill()
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)

        try:
            p = run(["/usr/bin/python3", "-m", "json.tool", stats_json], check_rc=False)
            check(p.returncode == 0, "the stats JSON is valid (python3 -m json.tool)")
            doc = json.load(open(stats_json))
            totals = doc["totals"]
            pings_in = KERNEL_PINGS + LARGE_PINGS + FLOOD_PINGS
            check(totals["icmp_rx_echo_request"] >= pings_in,
                  f"icmp_rx_echo_request = {totals['icmp_rx_echo_request']} >= {pings_in}")
            check(totals["icmp_tx_echo_reply"] >= pings_in,
                  f"icmp_tx_echo_reply = {totals['icmp_tx_echo_reply']} >= {pings_in}")
            check(totals["icmp_rx_echo_reply"] == USTACK_PINGS, f"icmp_rx_echo_reply = {totals['icmp_rx_echo_reply']}")
            check(totals["arp_resolve_failed"] >= 1, f"arp_resolve_failed = {totals['arp_resolve_failed']}")
            check(totals["arp_drop_resolve_timeout"] >= 1,
                  f"arp_drop_resolve_timeout = {totals['arp_drop_resolve_timeout']}")
            check(doc["drops"]["arp_drop_resolve_timeout"] == totals["arp_drop_resolve_timeout"],
                  "drops by reason include arp_drop_resolve_timeout")
            check(doc["protocols"]["icmp"]["icmp_rx_echo_request"] == totals["icmp_rx_echo_request"],
                  "the icmp group holds icmp_rx_echo_request")
            port = doc["ports"][0]
            check(port["ipackets"] >= pings_in and port["opackets"] >= pings_in,
                  f"port stats: ipackets {port['ipackets']}, opackets {port['opackets']}")
            lc = doc["lcores"][0]
            check(lc["arp_table_size"] is not None and lc["arp_table_size"] >= 1,
                  f"lcore 0 ARP table size {lc['arp_table_size']}")

            tshark_self_check(wd.path)
            n_all = tshark_count(capture, "frame", PREFS)
            n_req = tshark_count(capture, "icmp.type == 8", PREFS)
            n_ip = tshark_count(capture, "ip", PREFS)
            n_ip_good = tshark_count(capture, 'ip.checksum.status == "Good"', PREFS)
            n_icmp = tshark_count(capture, "icmp", PREFS)
            n_icmp_good = tshark_count(capture, 'icmp.checksum.status == "Good"', PREFS)
            print(f"capture: {n_all} frames, {n_ip} IPv4, {n_icmp} ICMP, {n_req} echo requests", flush=True)
            check(n_req >= pings_in + USTACK_PINGS, f"the capture holds {n_req} echo requests")
            check(n_ip > 0 and n_ip_good == n_ip, f"every IPv4 header checksum verified good ({n_ip_good}/{n_ip})")
            check(n_icmp > 0 and n_icmp_good == n_icmp, f"every ICMP checksum verified good ({n_icmp_good}/{n_icmp})")
            check(tshark_count(capture, BAD_CHECKSUM, PREFS) == 0, "no bad checksum in the capture")
            check(tshark_count(capture, MALFORMED, PREFS) == 0, "no malformed packet in the capture")
            check(tshark_count(capture, SERIOUS, PREFS) == 0, "no tshark expert warning or error in the capture")
            check(tshark_count(capture, f"arp.opcode == 2 && arp.src.hw_mac == {mac}", PREFS) >= 1,
                  "the capture holds ustack's ARP reply")
        except Failure:
            wd.failed = True
            raise


if __name__ == "__main__":
    main(body)
