#!/usr/bin/python3
"""interop-rss: what the runtime learns about RSS steering on the vdevs we have.

    rss.py USTACK_EXE

No NIC here, so each case is the one vdev that exercises one path of the
start-up RSS set-up (key, RETA, read-back), checked in the start-up log and
in the "rss" object of the stats JSON:

  net_null 2q  the one vdev with a programmable RETA and a readable key: the
               RETA is programmed (entry i -> queue i % 2: 64 entries each)
               and read back; the PMD does not report its key size, so it
               keeps its own key (the RSS specification's, not symmetric).
               Steering is known. (no-rx=1: the PMD delivers nothing.)
  net_null 1q  one queue: single-queue, known, no table.
  net_tap 2q   accepts the RSS configuration but has no RETA and cannot
               report its key: steering unknown, start-up unaffected.
               Needs root, network namespaces and /dev/net/tun (skipped
               otherwise): the tap is created in a holding namespace.

net_af_packet (qpairs=2, no RSS at all: unknown) is checked by
interop-multiqueue. Every case must start, run and exit 0 with the JSON.
"""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import Failure, Ustack, Workdir, can_make_namespaces, check, main, run  # noqa: E402


def two_lcores():
    """EAL arguments for lcores 0 and 1: two CPUs when we have them, else both on one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        return ["-l", f"{cpus[0]},{cpus[1]}"]
    return [f"--lcores=0@{cpus[0]},1@{cpus[0]}"]


def run_ustack(exe, wd, name, eal, wrap=()):
    """Runs ustack for 1 s; returns (log text, JSON document)."""
    prefix = f"ustack-rss-{name}-{os.getpid()}"
    stats_json = os.path.join(wd.path, f"{name}.json")
    u = Ustack(exe, eal + [f"--file-prefix={prefix}"],
               ["--ip", "10.97.1.2/24", "--duration", "1", "--stats-json", stats_json], wd.path, name=name, wrap=wrap)
    try:
        u.start()
        try:
            status = u.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise Failure(f"{name}: ustack did not stop after --duration 1")
        check(status == 0, f"{name}: exit status {status}")
        with open(stats_json) as f:
            doc = json.load(f)
        return u.text(), doc
    except (Failure, OSError, ValueError):
        wd.failed = True
        u.dump()
        raise
    finally:
        u.kill()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def rss_of(doc):
    rss = doc["ports"][0]["rss"]
    print(f"rss: {json.dumps(rss)}", flush=True)
    return rss


def case_null_2q(exe, wd):
    log, doc = run_ustack(exe, wd, "null2", two_lcores() + ["--vdev=net_null0,no-rx=1"])
    rss = rss_of(doc)
    check(rss["steering"] == "toeplitz" and rss["known"], "net_null 2q: steering known (toeplitz)")
    check(rss["queues"] == 2 and rss["reta_size"] > 0, f"net_null 2q: 2 queues, RETA of {rss['reta_size']}")
    check(rss["reta_entries_per_queue"] == [rss["reta_size"] // 2] * 2,
          f"net_null 2q: our table was programmed and read back: {rss['reta_entries_per_queue']}")
    check(rss["ipv4_tcp"] and rss["ipv4_udp"], "net_null 2q: IPv4 TCP and UDP hashed with ports")
    check(rss["key"] is not None and len(rss["key"]) == 80, "net_null 2q: the 40-byte key read back")
    check("does not report its RSS key size" in rss["note"] and not rss["key_symmetric"],
          "net_null 2q: no key size reported, so the PMD keeps its own (non-symmetric) key")
    check("port 0: rss toeplitz, key not symmetric" in log, "net_null 2q: the start-up log says so")
    check(sorted(l["queue"] for l in doc["lcores"]) == [0, 1], "net_null 2q: one lcore per queue")


def case_null_1q(exe, wd):
    cpu = sorted(os.sched_getaffinity(0))[0]
    log, doc = run_ustack(exe, wd, "null1", ["-l", str(cpu), "--vdev=net_null0,no-rx=1"])
    rss = rss_of(doc)
    check(rss["steering"] == "single-queue" and rss["known"] and rss["queues"] == 1 and rss["reta_size"] == 0,
          "net_null 1q: single-queue, known, no table")
    check("port 0: rss single-queue" in log, "net_null 1q: the start-up log says so")


def case_tap_2q(exe, wd):
    ok, why = can_make_namespaces()
    if not ok or not os.path.exists("/dev/net/tun"):
        print(f"SKIP net_tap 2q: {why or 'no /dev/net/tun'}", flush=True)
        return
    pid = os.getpid()
    holder, tap = f"ustrh{pid % 100000}", f"ustrt{pid % 100000}"
    run(["ip", "netns", "add", holder])
    try:
        log, doc = run_ustack(exe, wd, "tap2", two_lcores() + [f"--vdev=net_tap0,iface={tap}"],
                              wrap=["ip", "netns", "exec", holder])
    finally:
        subprocess.run(["ip", "netns", "del", holder], capture_output=True)
    rss = rss_of(doc)
    check(not rss["known"] and rss["steering"] == "unknown", "net_tap 2q: steering unknown")
    check("RETA cannot be read back" in rss["note"] and "key cannot be read back" in rss["note"],
          "net_tap 2q: the note says why (no RETA, no key read-back)")
    check("port 0: rss unknown over 2 queues" in log, "net_tap 2q: the start-up log says so")


def body():
    if len(sys.argv) != 2:
        raise Failure("usage: rss.py USTACK_EXE")
    exe = sys.argv[1]
    with Workdir() as wd:
        case_null_2q(exe, wd)
        case_null_1q(exe, wd)
        case_tap_2q(exe, wd)


if __name__ == "__main__":
    main(body)
