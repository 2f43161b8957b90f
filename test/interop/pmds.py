#!/usr/bin/python3
"""interop-pmds: the ethdev driver on PMDs other than net_af_packet.

    pmds.py USTACK_EXE

One sub-case per PMD, each printing its own "ok:" lines and a result line
("PMD net_x: ok", "PMD net_x: FAIL: ...", "PMD net_x: SKIP: ..."):

  net_tap    DPDK creates a kernel tap interface in a holding namespace (ustack
             runs there, so the tap never appears in the root namespace); once
             ustack is up the tap is moved into a second, fresh namespace
             where the kernel gets an address on it. The kernel pings ustack
             (ARP + echo) and ustack pings the kernel (--ping): DPDK keeps
             working after the move.
  net_pcap   rx_pcap is crafted with scapy: an ARP request for ustack, echo
             requests, and three frames that must go unanswered (an ARP
             request and an echo request for another address, an echo
             request with a bad ICMP checksum). tx_pcap must hold exactly the
             ARP reply and one echo reply per request with the same id, seq
             and payload and valid checksums.
  net_ring   --vdev=net_ring0 alone makes one ring per queue that is both the
             RX and the TX ring: what ustack sends comes back to it. No peer
             can be attached from the command line (that needs
             rte_eth_from_rings() in the process), so the check is that
             ustack starts on it, reports the port, gets every frame it sent
             back, and exits 0 on SIGINT with the stats JSON written.
  net_memif  two ustack processes (role=server / role=client on one socket,
             distinct --file-prefix): the client pings the server. The DPDK
             22.11 memif PMD unmaps a peer's rings in its control thread while
             the data path may still be reading them (seen here as a SIGSEGV
             in eth_memif_rx in about 1 run in 20 when the peer goes away), so
             the server is frozen (SIGSTOP) before the client stops and then
             killed; its side is checked by telemetry while it runs.

Exit status: 77 when not root or without network namespaces, 0 when every
sub-case that was not skipped passed, 1 otherwise. Names are PID-based and
everything is cleaned up on any exit (also on SIGTERM from meson's timeout).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import (SKIP, Failure, Ustack, Workdir, can_make_namespaces, check, inet_checksum,  # noqa: E402
                         need_tools, ping_counts, run, telemetry)

KERNEL_PINGS = 3
USTACK_PINGS = 4  # at most ARP's pending queue (4): none is dropped while the kernel side is being set up
PCAP_ECHOES = 5
MEMIF_PINGS = 5


class Skip(Exception):
    pass


def dpdk_rundir_cleanup(prefix):
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Failure(f"stats JSON {path}: {e}")


def stderr_errors(u):
    """ustack's own error lines (DPDK's drivers may log harmless notes on stderr)."""
    with open(u.err_path) as f:
        return [line for line in f.read().splitlines() if line.startswith("ustack:")]


def wait_port(u, want_driver):
    m = u.wait_for(r"^port \d+ \((\S+)\): mac ([0-9a-f:]{17})", 30)
    check(m.group(1) == want_driver, f"ustack reports the port: driver {m.group(1)}, mac {m.group(2)}")
    u.wait_for(r"^ready: ", 30)
    return m.group(2)


def stop_clean(u):
    status = u.stop()
    check(status == 0, f"exit status after SIGINT: {status}")
    check("\nstopped\n" in u.text(), "ustack logged a clean stop")
    errs = stderr_errors(u)
    check(not errs, f"no ustack error on stderr ({errs[:2]})")


# --- net_tap ---------------------------------------------------------------

def case_tap(exe, wd, pid):
    if not os.path.exists("/dev/net/tun"):
        raise Skip("no /dev/net/tun (modprobe tun)")
    need_tools("ip", "ping")
    tag = pid % 100000
    holder, peer, tap = f"ustph{tag}", f"ustpk{tag}", f"ustpt{tag}"
    n = 1 + pid % 250
    ustack_ip, kernel_ip = f"10.96.{n}.2", f"10.96.{n}.1"
    kernel_mac = f"02:75:74:{(pid >> 8) & 0xff:02x}:{pid & 0xff:02x}:01"
    prefix = f"ustack-pmds-tap-{pid}"
    stats_json = os.path.join(wd, "tap.json")
    u = Ustack(exe, [f"--vdev=net_tap0,iface={tap}", f"--file-prefix={prefix}"],
               ["--ip", f"{ustack_ip}/24", "--ping", f"{kernel_ip}:{USTACK_PINGS}", "--stats-json", stats_json],
               wd, name="tap", wrap=["ip", "netns", "exec", holder])
    made = []
    try:
        for ns in (holder, peer):
            run(["ip", "netns", "add", ns])
            made.append(ns)
            # Namespace-local: no IPv6 chatter on the tap in either namespace.
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"], check_rc=False)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        u.start()
        mac = wait_port(u, "net_tap")
        check(run(["ip", "-n", holder, "link", "show", tap], check_rc=False).returncode == 0,
              f"DPDK created the kernel interface {tap} (in ustack's namespace {holder})")

        run(["ip", "-n", holder, "link", "set", "dev", tap, "netns", peer])
        # net_tap gives the kernel side the PMD's own MAC; the stack drops ARP
        # that claims to come from its own address, so the kernel gets another.
        run(["ip", "-n", peer, "link", "set", "dev", tap, "address", kernel_mac])
        run(["ip", "netns", "exec", peer, "sysctl", "-qw", f"net.ipv6.conf.{tap}.disable_ipv6=1"], check_rc=False)
        run(["ip", "-n", peer, "addr", "add", f"{kernel_ip}/24", "dev", tap])
        run(["ip", "-n", peer, "link", "set", "dev", tap, "up"])
        check(run(["ip", "-n", holder, "link", "show", tap], check_rc=False).returncode != 0 and
              run(["ip", "-n", peer, "link", "show", tap], check_rc=False).returncode == 0,
              f"{tap} moved to namespace {peer} ({kernel_ip}/24, mac {kernel_mac})")
        check(u.proc.poll() is None, "ustack still running after the move")

        run(["ip", "-n", peer, "neigh", "flush", "dev", tap], check_rc=False)
        p = run(["ip", "netns", "exec", peer, "ping", "-c", str(KERNEL_PINGS), "-i", "0.2", "-W", "2", ustack_ip],
                timeout=30, check_rc=False)
        sent, got = ping_counts(p.stdout)
        check(sent == KERNEL_PINGS and got == KERNEL_PINGS,
              f"kernel ping -c {KERNEL_PINGS} {ustack_ip}: {got}/{sent} replies")
        neigh = run(["ip", "-n", peer, "neigh", "show", ustack_ip, "dev", tap]).stdout.strip()
        check(re.search(rf"lladdr {mac}\b", neigh) is not None,
              f"the kernel's neighbour entry has ustack's MAC ({neigh})")

        m = u.wait_for(rf"^ping {re.escape(kernel_ip)}: (\d+) sent, (\d+) received", 20)
        check(m.group(1) == m.group(2) == str(USTACK_PINGS),
              f"ustack --ping {kernel_ip}: {m.group(2)}/{m.group(1)} replies")

        stop_clean(u)
        doc = read_json(stats_json)
        port, totals = doc["ports"][0], doc["totals"]
        check(port["driver"] == "net_tap", f"JSON port driver {port['driver']} (link after the move: {port['link']})")
        check(totals["arp_tx_reply"] >= 1,
              f"ustack answered the kernel's ARP (arp_tx_reply = {totals['arp_tx_reply']})")
        check(totals["icmp_tx_echo_reply"] >= KERNEL_PINGS, f"icmp_tx_echo_reply = {totals['icmp_tx_echo_reply']}")
        check(totals["icmp_rx_echo_reply"] == USTACK_PINGS, f"icmp_rx_echo_reply = {totals['icmp_rx_echo_reply']}")
    except Failure:
        u.dump()
        raise
    finally:
        u.kill()  # closing the tap's file descriptor destroys the interface
        for ns in reversed(made):
            run(["ip", "-n", ns, "link", "del", tap], check_rc=False)
            run(["ip", "netns", "del", ns], check_rc=False)
        dpdk_rundir_cleanup(prefix)


# --- net_pcap --------------------------------------------------------------

def case_pcap(exe, wd, pid):
    try:
        from scapy.all import ARP, ICMP, IP, Ether, Raw, rdpcap, wrpcap
    except ImportError:
        raise Failure("scapy is missing for /usr/bin/python3: apt-get install python3-scapy")
    n = 1 + pid % 250
    ustack_ip, peer_ip, other_ip = f"10.93.{n}.2", f"10.93.{n}.1", f"10.93.{n}.77"
    ustack_mac = f"02:75:70:{(pid >> 8) & 0xff:02x}:{pid & 0xff:02x}:02"
    peer_mac = f"02:75:70:{(pid >> 8) & 0xff:02x}:{pid & 0xff:02x}:01"
    ident = 0x5000 + pid % 0x1000
    rx_path, tx_path = os.path.join(wd, "pcap-in.pcap"), os.path.join(wd, "pcap-out.pcap")
    stats_json = os.path.join(wd, "pcap.json")
    prefix = f"ustack-pmds-pcap-{pid}"

    def payload(seq):
        return bytes((seq * 7 + i) & 0xff for i in range(16 + 8 * seq))

    def echo(dst_ip, seq):
        return (Ether(src=peer_mac, dst=ustack_mac) / IP(src=peer_ip, dst=dst_ip, id=seq) /
                ICMP(type=8, id=ident, seq=seq) / Raw(payload(seq)))

    frames = [Ether(src=peer_mac, dst="ff:ff:ff:ff:ff:ff") /
              ARP(op=1, hwsrc=peer_mac, psrc=peer_ip, hwdst="00:00:00:00:00:00", pdst=ustack_ip)]
    frames += [echo(ustack_ip, s) for s in range(1, PCAP_ECHOES + 1)]
    frames.append(Ether(src=peer_mac, dst="ff:ff:ff:ff:ff:ff") /
                  ARP(op=1, hwsrc=peer_mac, psrc=peer_ip, hwdst="00:00:00:00:00:00", pdst=other_ip))
    frames.append(echo(other_ip, 100))  # not our address
    bad = echo(ustack_ip, 101)
    bad[ICMP].chksum = 0x1234  # a wrong checksum (the right one is anything but this, checked below)
    frames.append(bad)
    check(ICMP(bytes(echo(ustack_ip, 101)[ICMP])).chksum != 0x1234, "the bad-checksum frame really has a bad checksum")
    wrpcap(rx_path, frames)

    u = Ustack(exe, [f"--vdev=net_pcap0,rx_pcap={rx_path},tx_pcap={tx_path}", f"--file-prefix={prefix}"],
               ["--ip", f"{ustack_ip}/24", "--mac", ustack_mac, "--duration", "1.5", "--stats-json", stats_json],
               wd, name="pcap")
    try:
        u.start()
        wait_port(u, "net_pcap")
        try:
            status = u.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise Failure("ustack did not stop within 30 s of --duration 1.5")
        check(status == 0, f"exit status after --duration: {status}")
        check("duration reached, stopping" in u.text() and "\nstopped\n" in u.text(), "ustack stopped by --duration")
        errs = stderr_errors(u)
        check(not errs, f"no ustack error on stderr ({errs[:2]})")

        out = list(rdpcap(tx_path))
        for p in out:
            print(f"tx_pcap: {p.summary()}", flush=True)
        foreign = [p.summary() for p in out if p[Ether].src != ustack_mac]
        check(out and not foreign, f"tx_pcap holds {len(out)} frames, all from ustack's MAC ({foreign[:2]})")
        replies = [p for p in out if ARP in p and p[ARP].op == 2]
        check(len(replies) == 1, f"exactly one ARP reply (got {len(replies)})")
        a = replies[0]
        check(a[Ether].dst == peer_mac and a[ARP].hwsrc == ustack_mac and a[ARP].psrc == ustack_ip and
              a[ARP].hwdst == peer_mac and a[ARP].pdst == peer_ip,
              f"ARP reply: {a[ARP].psrc} is at {a[ARP].hwsrc}, to {a[ARP].pdst}/{a[ARP].hwdst}")
        echoes = [p for p in out if ICMP in p and p[ICMP].type == 0]
        check(len(echoes) == PCAP_ECHOES, f"{PCAP_ECHOES} echo replies (got {len(echoes)}), none for the three decoys")
        seen = set()
        for p in echoes:
            ip, icmp = p[IP], p[ICMP]
            seq = icmp.seq
            raw_ip = bytes(ip)
            ihl = (raw_ip[0] & 0x0F) * 4
            check(p[Ether].dst == peer_mac and ip.src == ustack_ip and ip.dst == peer_ip and icmp.code == 0 and
                  icmp.id == ident and 1 <= seq <= PCAP_ECHOES and bytes(icmp.payload) == payload(seq),
                  f"echo reply seq {seq}: addresses, id {icmp.id:#x} and {len(bytes(icmp.payload))}-byte payload match")
            check(inet_checksum(raw_ip[:ihl]) == 0 and inet_checksum(raw_ip[ihl:ip.len]) == 0,
                  f"echo reply seq {seq}: IPv4 and ICMP checksums valid")
            seen.add(seq)
        check(seen == set(range(1, PCAP_ECHOES + 1)), f"one reply per request (seqs {sorted(seen)})")

        doc = read_json(stats_json)
        t = doc["totals"]
        check(doc["ports"][0]["driver"] == "net_pcap", f"JSON port driver {doc['ports'][0]['driver']}")
        # The echo for another address stops at IPv4, the bad checksum before the echo is counted.
        check(t["icmp_rx_echo_request"] == PCAP_ECHOES and t["icmp_tx_echo_reply"] == PCAP_ECHOES,
              f"icmp_rx_echo_request = {t['icmp_rx_echo_request']}, icmp_tx_echo_reply = {t['icmp_tx_echo_reply']}")
        check(t["icmp_drop_bad_checksum"] == 1 and t["ipv4_drop_not_for_us"] == 1 and t["arp_drop_not_for_us"] == 1,
              "the decoys are counted: icmp_drop_bad_checksum, ipv4_drop_not_for_us, arp_drop_not_for_us = 1 each")
    except Failure:
        u.dump()
        raise
    finally:
        u.kill()
        dpdk_rundir_cleanup(prefix)


# --- net_ring --------------------------------------------------------------

def case_ring(exe, wd, pid):
    n = 1 + pid % 250
    prefix = f"ustack-pmds-ring-{pid}"
    stats_json = os.path.join(wd, "ring.json")
    # Pinging a neighbour makes ustack send ARP requests (1 s apart) that come
    # straight back on the ring; nobody can answer them.
    u = Ustack(exe, ["--vdev=net_ring0", f"--file-prefix={prefix}"],
               ["--ip", f"10.95.{n}.2/24", "--ping", f"10.95.{n}.1:2", "--stats-json", stats_json], wd, name="ring")
    try:
        u.start()
        wait_port(u, "net_ring")
        time.sleep(1.5)  # the first ARP retry goes out at 1 s
        stop_clean(u)
        doc = read_json(stats_json)
        port, t = doc["ports"][0], doc["totals"]
        check(port["driver"] == "net_ring", f"JSON port driver {port['driver']}")
        check(t["eth_tx_packets"] >= 2, f"ustack sent {t['eth_tx_packets']} frames (gratuitous ARP, ARP requests)")
        check(t["eth_rx_packets"] == t["eth_tx_packets"] and t["arp_rx_request"] == t["arp_tx_request"],
              f"every frame came back on the ring: rx {t['eth_rx_packets']} / tx {t['eth_tx_packets']}, "
              f"ARP requests rx {t['arp_rx_request']} / tx {t['arp_tx_request']}")
        check(port["ipackets"] == port["opackets"] == t["eth_tx_packets"],
              f"port counters agree: ipackets {port['ipackets']}, opackets {port['opackets']}")
    except Failure:
        u.dump()
        raise
    finally:
        u.kill()
        dpdk_rundir_cleanup(prefix)


# --- net_memif -------------------------------------------------------------

def case_memif(exe, wd, pid):
    n = 1 + pid % 250
    server_ip, client_ip = f"10.94.{n}.1", f"10.94.{n}.2"
    sock = os.path.join(wd, "memif.sock")  # DPDK 22.11 default: an abstract socket by this name
    cpus = sorted(os.sched_getaffinity(0))
    lc_server, lc_client = (cpus[0], cpus[1]) if len(cpus) >= 2 else (cpus[0], cpus[0])
    prefixes = (f"ustack-pmds-memifs-{pid}", f"ustack-pmds-memifc-{pid}")
    stats_json = os.path.join(wd, "memif-client.json")
    server = Ustack(exe, ["-l", str(lc_server), f"--vdev=net_memif0,role=server,socket={sock}",
                          f"--file-prefix={prefixes[0]}"],
                    ["--ip", f"{server_ip}/24"], wd, name="memif-server")
    client = Ustack(exe, ["-l", str(lc_client), f"--vdev=net_memif0,role=client,socket={sock}",
                          f"--file-prefix={prefixes[1]}"],
                    ["--ip", f"{client_ip}/24", "--ping", f"{server_ip}:{MEMIF_PINGS}", "--stats-json", stats_json],
                    wd, name="memif-client")
    try:
        server.start()
        wait_port(server, "net_memif")  # ready only after ~3 s: the link stays down until a client connects
        client.start()  # a client started before the server's socket exists fails to start its port
        wait_port(client, "net_memif")
        m = client.wait_for(rf"^ping {re.escape(server_ip)}: (\d+) sent, (\d+) received", 20)
        check(m.group(1) == m.group(2) == str(MEMIF_PINGS),
              f"client --ping {server_ip}: {m.group(2)}/{m.group(1)} replies")
        rtts = re.findall(rf"^ping {re.escape(server_ip)}: seq=\d+ bytes=\d+ rtt=", client.text(), re.M)
        check(len(rtts) == MEMIF_PINGS, f"client printed {len(rtts)} RTT lines")
        try:
            st = telemetry(prefixes[0], "/ustack/stats") or {}
        except (OSError, ValueError) as e:
            raise Failure(f"server telemetry /ustack/stats: {e}")
        check(st.get("icmp_rx_echo_request", 0) == MEMIF_PINGS and st.get("icmp_tx_echo_reply", 0) == MEMIF_PINGS,
              f"server telemetry: icmp_rx_echo_request {st.get('icmp_rx_echo_request')}, "
              f"icmp_tx_echo_reply {st.get('icmp_tx_echo_reply')}, arp_tx_reply {st.get('arp_tx_reply')}")

        # Freeze the server so that no thread of it handles the disconnect
        # while its data path polls (see the module docstring), stop the client
        # cleanly, then kill the frozen server.
        server.signal(signal.SIGSTOP)
        stop_clean(client)
        server.kill()
        print("note: the memif server was frozen and killed, not stopped (DPDK 22.11 memif disconnect race)",
              flush=True)
        doc = read_json(stats_json)
        t = doc["totals"]
        check(doc["ports"][0]["driver"] == "net_memif", f"client JSON port driver {doc['ports'][0]['driver']}")
        check(t["icmp_tx_echo_request"] == MEMIF_PINGS and t["icmp_rx_echo_reply"] == MEMIF_PINGS,
              f"client icmp_tx_echo_request {t['icmp_tx_echo_request']}, icmp_rx_echo_reply {t['icmp_rx_echo_reply']}")
    except Failure:
        server.dump()
        client.dump()
        raise
    finally:
        client.kill()
        server.kill()
        for p in prefixes:
            dpdk_rundir_cleanup(p)


CASES = [("net_tap", case_tap), ("net_pcap", case_pcap), ("net_ring", case_ring), ("net_memif", case_memif)]


def on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: unwind through every finally: block.
    raise SystemExit(1)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    ok, why = can_make_namespaces()
    if not ok:
        print(f"SKIP: {why}")
        sys.exit(SKIP)
    if len(sys.argv) != 2:
        print("usage: pmds.py USTACK_EXE")
        sys.exit(1)
    exe = os.path.abspath(sys.argv[1])
    pid = os.getpid()
    only = set(os.environ.get("PMDS_ONLY", "").split(",")) - {""}  # e.g. PMDS_ONLY=net_tap,net_pcap
    results = []
    with Workdir() as wd:
        for name, fn in CASES:
            if only and name not in only:
                continue
            print(f"=== {name}", flush=True)
            t0 = time.monotonic()
            try:
                fn(exe, wd.path, pid)
                results.append((name, "ok", ""))
            except Skip as e:
                results.append((name, "SKIP", str(e)))
            except Failure as e:
                results.append((name, "FAIL", str(e)))
                wd.failed = True
            except Exception as e:  # a timeout, a tool that is missing: this sub-case failed
                results.append((name, "FAIL", f"{type(e).__name__}: {e}"))
                wd.failed = True
            status, why = results[-1][1], results[-1][2]
            line = f"PMD {name}: {status}" + (f": {why}" if why else "") + f" ({time.monotonic() - t0:.1f} s)"
            print(line, flush=True)
    print("--- summary", flush=True)
    for name, status, why in results:
        print(f"PMD {name}: {status}" + (f": {why}" if why else ""), flush=True)
    failed = [r for r in results if r[1] == "FAIL"]
    print("FAIL" if failed else "PASS", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
