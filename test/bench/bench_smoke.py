#!/usr/bin/python3
"""Smoke run of ustack-bench's udp and mcast cases, so they cannot rot
unnoticed: short runs, then the JSON is checked for every case, real sample
counts, and zero heap allocations on ustack's side. The figures themselves
are not judged (a shared machine makes them meaningless here); a wrong,
lost or duplicated datagram makes the bench exit non-zero, which fails this.
Also checks that bad command-line values are refused with one line.

usage: bench_smoke.py PATH/TO/ustack-bench
"""
import json
import os
import subprocess
import sys
import tempfile

BENCH = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(args, json_path):
    p = subprocess.run([BENCH] + args + ["--json", json_path], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"ustack-bench {' '.join(args)} exits 0")
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-2000:])
        return None
    with open(json_path) as f:
        return json.load(f)


def check_cases(doc, bench, names, min_samples):
    if doc is None:
        return
    check(doc["bench"] == bench, f"{bench}: JSON names the bench")
    by_name = {c["name"]: c for c in doc["cases"]}
    for name in names:
        c = by_name.get(name)
        check(c is not None, f"{bench}: case {name} present")
        if c is None:
            continue
        u = c["ustack"]
        if not name.endswith("_allocs"):
            check(u["samples"] >= min_samples, f"{name}: {u['samples']} ustack samples >= {min_samples}")
            check(0 < u["p50_ns"] <= u["p99_ns"] <= u["p999_ns"], f"{name}: ustack p50 <= p99 <= p99.9, all > 0")
        check(u["allocs_per_pkt"] == 0, f"{name}: 0 heap allocations per datagram on ustack's side")
        # The kernel's figure is there, or the output says why not.
        check(c["kernel"] is not None or c.get("kernel_note"), f"{name}: kernel figure or a reason for its absence")
    allocs = by_name.get(f"{bench}_allocs")
    if allocs:
        check(allocs["ustack"]["samples"] > 0, f"{bench}_allocs counted over {allocs['ustack']['samples']} datagrams")
        check(allocs.get("goal", "").endswith(": met"), f"{bench}_allocs goal met")


with tempfile.TemporaryDirectory() as tmp:
    j = os.path.join(tmp, "out.json")
    doc = run(["udp", "--iterations", "3000", "--kernel-iterations", "300"], j)
    check_cases(doc, "udp", ["udp_oneway64", "udp_rr64", "udp_pps", "udp_allocs"], 64)
    doc = run(["mcast", "--iterations", "500", "--kernel-iterations", "50", "--fanout", "1,8,64"], j)
    check_cases(doc, "mcast", ["mcast_fanout_1", "mcast_fanout_8", "mcast_fanout_64", "mcast_allocs"], 50)

for bad in (["udp", "--only", "oneway,nope"], ["mcast", "--fanout", "101"], ["mcast", "--fanout", "8,8"],
            ["mcast", "--fanout", ""], ["udp", "--fanout", "8"], ["udp", "--iterations", "0"]):
    p = subprocess.run([BENCH] + bad, capture_output=True, text=True, timeout=30)
    lines = p.stderr.strip().splitlines()
    check(p.returncode == 2 and len(lines) == 1 and lines[0].startswith("ustack-bench: "),
          f"ustack-bench {' '.join(bad)} refused with one line ({lines[-1] if lines else ''})")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
