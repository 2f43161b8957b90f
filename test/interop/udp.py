#!/usr/bin/python3
"""interop-udp: ustack's UDP, multicast and IGMPv3 against the Linux kernel.

    udp.py USTACK_EXE USTACK_REPLAY_EXE NETNS_SH

The kernel lives in a network namespace behind a veth pair; ustack drives the
near end through net_af_packet. Sections (UDP_SECTIONS=a,b,... runs a subset):

  echo    --udp-echo: Python sockets send datagrams of 1..1472 bytes and get
          each back byte-exact; nc -u and socat (when installed) too; a burst
          of BURST datagrams: every one that comes back is byte-exact and
          comes back once, and what ustack's echo counted adds up (in = out).
  mcast   --join G1:PORT and --join G2:PORT@PEER (SSM), with --pcap-out:
          - a kernel sender publishes FEED feed datagrams to each; ustack
            counts every one, no gap; G2's datagrams from a second address
            are not delivered (source filter), nor are a group nobody joined;
          - scapy-crafted IGMPv3 general, group-specific and group-and-source-
            specific queries are answered with the right records within Max
            Resp Time (timed on ustack's own capture);
          - on exit the leave (TO_IN {} for G1, BLOCK {PEER} for G2) is sent;
          - tshark decodes every IGMP message in the capture as IGMPv3
            membership reports, none malformed.
  send    --mcast-send G3:PORT --rate --size: a kernel receiver joined to G3
          receives every datagram ustack says it sent, in sequence, with the
          feed header and the pattern intact.
  replay  a kernel feed to G4, recorded with tcpdump in the namespace, goes
          through ustack-replay --join G4:PORT --join-dump: every datagram is
          delivered once, in order, payload byte-exact.
  multicore  two lcores, net_af_packet qpairs=2, eight joined groups fed by
          eight kernel sockets: the kernel's fanout spreads them over both
          queues, queue 1 moves multicast to queue 0 (which owns IGMP), and
          every group's datagrams arrive whole and in order.

Skips (77) when not root or without network namespaces. Needs tshark,
tcpdump and Debian's python3-scapy; nc and socat are used when present.
"""

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import (SKIP, Failure, Netns, Ustack, Workdir, can_make_namespaces, check, main,  # noqa: E402
                         need_tools, run, tshark_count)

PY = "/usr/bin/python3"
ECHO_PORT = 7
BURST = int(os.environ.get("UDP_BURST", "20000"))
FEED = 2000
MAGIC = 0x55535446
EAL = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf"]


