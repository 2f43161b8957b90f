#!/usr/bin/python3
"""ustack-replay end to end: a capture crafted with scapy goes in, the stack's
output capture is checked packet by packet, run twice for determinism, and
again with seeded faults injected on the input.

usage: replay_test.py PATH/TO/ustack-replay
"""
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile

from scapy.all import ARP, ICMP, IP, Ether, Raw, rdpcap, wrpcap  # Debian's python3-scapy

REPLAY = sys.argv[1]
OUR_MAC, OUR_IP = "02:00:00:00:00:02", "10.0.0.2"
PEER_MAC, PEER_IP = "02:00:00:00:00:01", "10.0.0.1"
STRANGER_MAC, STRANGER_IP = "02:00:00:00:00:03", "10.0.0.3"
T0 = 1_700_000_000.0
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def make_input(path):
    pkts = []
    arp = Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER_IP, pdst=OUR_IP)
    arp.time = T0
    pkts.append(arp)
    for seq in range(5):
        p = Ether(src=PEER_MAC, dst=OUR_MAC) / IP(src=PEER_IP, dst=OUR_IP, id=100 + seq) / \
            ICMP(type=8, id=0x77, seq=seq) / Raw(bytes((seq * 13 + i) & 0xff for i in range(56)))
        p.time = T0 + 0.001 + seq * 0.010
        pkts.append(p)
    bad = Ether(bytes(Ether(src=PEER_MAC, dst=OUR_MAC) / IP(src=PEER_IP, dst=OUR_IP, chksum=0x1234) / ICMP()))
    bad.time = T0 + 0.100
    pkts.append(bad)
    trunc = Ether(bytes(Ether(src=PEER_MAC, dst=OUR_MAC) / IP(src=PEER_IP, dst=OUR_IP) / ICMP() / Raw(b"x" * 40))[:30])
    trunc.time = T0 + 0.110
    pkts.append(trunc)
    # A ping from a host we never heard an ARP from: the reply waits for ARP,
    # which is never answered, so the stack retries on its timer and gives up.
    st = Ether(src=STRANGER_MAC, dst=OUR_MAC) / IP(src=STRANGER_IP, dst=OUR_IP) / ICMP(type=8, id=9, seq=1) / Raw(b"hi")
    st.time = T0 + 0.200
    pkts.append(st)
    wrpcap(path, pkts)


def run(inp, out, *extra):
    r = subprocess.run([REPLAY, "--in", inp, "--out", out, "--ip", OUR_IP + "/24", "--mac", OUR_MAC,
                        "--drain", "5", *extra], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
    return r


def counter(summary, name):
    m = re.search(r"^\s+%s\s+(\d+)$" % re.escape(name), summary, re.M)
    return int(m.group(1)) if m else 0


def main():
    d = tempfile.mkdtemp(prefix="ustack-replay-")
    try:
        inp, out1, out2 = (os.path.join(d, n) for n in ("in.pcap", "out1.pcap", "out2.pcap"))
        make_input(inp)
        r1 = run(inp, out1)
        check(r1.returncode == 0, "replay exits 0")
        r2 = run(inp, out2)
        check(filecmp.cmp(out1, out2, shallow=False), "same input gives byte-identical output")

        out = rdpcap(out1)
        arps = [p for p in out if ARP in p]
        icmps = [p for p in out if ICMP in p]
        check(len(arps) >= 2 and arps[0][ARP].op == 1 and arps[0][ARP].psrc == OUR_IP and arps[0][ARP].pdst == OUR_IP,
              "first output is the gratuitous ARP announcement")
        replies = [p for p in arps if p[ARP].op == 2]
        check(len(replies) == 1 and replies[0][Ether].dst == PEER_MAC and replies[0][ARP].hwsrc == OUR_MAC
              and replies[0][ARP].pdst == PEER_IP, "one ARP reply to the peer, with our MAC")
        echo = [p for p in icmps if p[ICMP].type == 0 and p[IP].dst == PEER_IP]
        check(len(echo) == 5, "five echo replies to the peer (got %d)" % len(echo))
        for seq, p in enumerate(echo):
            want = bytes((seq * 13 + i) & 0xff for i in range(56))
            ok = p[ICMP].id == 0x77 and p[ICMP].seq == seq and bytes(p[Raw].load) == want
            rebuilt = Ether(bytes(p))
            del rebuilt[IP].chksum
            del rebuilt[ICMP].chksum
            rebuilt = Ether(bytes(rebuilt))
            ok = ok and rebuilt[IP].chksum == p[IP].chksum and rebuilt[ICMP].chksum == p[ICMP].chksum
            check(ok, "echo reply %d: id, seq, payload and both checksums exact" % seq)
            check(abs(float(p.time) - (T0 + 0.001 + seq * 0.010)) < 1e-6, "echo reply %d stamped at its request's time" % seq)
        stranger = [p for p in arps if p[ARP].op == 1 and p[ARP].pdst == STRANGER_IP]
        check(len(stranger) == 4, "ARP for the unknown sender: 1 request + 3 retries (got %d)" % len(stranger))
        gaps = [round(float(stranger[i + 1].time) - float(stranger[i].time), 3) for i in range(len(stranger) - 1)]
        check(all(abs(g - 1.0) < 0.002 for g in gaps), "ARP retries 1 s apart on the capture's clock: %s" % gaps)
        check(not any(p[IP].dst == STRANGER_IP for p in icmps), "no reply to the stranger without resolution")
        s = r1.stdout
        check(counter(s, "ipv4_drop_bad_checksum") == 1, "bad IP checksum counted")
        check(counter(s, "ipv4_drop_truncated") == 1, "truncated datagram counted")
        check(counter(s, "arp_resolve_failed") == 1, "failed resolution counted")
        check(counter(s, "arp_drop_resolve_timeout") == 1, "the waiting reply counted when resolution failed")

        if shutil.which("tshark"):
            t = subprocess.run(["tshark", "-r", out1, "-o", "ip.check_checksum:TRUE",
                                "-Y", "_ws.malformed || _ws.expert.severity >= warning"],
                               capture_output=True, text=True, timeout=60)
            check(t.returncode == 0 and t.stdout.strip() == "", "tshark finds no malformed packet or warning: %r" % t.stdout)

        # Seeded faults on the input: deterministic per seed, and visibly lossy.
        f1, f2, f3 = (os.path.join(d, n) for n in ("f1.pcap", "f2.pcap", "f3.pcap"))
        ra = run(inp, f1, "--drop", "0.4", "--seed", "1")
        rb = run(inp, f2, "--drop", "0.4", "--seed", "1")
        rc = run(inp, f3, "--drop", "0.4", "--seed", "2")
        check(ra.returncode == rb.returncode == rc.returncode == 0, "fault runs exit 0")
        check(filecmp.cmp(f1, f2, shallow=False), "same seed, same faults, same output")
        dropped = int(re.search(r"dropped (\d+)", ra.stdout).group(1))
        check(dropped > 0, "faults were injected (%d dropped)" % dropped)
        check(len(rdpcap(f1)) < len(out), "fewer packets out when input is dropped")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("%d check(s) failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
