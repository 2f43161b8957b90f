"""Shared helpers for the kernel interop tests (run with /usr/bin/python3).

The Linux kernel in a network namespace is the peer; ustack drives the near
end of a veth pair through net_af_packet. Everything here cleans up after
itself: namespaces through scripts/netns.sh, processes by their pid.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77  # meson's exit status for a skipped test


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print(f"ok: {what}", flush=True)


def run(cmd, timeout=60, check_rc=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and p.returncode != 0:
        raise Failure(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    return p


def can_make_namespaces():
    """(True, '') when we are root and may create a network namespace."""
    if os.geteuid() != 0:
        return False, "not root"
    probe = f"ustprobe{os.getpid() % 100000}"
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if p.returncode != 0:
        return False, f"ip netns add not permitted: {p.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return True, ""


PACKAGES = {"ip": "iproute2", "ping": "iputils-ping", "tshark": "tshark", "mergecap": "wireshark-common",
            "nc": "netcat-openbsd"}



def skip_unless_namespaces_and_cpus(n, why):
    """Exits with SKIP unless we may create namespaces and have `n` CPUs;
    returns the CPUs (sorted). `why`: what the CPUs are for."""
    ok, reason = can_make_namespaces()
    if not ok:
        print(f"SKIP: {reason}")
        sys.exit(SKIP)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < n:
        print(f"SKIP: needs {n} CPUs ({why})")
        sys.exit(SKIP)
    return cpus

def need_tools(*names):
    """Fails with the Debian package to install for each missing tool."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise Failure("missing " + ", ".join(missing) + ": apt-get install " +
                      " ".join(PACKAGES.get(n, n) for n in missing))


class Netns:
    """A namespace + veth pair made by scripts/netns.sh; a context manager."""

    def __init__(self, script, name, subnet_index):
        self.script = script
        self.name = name
        self.n = subnet_index
        self.vars = {}

    def __enter__(self):
        p = run(["bash", self.script, "up", self.name, str(self.n)], timeout=120)
        for line in p.stdout.splitlines():
            k, _, v = line.partition("=")
            self.vars[k] = v
        self.host_if = self.vars["NETNS_HOST_IF"]
        self.peer_if = self.vars["NETNS_PEER_IF"]
        self.peer_ip = self.vars["NETNS_PEER_IP"]
        self.ustack_ip = self.vars["NETNS_USTACK_IP"]
        self.prefix = self.vars["NETNS_PREFIX"]
        return self

    def __exit__(self, *exc):
        subprocess.run(["bash", self.script, "down", self.name], capture_output=True, timeout=60)
        return False

    def exec(self, cmd, timeout=60, check_rc=True):
        return run(["ip", "netns", "exec", self.name] + cmd, timeout=timeout, check_rc=check_rc)


class Ustack:
    """A ustack process with its stdout/stderr in files; stopped by pid.

    `name` names the log files (NAME.log, NAME.err), so that several ustacks
    can share a workdir. `wrap` is a command prefix that must exec ustack in
    its own process (e.g. ["ip", "netns", "exec", NS]), so that the pid
    signalled is ustack's.
    """

    def __init__(self, exe, eal, app, workdir, name="ustack", wrap=()):
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.err_path = os.path.join(workdir, f"{name}.err")
        self.cmd = list(wrap) + [exe] + eal + ["--"] + app
        self.proc = None

    def start(self):
        print("run: " + " ".join(self.cmd), flush=True)
        self.log = open(self.log_path, "w")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=self.err, stdin=subprocess.DEVNULL)
        return self

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_for(self, pattern, timeout):
        """The first match of `pattern` in the log; fails if ustack exits first."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                raise Failure(f"ustack exited ({self.proc.returncode}) while waiting for /{pattern}/")
            time.sleep(0.05)
        raise Failure(f"timed out after {timeout}s waiting for /{pattern}/ in the ustack log")

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGINT and wait; returns the exit status (SIGKILL after `timeout`)."""
        self.signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure(f"ustack did not stop within {timeout}s of SIGINT")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in ("log", "err"):
            if hasattr(self, f):
                getattr(self, f).close()

    def dump(self):
        for path in (self.log_path, self.err_path):
            try:
                with open(path) as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            print(f"--- {path} (last 40 lines)")
            for line in lines[-40:]:
                print("    " + line)


def ping_counts(output):
    m = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    if not m:
        raise Failure(f"cannot read ping's summary: {output.strip()[-200:]}")
    return int(m.group(1)), int(m.group(2))


def telemetry(prefix, cmd, timeout=2.0):
    """One command over DPDK's telemetry socket (v2 protocol: JSON over SOCK_SEQPACKET)."""
    path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.recv(65536)  # the greeting: version, pid, max_output_len
        s.send(cmd.encode())
        reply = json.loads(s.recv(1 << 20).decode())
    finally:
        s.close()
    return reply.get(cmd)


def write_pcap(path, frames):
    """A nanosecond pcap of Ethernet frames (for the tshark filter self-check)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)) + frame)


def inet_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def tshark_count(capture, display_filter, prefs=()):
    cmd = ["tshark", "-n", "-r", capture]
    for p in prefs:
        cmd += ["-o", p]
    cmd += ["-Y", display_filter, "-T", "fields", "-e", "frame.number"]
    p = run(cmd, timeout=120, check_rc=False)
    if p.returncode != 0:
        raise Failure(f"tshark failed on filter {display_filter!r}: {p.stderr.strip()}")
    return len([l for l in p.stdout.splitlines() if l.strip()])


class Workdir:
    """A temporary directory kept (and named) when the test fails."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="ustack-interop-")
        self.failed = False
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None and not self.failed:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            print(f"artifacts kept in {self.path}", flush=True)
        return False


def main(body):
    """Runs body() and maps the outcome to an exit status."""
    try:
        body()
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    print("PASS", flush=True)
    sys.exit(0)