def pattern(n):
    return bytes((7 * (i % 251) + i // 251) % 256 for i in range(n))


PAT = pattern(9000)


def feed_datagram(seq, size):
    return struct.pack("!IBBHQQ", MAGIC, 1, 0, 24, seq, time.time_ns()) + PAT[24:size]


def in_ns(ns, code, *args, timeout=120, background=False):
    """Runs Python `code` in the namespace; returns its last stdout line as JSON."""
    cmd = ["ip", "netns", "exec", ns.name, PY, "-c", code] + [str(a) for a in args]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p = run(cmd, timeout=timeout, check_rc=False)
    return result_of(p.returncode, p.stdout, p.stderr)


def result_of(rc, out, err):
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise Failure(f"namespace helper exited {rc} without a result: {err.strip()[-600:]}")


# --- kernel-side helpers (run inside the namespace) ---------------------------

ECHO_CLIENT = r"""
import json, random, socket, sys  # 33: SO_RCVBUFFORCE (not in the socket module)
ip, port, burst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)
s.settimeout(2)
rng = random.Random(7)
res = {"sizes": [], "exact": 0}
for n in [1, 2, 7, 64, 512, 1000, 1471, 1472]:
    data = bytes(rng.randrange(256) for _ in range(n))
    s.sendto(data, (ip, port))
    try:
        got, frm = s.recvfrom(4096)
    except socket.timeout:
        got, frm = b"", None
    res["sizes"].append([n, len(got), got == data, frm == (ip, port)])
    res["exact"] += got == data and frm == (ip, port)
# A burst: each datagram carries its index; its bytes follow from the index.
noise = bytes(rng.randrange(256) for _ in range(4096))
def body(i):
    n = 16 + (i * 131) % 1200
    k = (i * 7919) % 2048
    return i.to_bytes(4, "big") + noise[k:k + n - 4]
sent = 0
for i in range(burst):
    try:
        s.sendto(body(i), (ip, port))
        sent += 1
    except OSError:
        pass
s.settimeout(1.5)
seen, bad, dup = set(), 0, 0
while True:
    try:
        got = s.recv(4096)
    except socket.timeout:
        break
    i = int.from_bytes(got[:4], "big")
    if i >= burst or got != body(i):
        bad += 1
    elif i in seen:
        dup += 1
    else:
        seen.add(i)
res.update(burst_sent=sent, burst_back=len(seen), burst_bad=bad, burst_dup=dup)
print(json.dumps(res))
"""

FEED_SENDER = r"""
import json, socket, struct, sys, time
src, group, port, n, size0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
pat = bytes((7 * (i % 251) + i // 251) % 256 for i in range(9000))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.bind((src, 0))
for seq in range(n):
    size = size0 if size0 else 24 + (seq * 37) % 1400
    d = struct.pack("!IBBHQQ", 0x55535446, 1, 0, 24, seq, time.time_ns()) + pat[24:size]
    s.sendto(d, (group, port))
    if seq % 20 == 19:
        time.sleep(0.004)
print(json.dumps({"sent": n}))
"""

FEED_RECEIVER = r"""
import json, socket, struct, sys, time
local, group, port, quiet = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
pat = bytes((7 * (i % 251) + i // 251) % 256 for i in range(9000))
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
r.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)
r.bind((group, port))
r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(local))
print("joined", flush=True)
seqs, bad = [], 0
r.settimeout(15)
while True:
    try:
        d = r.recv(65536)
    except socket.timeout:
        break
    r.settimeout(quiet)
    magic, ver, flags, hlen, seq, ts = struct.unpack("!IBBHQQ", d[:24])
    if magic != 0x55535446 or hlen != 24 or d[24:] != pat[24:len(d)]:
        bad += 1
    seqs.append(seq)
print(json.dumps({"n": len(seqs), "bad": bad, "seqs_in_order": seqs == sorted(seqs),
                  "first": seqs[0] if seqs else None, "last": seqs[-1] if seqs else None,
                  "unique": len(set(seqs))}))
"""

QUERY_SENDER = r"""
import json, sys
from scapy.all import Ether, IP, IPOption_Router_Alert, sendp
from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mq
iface, src, dst, group, mrc = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
sources = sys.argv[6:]
g = [int(x) for x in dst.split(".")]
mac = "01:00:5e:%02x:%02x:%02x" % (g[1] & 0x7f, g[2], g[3])
q = (Ether(dst=mac) / IP(src=src, dst=dst, ttl=1, tos=0xc0, options=[IPOption_Router_Alert()]) /
     IGMPv3(type=0x11, mrcode=mrc) / IGMPv3mq(gaddr=group, qrv=2, qqic=125, srcaddrs=sources, numsrc=len(sources)))
sendp(q, iface=iface, verbose=False)
print(json.dumps({"sent": 1}))
"""


def stats_json(path):
    with open(path) as f:
        return json.load(f)


def udp_service(doc, kind, target):
    for s in doc["udp_services"]:
        if s["kind"] == kind and s["target"] == target:
            return s
    raise Failure(f"no {kind} {target} in the stats JSON")


def ustack_for(exe, ns, wd, name, app, pid):
    eal = EAL + [f"--file-prefix=ustudp{pid}{name}", f"--vdev=net_af_packet0,iface={ns.host_if}"]
    return Ustack(exe, eal, ["--ip", f"{ns.ustack_ip}/{ns.prefix}"] + app, wd.path, name=name)


# --- sections -----------------------------------------------------------------

def section_echo(exe, replay_exe, ns, wd, pid):
    js = os.path.join(wd.path, "echo.json")
    veth_drops0 = read_int(f"/sys/class/net/{ns.host_if}/statistics/rx_dropped")
    u = ustack_for(exe, ns, wd, "echo", ["--udp-echo", str(ECHO_PORT), "--stats-json", js], pid).start()
    try:
        u.wait_for(r"^ready:", 30)
        r = in_ns(ns, ECHO_CLIENT, ns.ustack_ip, ECHO_PORT, BURST, timeout=300)
        for n, got, exact, frm in r["sizes"]:
            check(exact and frm, f"echo of {n} bytes from python sockets: byte-exact from {ns.ustack_ip}:{ECHO_PORT} "
                                 f"(got {got})")
        if shutil.which("nc"):
            p = ns.exec(["bash", "-c", f"printf 'hello-nc' | timeout 5 nc -u -w1 {ns.ustack_ip} {ECHO_PORT}"],
                        check_rc=False)
            check(p.stdout == "hello-nc", f"nc -u: echoed 'hello-nc' (got {p.stdout!r})")
        if shutil.which("socat"):
            p = ns.exec(["bash", "-c", f"printf 'hello-socat' | timeout 5 socat -t1 - UDP:{ns.ustack_ip}:{ECHO_PORT}"],
                        check_rc=False)
            check(p.stdout == "hello-socat", f"socat: echoed 'hello-socat' (got {p.stdout!r})")
        else:
            print("note: socat not installed (scripts/install-deps.sh installs it); skipped")
        check(r["burst_bad"] == 0 and r["burst_dup"] == 0,
              f"burst: none of {r['burst_back']} datagrams back was corrupted or duplicated "
              f"(bad {r['burst_bad']}, dup {r['burst_dup']})")
        check(r["burst_back"] > 0, f"burst: {r['burst_back']} of {r['burst_sent']} came back")
        rc = u.stop()
        check(rc == 0, f"ustack exit status {rc}")
    finally:
        u.kill()
    doc = stats_json(js)
    e = udp_service(doc, "udp-echo", str(ECHO_PORT))
    sent = r["burst_sent"] + len(r["sizes"]) + 2
    check(e["datagrams_out"] + e["send_failed"] == e["datagrams_in"],
          f"echo stats add up: in {e['datagrams_in']} = out {e['datagrams_out']} + failed {e['send_failed']}")
    check(e["datagrams_out"] >= r["burst_back"], "the kernel got back no more than ustack sent")
    lost_in = sent - e["datagrams_in"]
    port = doc["ports"][0]
    t = doc["totals"]
    veth_drops = read_int(f"/sys/class/net/{ns.host_if}/statistics/rx_dropped") - veth_drops0
    print(f"burst: kernel sent {sent}, ustack echoed {e['datagrams_in']}, kernel got back {r['burst_back']}; "
          f"lost before ustack {lost_in} (veth rx_dropped {veth_drops}, port imissed {port['imissed']}; "
          f"net_af_packet does not report its ring's drops), ustack's own drops {doc['drops']['total']}")
    # What reached ustack is accounted for inside it: every frame the port
    # received went up the stack, and every UDP datagram was echoed or counted
    # as a drop by reason.
    check(t["eth_rx_packets"] == port["ipackets"], f"every frame received was processed ({t['eth_rx_packets']})")
    udp_drops = sum(v for k, v in t.items() if k.startswith("udp_drop"))
    check(t["udp_rx_datagrams"] == e["datagrams_in"] + udp_drops - t["udp_drop_truncated"] - t["udp_drop_bad_length"]
          - t["udp_drop_bad_checksum"],
          f"every datagram received was echoed or dropped by a counted reason ({t['udp_rx_datagrams']} = "
          f"{e['datagrams_in']} + {udp_drops})")
    check(e["queue_drops"] == t["udp_drop_queue_full"], "the echo socket's queue drops are the stack's")


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0


def igmp_reports(capture, our_ip):
    """[(time, [(rtype, group, [sources])])] for every IGMPv3 report ustack sent."""
    from scapy.all import IP, rdpcap
    from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mr
    out = []
    for p in rdpcap(capture):
        if IP in p and p[IP].src == our_ip and IGMPv3 in p and p[IGMPv3].type == 0x22 and IGMPv3mr in p:
            recs = [(r.rtype, r.maddr, sorted(r.srcaddrs or [])) for r in p[IGMPv3mr].records]
            out.append((float(p.time), recs))
    return out


def igmp_queries(capture, peer_ip):
    from scapy.all import IP, rdpcap
    from scapy.contrib.igmpv3 import IGMPv3
    return [float(p.time) for p in rdpcap(capture)
            if IP in p and p[IP].src == peer_ip and IGMPv3 in p and p[IGMPv3].type == 0x11]


def section_mcast(exe, replay_exe, ns, wd, pid):
    n = ns.n
    g1, g2, g_none = f"239.77.{n}.1", f"232.77.{n}.2", f"239.77.{n}.9"
    port = 5000
    other_src = f"10.99.{n}.3"
    ns.exec(["ip", "addr", "add", f"{other_src}/{ns.prefix}", "dev", ns.peer_if])
    js = os.path.join(wd.path, "mcast.json")
    cap = os.path.join(wd.path, "mcast.pcap")
    u = ustack_for(exe, ns, wd, "mcast", ["--join", f"{g1}:{port}", "--join", f"{g2}:{port}@{ns.peer_ip}",
                                          "--pcap-out", cap, "--stats-json", js], pid).start()
    try:
        u.wait_for(r"^ready:", 30)
        time.sleep(0.5)
        for src, grp in ((ns.peer_ip, g1), (ns.peer_ip, g2), (other_src, g2), (ns.peer_ip, g_none)):
            r = in_ns(ns, FEED_SENDER, src, grp, port, FEED, 0, timeout=120)
            check(r["sent"] == FEED, f"kernel sent {FEED} feed datagrams from {src} to {grp}:{port}")
        # Queries after the join's own retransmissions are over (about 1 s).
        time.sleep(2.5)
        queries = [  # (destination, group field, Max Resp Code, sources, records expected)
            ("224.0.0.1", "0.0.0.0", 20, [], [(2, g1, []), (1, g2, [ns.peer_ip])]),
            (g1, g1, 10, [], [(2, g1, [])]),
            (g2, g2, 10, [ns.peer_ip], [(1, g2, [ns.peer_ip])]),
        ]
        for dst, grp, mrc, srcs, _ in queries:
            in_ns(ns, QUERY_SENDER, ns.peer_if, ns.peer_ip, dst, grp, mrc, *srcs, timeout=60)
            time.sleep(mrc / 10 + 0.7)
        time.sleep(0.3)
        rc = u.stop()
        check(rc == 0, f"ustack exit status {rc}")
    finally:
        u.kill()
    doc = stats_json(js)
    j1 = udp_service(doc, "join", f"{g1}:{port}")
    j2 = udp_service(doc, "join", f"{g2}:{port}@{ns.peer_ip}")
    check(j1["datagrams_in"] == FEED and j1["feed"] == FEED and j1["missing"] == 0 and j1["late"] == 0,
          f"--join {g1}: all {FEED} feed datagrams, no gap ({j1})")
    check(j2["datagrams_in"] == FEED and j2["missing"] == 0,
          f"--join {g2}@{ns.peer_ip}: only the {FEED} from {ns.peer_ip} (not those from {other_src})")
    not_joined = doc["totals"]["ipv4_drop_multicast_not_joined"]
    check(not_joined >= 2 * FEED, f"G2 from {other_src} and {g_none} dropped as not joined ({not_joined})")

    # The capture: IGMP as tshark sees it.
    total = tshark_count(cap, "igmp")
    v3 = tshark_count(cap, f"igmp.version == 3 && igmp.type == 0x22 && ip.src == {ns.ustack_ip}")
    malformed = tshark_count(cap, "igmp && _ws.malformed")
    ours = tshark_count(cap, f"igmp && ip.src == {ns.ustack_ip}")
    check(malformed == 0, f"tshark: no malformed IGMP ({total} IGMP messages)")
    check(v3 == ours and v3 >= 4, f"tshark: every IGMP message ustack sent is an IGMPv3 report ({v3} of {ours})")
    ra = tshark_count(cap, f"igmp && ip.src == {ns.ustack_ip} && ip.opt.type == 148 && ip.ttl == 1")
    check(ra == ours, f"every report has TTL 1 and the Router Alert option ({ra} of {ours})")

    reports = igmp_reports(cap, ns.ustack_ip)
    qtimes = igmp_queries(cap, ns.peer_ip)
    check(len(qtimes) == 3, f"the capture holds the 3 queries ({len(qtimes)})")
    first = reports[0][1] if reports else []
    check((4, g1, []) in first, f"the first report joins {g1} (TO_EX {{}}): {first}")
    names = ["general", f"group-specific {g1}", f"group-and-source-specific {g2} {{{ns.peer_ip}}}"]
    for i, (tq, (dst, grp, mrc, srcs, want)) in enumerate(zip(qtimes, queries)):
        until = qtimes[i + 1] if i + 1 < len(qtimes) else float("inf")
        # Current-state records (types 1 and 2) answer queries; the leave's
        # state-change records at exit do not.
        answers = [(t, [x for x in recs if x[0] in (1, 2)]) for t, recs in reports if tq < t < until]
        answers = [(t, recs) for t, recs in answers if recs]
        got = [rec for _, recs in answers for rec in recs]
        for w in want:
            check(w in got, f"{names[i]} query: record {w} in the answer ({got})")
        late = [t - tq for t, _ in answers if t - tq > mrc / 10 + 0.05]
        check(answers and not late, f"{names[i]} query: answered within Max Resp Time {mrc / 10:.1f} s "
                                    f"(after {[round(t - tq, 3) for t, _ in answers]} s)")
    last = [rec for _, recs in reports[-3:] for rec in recs]
    check((3, g1, []) in last, f"on exit: TO_IN {{}} for {g1} (leave) in the last reports: {last}")
    check((6, g2, [ns.peer_ip]) in last, f"on exit: BLOCK {{{ns.peer_ip}}} for {g2} in the last reports: {last}")


def section_send(exe, replay_exe, ns, wd, pid):
    g3, port, rate, size, secs = f"239.77.{ns.n}.3", 5002, 1000, 300, 2
    recv = in_ns(ns, FEED_RECEIVER, ns.peer_ip, g3, port, 2.0, background=True)
    try:
        line = recv.stdout.readline()
        check(line.strip() == "joined", f"kernel receiver joined {g3} ({line.strip()!r})")
        js = os.path.join(wd.path, "send.json")
        u = ustack_for(exe, ns, wd, "send", ["--mcast-send", f"{g3}:{port}", "--rate", str(rate), "--size", str(size),
                                             "--duration", str(secs), "--stats-json", js], pid).start()
        try:
            rc = u.proc.wait(timeout=60)
            check(rc == 0, f"ustack --mcast-send exit status {rc}")
        finally:
            u.kill()
        out, err = recv.communicate(timeout=60)
        r = result_of(recv.returncode, out, err)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    s = udp_service(stats_json(js), "mcast-send", f"{g3}:{port}")
    check(s["datagrams_out"] >= rate * secs * 0.8, f"ustack published {s['datagrams_out']} datagrams in {secs} s "
                                                   f"at {rate}/s")
    check(r["n"] == s["datagrams_out"] and r["unique"] == r["n"] and r["first"] == 0
          and r["last"] == s["datagrams_out"] - 1 and r["seqs_in_order"],
          f"the kernel receiver got every one, in order: {r['n']} of {s['datagrams_out']} "
          f"(seq {r['first']}..{r['last']})")
    check(r["bad"] == 0, "every datagram had the feed header and the pattern intact")


def section_replay(exe, replay_exe, ns, wd, pid):
    g4, port, n = f"239.77.{ns.n}.4", 5004, 500
    cap = os.path.join(wd.path, "feed.pcap")
    tcpdump = subprocess.Popen(["ip", "netns", "exec", ns.name, "tcpdump", "-i", ns.peer_if, "-n", "-U", "--immediate-mode", "-B", "8192", "-w", cap,
                                f"udp and dst host {g4}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        # tcpdump says "listening on ..." once the capture is open.
        line = tcpdump.stderr.readline()
        check("listening" in line, f"tcpdump listening in the namespace ({line.strip()!r})")
        time.sleep(1.0)  # "listening" comes a moment before the filter takes packets
        r = in_ns(ns, FEED_SENDER, ns.peer_ip, g4, port, n, 0, timeout=120)
        check(r["sent"] == n, f"kernel sent {n} feed datagrams of varying size to {g4}:{port}")
        time.sleep(0.5)
    finally:
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=30)
    out_cap = os.path.join(wd.path, "feed-out.pcap")
    dump = os.path.join(wd.path, "feed.dump")
    p = run([replay_exe, "--in", cap, "--out", out_cap, "--ip", f"{ns.ustack_ip}/{ns.prefix}", "--no-announce",
             "--join", f"{g4}:{port}", "--join-dump", dump], timeout=120)
    print(p.stdout)
    recs = []
    with open(dump, "rb") as f:
        data = f.read()
    off = 0
    while off + 8 <= len(data):
        grp, prt, ln = struct.unpack("!IHH", data[off:off + 8])
        recs.append((grp, prt, data[off + 8:off + 8 + ln]))
        off += 8 + ln
    check(off == len(data), "the dump is whole records")
    check(len(recs) == n, f"ustack-replay delivered {len(recs)} of {n} datagrams")
    seqs = [struct.unpack("!Q", d[8:16])[0] for _, _, d in recs]
    check(seqs == list(range(n)), "each once, in the order sent")
    ok = all(len(d) == 24 + (i * 37) % 1400 and d[24:] == PAT[24:len(d)] and d[:8] == struct.pack("!IBBH", MAGIC, 1, 0, 24)
             for i, (_, _, d) in enumerate(recs))
    check(ok, "every payload byte-exact (length, header, pattern)")
    check(f"feed {n} missing 0 late 0" in p.stdout, "ustack-replay's own count: no gap, nothing late")


def section_multicore(exe, replay_exe, ns, wd, pid):
    """Two lcores on net_af_packet qpairs=2: the kernel's fanout spreads the
    feeds over both queues; queue 1 moves multicast to queue 0, which owns
    IGMP and the joined sockets (src/runtime/mcast_steer.hpp)."""
    if len(os.sched_getaffinity(0)) < 2:
        print("SKIP multicore: needs 2 CPUs", flush=True)
        return
    cpus = sorted(os.sched_getaffinity(0))[:2]
    groups = [f"239.78.{ns.n}.{10 + i}" for i in range(8)]
    port, n = 5010, 300
    js = os.path.join(wd.path, "mc.json")
    eal = EAL + ["-l", ",".join(map(str, cpus)), f"--file-prefix=ustudp{pid}mc",
                 f"--vdev=net_af_packet0,iface={ns.host_if},qpairs=2"]
    app = ["--ip", f"{ns.ustack_ip}/{ns.prefix}", "--stats-json", js, "--tcp-max-conns", "16"]
    for g in groups:
        app += ["--join", f"{g}:{port}"]
    u = Ustack(exe, eal, app, wd.path, name="multicore").start()
    try:
        u.wait_for(r"^ready: .*, 2 lcore\(s\)", 30)
        time.sleep(0.5)
        for g in groups:  # one socket (one source port, one flow hash) per group
            r = in_ns(ns, FEED_SENDER, ns.peer_ip, g, port, n, 0, timeout=120)
            check(r["sent"] == n, f"kernel sent {n} feed datagrams to {g}:{port}")
        time.sleep(0.5)
        rc = u.stop(timeout=60)
        check(rc == 0, f"ustack exit status {rc}")
    except Failure:
        u.dump()
        raise
    finally:
        u.kill()
    doc = stats_json(js)
    for g in groups:
        j = udp_service(doc, "join", f"{g}:{port}")
        check(j["datagrams_in"] == n and j["missing"] == 0 and j["late"] == 0,
              f"--join {g} on queue 0: all {n}, in order, whichever queue they came on ({j['datagrams_in']}, "
              f"missing {j['missing']}, late {j['late']})")
    l0, l1 = doc["lcores"][0]["multicast"], doc["lcores"][1]["multicast"]
    check(l0["igmp_owner"] and not l1["igmp_owner"], "queue 0 owns IGMP, queue 1 does not")
    check(l1["steered_out"] > 0 and l1["steered_out"] == l0["steered_in"] and l1["steer_dropped"] == 0,
          f"queue 1 moved {l1['steered_out']} multicast frames to queue 0, none dropped")


SECTIONS = {"echo": section_echo, "mcast": section_mcast, "send": section_send, "replay": section_replay,
            "multicore": section_multicore}


def body():
    ok, why = can_make_namespaces()
    if not ok:
        print(f"SKIP: {why}")
        sys.exit(SKIP)
    if len(sys.argv) != 4:
        raise Failure("usage: udp.py USTACK_EXE USTACK_REPLAY_EXE NETNS_SH")
    exe, replay_exe, netns_sh = sys.argv[1], sys.argv[2], sys.argv[3]
    need_tools("ip", "tshark", "tcpdump")
    try:
        import scapy.contrib.igmpv3  # noqa: F401
    except ImportError:
        raise Failure("missing scapy: apt-get install python3-scapy")
    pid = os.getpid()
    wanted = [s for s in os.environ.get("UDP_SECTIONS", ",".join(SECTIONS)).split(",") if s]
    for s in wanted:
        if s not in SECTIONS:
            raise Failure(f"unknown section {s} (have {', '.join(SECTIONS)})")
    with Workdir() as wd, Netns(netns_sh, f"ustudp{pid % 1000000}", 1 + (pid + 23) % 250) as ns:
        for s in wanted:
            print(f"=== {s}", flush=True)
            t0 = time.monotonic()
            try:
                SECTIONS[s](exe, replay_exe, ns, wd, pid)
            except Failure:
                wd.failed = True
                raise
            print(f"=== {s}: {time.monotonic() - t0:.1f} s", flush=True)
        if os.environ.get("UDP_KEEP"):
            wd.failed = True


def on_sigterm(signum, frame):
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    random.seed(1)
    main(body)
