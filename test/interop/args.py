#!/usr/bin/python3
"""interop-args: every bad command line fails with one clear line.

    args.py USTACK_EXE

Each case must exit with the expected status (2: usage, 1: runtime) and print
exactly one line on stderr, prefixed "ustack: " and mentioning what was wrong.
Usage errors are caught before EAL starts; the EAL cases run EAL without
hugepages or PCI (the defaults ustack adds) and need no root.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import Failure, check, main  # noqa: E402

IP = ["--ip", "10.98.0.2/24"]


def body():
    if len(sys.argv) != 2:
        raise Failure("usage: args.py USTACK_EXE")
    exe = sys.argv[1]
    prefix = f"--file-prefix=ustack-args-{os.getpid()}"
    usage_cases = [
        # (argv after the program, words the message must contain)
        ([], ["--ip", "required"]),
        (["--"], ["--ip", "required"]),
        (["--", "--ip", "10.98.0.2"], ["--ip", "bad value"]),
        (["--", "--ip", "300.1.2.3/24"], ["--ip", "300.1.2.3/24"]),
        (["--", "--ip", "10.98.0.2/33"], ["--ip"]),
        (["--", "--ip", "10.98.0.0/24"], ["network or broadcast"]),
        (["--", "--ip"], ["--ip", "needs a value"]),
        (["--"] + IP + ["--gw"], ["--gw", "needs a value"]),
        (["--"] + IP + ["--gw", "10.97.0.1"], ["gateway", "outside"]),
        (["--"] + IP + ["--gw", "10.98.0.2"], ["gateway", "own address"]),
        (["--"] + IP + ["--gw", "10.98.0"], ["--gw", "bad value"]),
        (["--"] + IP + ["--mac", "02:00:00:00:00"], ["--mac"]),
        (["--"] + IP + ["--mac", "01:00:5e:00:00:01"], ["--mac", "unicast"]),
        (["--"] + IP + ["--vlan", "4095"], ["--vlan"]),
        (["--"] + IP + ["--vlan", "x"], ["--vlan"]),
        (["--"] + IP + ["--port", "-1"], ["--port"]),
        (["--"] + IP + ["--ping", "10.98.0.1:0"], ["--ping", "COUNT"]),
        (["--"] + IP + ["--ping", "10.98.0.1:70000"], ["--ping"]),
        (["--"] + IP + ["--ping", "nowhere"], ["--ping"]),
        (["--"] + IP + ["--stats-interval", "soon"], ["--stats-interval"]),
        (["--"] + IP + ["--duration", "-1"], ["--duration"]),
        (["--"] + IP + ["--mtu", "20"], ["--mtu"]),
        (["--"] + IP + ["--tcp-max-conns", "0"], ["--tcp-max-conns", "bad value"]),
        (["--"] + IP + ["--tcp-max-conns", "70000"], ["--tcp-max-conns"]),
        (["--"] + IP + ["--tcp-sndbuf", "100"], ["--tcp-sndbuf", "4096"]),
        (["--"] + IP + ["--tcp-rcvbuf", "1T"], ["--tcp-rcvbuf"]),
        (["--"] + IP + ["--tcp-rcvbuf", "128M"], ["--tcp-rcvbuf", "64M"]),
        (["--"] + IP + ["--tcp-max-conns", "65536", "--tcp-sndbuf", "64M"], ["--tcp-max-conns", "16G"]),
        (["--"] + IP + ["--tcp-cc", "bbr"], ["--tcp-cc", "newreno or cubic"]),
        (["--"] + IP + ["--tcp-min-rto-ms", "0"], ["--tcp-min-rto-ms"]),
        (["--"] + IP + ["--tcp-min-rto-ms", "soon"], ["--tcp-min-rto-ms"]),
        (["--"] + IP + ["--tcp-nagle=yes"], ["--tcp-nagle", "no value"]),
        (["--"] + IP + ["--tcp-echo", "0"], ["--tcp-echo", "1..65535"]),
        (["--"] + IP + ["--tcp-echo", "7", "--tcp-discard", "7"], ["--tcp-discard", "port 7", "already"]),
        (["--"] + IP + ["--tcp-source", "19"], ["--tcp-source", "PORT:BYTES"]),
        (["--"] + IP + ["--tcp-source", "19:lots"], ["--tcp-source", "PORT:BYTES"]),
        (["--"] + IP + ["--tcp-get", "10.98.0.1"], ["--tcp-get", "IP:PORT"]),
        (["--"] + IP + ["--tcp-get", "10.98.0.1:0"], ["--tcp-get", "PORT"]),
        (["--"] + IP + ["--tcp-get", "10.98.0.1:80:x"], ["--tcp-get", "BYTES"]),
        (["--"] + IP + ["--tcp-get", "10.98.0.2:80"], ["--tcp-get", "own address"]),
        (["--"] + IP + ["--tcp-get-timeout", "0"], ["--tcp-get-timeout"]),
        (["--"] + IP + ["--fault-drop", "1.5"], ["--fault-drop", "probability"]),
        (["--"] + IP + ["--fault-reorder", "-0.1"], ["--fault-reorder", "probability"]),
        (["--"] + IP + ["--fault-seed", "x"], ["--fault-seed"]),
        (["--"] + IP + ["--udp-echo", "0"], ["--udp-echo", "1..65535"]),
        (["--"] + IP + ["--udp-echo", "7", "--udp-echo", "7"], ["--udp-echo", "port 7", "already"]),
        (["--"] + IP + ["--join", "10.1.1.1:5000"], ["--join", "GROUP:PORT", "multicast"]),
        (["--"] + IP + ["--join", "224.0.0.5:5000"], ["--join", "224.0.0.0/24"]),
        (["--"] + IP + ["--join", "239.1.1.1"], ["--join", "GROUP:PORT"]),
        (["--"] + IP + ["--join", "239.1.1.1:0"], ["--join", "1..65535"]),
        (["--"] + IP + ["--join", "239.1.1.1:5000@239.2.2.2"], ["--join", "SOURCE", "unicast"]),
        (["--"] + IP + ["--join", "239.1.1.1:5000@x"], ["--join", "SOURCE"]),
        (["--"] + IP + ["--join", "239.1.1.1:5000", "--join", "239.1.1.1:5000"], ["--join", "twice"]),
        (["--"] + IP + ["--mcast-send", "10.98.0.1:5000"], ["--mcast-send", "GROUP:PORT"]),
        (["--"] + IP + ["--mcast-send", "239.1.1.1:5000", "--mcast-send", "239.1.1.2:5000"],
         ["--mcast-send", "twice"]),
        (["--"] + IP + ["--rate", "100"], ["--rate", "needs --mcast-send"]),
        (["--"] + IP + ["--mcast-loop"], ["--mcast-loop", "needs --mcast-send"]),
        (["--"] + IP + ["--mcast-send", "239.1.1.1:5000", "--rate", "0"], ["--rate", "1..10000000"]),
        (["--"] + IP + ["--mcast-send", "239.1.1.1:5000", "--rate", "fast"], ["--rate"]),
        (["--"] + IP + ["--mcast-send", "239.1.1.1:5000", "--size", "23"], ["--size", "24"]),
        (["--"] + IP + ["--mcast-send", "239.1.1.1:5000", "--size", "9000"], ["--size", "8972"]),
        (["--"] + IP + ["--mcast-send", "239.1.1.1:5000", "--mcast-ttl", "0"], ["--mcast-ttl", "1..255"]),
        (["--"] + IP + ["--app-cpus", "x"], ["--app-cpus", "CPU list"]),
        (["--"] + IP + ["--app-cpus", "3-1"], ["--app-cpus"]),
        (["--"] + IP + ["--app-cpus", "1,"], ["--app-cpus"]),
        (["--"] + IP + ["--shim-threads", "65"], ["--shim-threads", "0..64"]),
        (["--"] + IP + ["--bogus"], ["unknown option", "--bogus"]),
        (["--"] + IP + ["--promisc=yes"], ["--promisc", "no value"]),
        (IP, ["after '--'"]),
    ]
    runtime_cases = [
        ([prefix, "--vdev=net_nosuchdriver0", "--"] + IP, ["EAL", "net_nosuchdriver0"]),
        ([prefix, "--no-such-eal-flag", "--"] + IP, ["EAL", "--no-such-eal-flag"]),
        ([prefix, "--no-pci", "--"] + IP, ["no DPDK port 0"]),
        ([prefix, "--vdev=net_af_packet0,iface=ustnosuchif0", "--"] + IP, ["no DPDK port 0"]),
        # Fits the option's range, not one datagram at this port's MTU.
        ([prefix, "--vdev=net_null0", "--"] + IP + ["--mcast-send", "239.1.1.1:5000", "--size", "4000"],
         ["--size 4000", "at most 1472"]),
        # Dedicated-core mode: application threads never on a polling CPU.
        ([prefix, "-l", "0", "--vdev=net_null0", "--"] + IP + ["--app-cpus", "0-1"],
         ["--app-cpus 0,1", "overlaps", "(0,", "lcores"]),
    ]
    try:
        for argv, words, want in [(a, w, 2) for a, w in usage_cases] + [(a, w, 1) for a, w in runtime_cases]:
            p = subprocess.run([exe] + argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            lines = p.stderr.splitlines()
            shown = " ".join(argv) or "(no arguments)"
            check(p.returncode == want, f"{shown}: exit status {p.returncode} (want {want})")
            check(len(lines) == 1, f"{shown}: one line on stderr (got {len(lines)}: {p.stderr.strip()[:300]!r})")
            check(lines[0].startswith("ustack: "), f"{shown}: stderr starts with 'ustack: '")
            for w in words:
                check(w in lines[0], f"{shown}: message mentions {w!r}: {lines[0]}")

        # The EAL defaults, read back from the "EAL args:" line (each run fails
        # later for want of a port, which is fine here).
        free_huge = 0
        for d in glob.glob("/sys/kernel/mm/hugepages/*/free_hugepages"):
            with open(d) as f:
                free_huge += int(f.read().strip() or 0)
        eal_cases = [
            # (EAL args given, what ustack must append: a regex over the rest of the line)
            ([prefix, "--vdev=net_nosuchdriver0"],
             r"-l \d+ --no-huge -m 512 --no-pci --no-shconf" if free_huge == 0 else r"-l \d+ --no-pci"),
            ([prefix, "-l", "0", "--no-huge", "--no-pci"], r"--no-shconf"),
            ([prefix, "-m", "256", "--no-pci", "--vdev=net_nosuchdriver0"], r"-l \d+"),
            ([prefix, "--in-memory", "--no-huge", "--lcores=0", "-b", "0000:00:00.0", "--vdev=net_nosuchdriver0"], r""),
        ]
        for given, added in eal_cases:
            p = subprocess.run([exe] + given + ["--"] + IP, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            first = p.stdout.splitlines()[0] if p.stdout else ""
            shown = " ".join(given)
            check(first.startswith("EAL args: "), f"{shown}: the EAL line comes first ({first!r})")
            words = first[len("EAL args: "):].split(" ")
            check(words[1:1 + len(given)] == given, f"{shown}: the user's EAL args come first, unchanged")
            tail = " ".join(words[1 + len(given):])
            check(re.fullmatch(added, tail) is not None, f"{shown}: ustack appended {tail!r} (want /{added}/)")

        for argv in (["--help"], ["--", "--help"], ["-l", "0", "--", "--ip", "10.98.0.2/24", "-h"]):
            p = subprocess.run([exe] + argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
            check(p.returncode == 0 and p.stdout.startswith("usage: ") and "--stats-json" in p.stdout
                  and "--tcp-echo" in p.stdout and "--fault-drop" in p.stdout
                  and "--join GROUP:PORT[@SOURCE]" in p.stdout and "--mcast-send" in p.stdout
                  and p.stderr == "", f"{' '.join(argv)}: usage on stdout, exit 0")
    finally:
        # EAL's runtime directory: /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk.
        for base in ("/var/run", os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "/tmp"):
            shutil.rmtree(os.path.join(base, "dpdk", f"ustack-args-{os.getpid()}"), ignore_errors=True)


if __name__ == "__main__":
    main(body)
