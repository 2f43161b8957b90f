#!/usr/bin/python3
"""interop-tls-ustack: ustack-tls over ustack's own TCP against OpenSSL (and GnuTLS).

    tls_ustack.py USTACK_TLS_EXE NETNS_SH

The kernel's side (openssl s_server/s_client, gnutls-cli) runs in a network
namespace behind a veth pair (scripts/netns.sh); ustack-tls drives the near
end through net_af_packet with one lcore ("-- EAL-ARGS -- --ip ..."), with
--pcap-out. Cases:

  client   ustack-tls client -> `openssl s_server -tls1_3`: SEND_KB KiB up and
           RECV_KB KiB down, each byte-exact; exit 0 with the handshake line.
  server   `openssl s_client` -> ustack-tls server --echo: SEND_KB KiB echoed
           byte-exact; the server exits 0 after --count 1. The same with
           gnutls-cli when gnutls-bin is installed.
  negative no listener (refused), an untrusted server certificate (unknown_ca
           sent) and s_client refusing ours (unknown_ca received): exit 1
           with the kernel path's stderr line.
  sigint   SIGINT stops a server between connections with exit 0.
  resume   both directions: a ticket from a first connection resumes a second
           one carrying 0-RTT data, accepted (resumed=yes early_data=accepted).
  capture  every capture: no malformed frame, no bad checksum (the kernel's
           0xffff for 0 aside), and TLS records seen (tshark decodes the
           port as TLS).

Skips (77) when not root, without network namespaces or without openssl;
needs tshark for the capture check.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import SKIP, Failure, Netns, Workdir, can_make_namespaces, check, main, need_tools, run  # noqa: E402
from tls import Proc, handshake_line, make_pki  # noqa: E402

PORT = 4433
SEND_KB = 384
RECV_KB = 256
PREFS = ("ip.check_checksum:TRUE", "tcp.check_checksum:TRUE")


class Case:
    def __init__(self, exe, ns, wd):
        self.exe = exe
        self.ns = ns
        self.wd = wd
        self.n = 0
        self.captures = []

    def path(self, name):
        return os.path.join(self.wd, name)

    def stack_args(self, tls=True):
        """'-- EAL -- STACK' for one ustack-tls run; a capture file per run
        (`tls`: TLS records are expected in it)."""
        self.n += 1
        cap = self.path(f"ustack-tls-{self.n}.pcap")
        self.captures.append((cap, tls))
        return ["--", "--no-huge", "--no-pci", "-m", "256", "--no-shconf",
                f"--file-prefix=ustls{os.getpid()}", f"--vdev=net_af_packet0,iface={self.ns.host_if}",
                "--", "--ip", f"{self.ns.ustack_ip}/{self.ns.prefix}", "--pcap-out", cap]

    def in_ns(self, cmd):
        return ["ip", "netns", "exec", self.ns.name] + cmd

    def wait_listen_ns(self, port, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            p = run(self.in_ns(["ss", "-Hltn", f"sport = :{port}"]), check_rc=False)
            if p.stdout.strip():
                return
            time.sleep(0.05)
        raise Failure(f"nothing listens on port {port} in the namespace")


def ustack_client(c, what, resume=False, early=None):
    """ustack-tls client (over ustack TCP) <-> openssl s_server in the namespace."""
    naccept = "2" if resume else "1"
    srv = Proc(c.in_ns(["openssl", "s_server", "-tls1_3", "-quiet", "-naccept", naccept, "-accept", str(PORT),
                        "-cert", c.path("p256.pem"), "-key", c.path("p256.key")] +
                       (["-early_data"] if early is not None else [])))
    try:
        c.wait_listen_ns(PORT)
        for last in ([False, True] if resume else [True]):
            up = os.urandom(SEND_KB * 1024 if not resume else 3000)
            down = os.urandom(RECV_KB * 1024 if not resume else 2000)
            args = [c.exe, "client", c.ns.peer_ip, str(PORT), "--ca", c.path("ca.pem"), "--sni", "localhost"]
            if resume:
                args += ["--sess-in", c.path("sess")] if last else ["--sess-out", c.path("sess")]
                if last and early is not None:
                    with open(c.path("early"), "wb") as f:
                        f.write(early)
                    args += ["--early-data", c.path("early")]
            cli = Proc(args + c.stack_args())
            try:
                cli.wait_for(b"handshake:", f"{what}: handshake", timeout=30, stream="err")
                cli.write(up)
                srv.write(down)
                cli.wait_for(down, f"{what}: s_server -> ustack-tls data", timeout=30)
                srv.wait_for(up, f"{what}: ustack-tls -> s_server data", timeout=30)
                if last and early is not None:
                    srv.wait_for(early, f"{what}: early data at s_server")
                cli.close_stdin()
                rc = cli.wait(timeout=30)
            finally:
                cli.kill()
            line = handshake_line(cli.stderr())
            if rc != 0:
                raise Failure(f"{what}: ustack-tls client exited {rc}: {cli.stderr()}")
            check(bytes(cli.out) == down, f"{what}: {len(down)} bytes from s_server byte-exact on stdout")
            got = bytes(srv.out)
            if last and early is not None:
                check(got.startswith(early) and got[len(early):] == up,
                      f"{what}: early data then {len(up)} bytes at s_server byte-exact")
            else:
                check(got == up, f"{what}: {len(up)} bytes at s_server byte-exact")
            srv.out.clear()
            if last and resume:
                check("resumed=yes" in line, f"{what}: resumed ({line.split('handshake: ')[1]})")
                if early is not None:
                    check("early_data=accepted" in line, f"{what}: 0-RTT accepted by s_server")
            else:
                check("resumed=no" in line, f"{what}: {line.split('handshake: ')[1]}")
    finally:
        srv.close_stdin()
        srv.kill()


def ustack_server(c, what, tool="openssl", resume=False, early=None):
    """openssl s_client / gnutls-cli in the namespace <-> ustack-tls server --echo over ustack TCP."""
    count = "2" if resume else "1"
    srv = Proc([c.exe, "server", "--port", str(PORT), "--cert", c.path("p256.pem"), "--key", c.path("p256.key"),
                "--echo", "--count", count] + (["--early-data"] if early is not None else []) + c.stack_args())
    try:
        srv.wait_for(b"listening on port", f"{what}: ustack-tls server up", timeout=30, stream="err")
        for last in ([False, True] if resume else [True]):
            data = os.urandom((SEND_KB * 1024 if not resume else 1500) // 2).hex().encode() + b"\n"
            if tool == "openssl":
                args = ["openssl", "s_client", "-tls1_3", "-quiet", "-no_ign_eof", "-nocommands",
                        "-connect", f"{c.ns.ustack_ip}:{PORT}", "-CAfile", c.path("ca.pem"), "-verify_return_error",
                        "-verify_hostname", "localhost", "-servername", "localhost"]
                if resume:
                    args += ["-sess_in", c.path("ssess")] if last else ["-sess_out", c.path("ssess")]
                    if last and early is not None:
                        with open(c.path("searly"), "wb") as f:
                            f.write(early)
                        args += ["-early_data", c.path("searly")]
            else:
                args = ["gnutls-cli", "-p", str(PORT), "--x509cafile", c.path("ca.pem"), "--sni-hostname",
                        "localhost", "--verify-hostname", "localhost", c.ns.ustack_ip]
            cli = Proc(c.in_ns(args))
            try:
                want = data
                if last and early is not None:
                    want = early + data
                    cli.wait_for(early, f"{what}: 0-RTT data echoed", timeout=30)
                cli.write(data)
                cli.wait_for(data, f"{what}: echo through ustack-tls server", timeout=30)
                time.sleep(0.2)
                got = bytes(cli.out)
                cli.close_stdin()
                cli.wait(timeout=15)
            finally:
                cli.kill()
            if tool == "openssl":
                check(got == want, f"{what}: {len(want)} bytes echoed byte-exact")
            else:  # gnutls-cli prints its status lines ("- Handshake was completed") on stdout first
                check(got.endswith(want) and got.count(want[:64]) == 1, f"{what}: {len(want)} bytes echoed byte-exact")
        rc = srv.wait(timeout=30)
        text = srv.stderr()
        lines = [ln for ln in text.splitlines() if "handshake:" in ln]
        if rc != 0 or len(lines) != int(count):
            raise Failure(f"{what}: ustack-tls server exited {rc}: {text}")
        if resume:
            check("resumed=yes" in lines[-1], f"{what}: resumed ({lines[-1].split('handshake: ')[1]})")
            if early is not None:
                check("early_data=accepted" in lines[-1], f"{what}: 0-RTT accepted by ustack-tls server")
        else:
            check(True, f"{what}: server exit 0, {lines[-1].split('handshake: ')[1]}")
    finally:
        srv.kill()


def negative(c):
    """Failures end as over kernel sockets: exit 1 and the same stderr line."""
    # Nothing listens: the kernel answers the SYN with a RST.
    cli = Proc([c.exe, "client", c.ns.peer_ip, str(PORT + 1), "--ca", c.path("ca.pem"), "--sni", "localhost"] +
               c.stack_args(tls=False))
    cli.close_stdin()
    rc = cli.wait(timeout=40)
    check(rc == 1 and "cannot connect to" in cli.stderr() and "refused" in cli.stderr(),
          "no listener: exit 1, cannot connect (refused)")
    # A server certificate from an untrusted CA: our client alerts unknown_ca.
    srv = Proc(c.in_ns(["openssl", "s_server", "-tls1_3", "-quiet", "-naccept", "1", "-accept", str(PORT),
                        "-cert", c.path("p256.pem"), "-key", c.path("p256.key")]))
    try:
        c.wait_listen_ns(PORT)
        cli = Proc([c.exe, "client", c.ns.peer_ip, str(PORT), "--ca", c.path("otherca.pem"), "--sni", "localhost"] +
                   c.stack_args())
        rc = cli.wait(timeout=40)
        check(rc == 1 and "alert sent: unknown_ca" in cli.stderr() and not cli.out,
              "untrusted server certificate: exit 1, unknown_ca, nothing on stdout")
    finally:
        srv.close_stdin()
        srv.kill()
    # s_client that does not trust us: our server reports the alert it received.
    srv = Proc([c.exe, "server", "--port", str(PORT), "--cert", c.path("p256.pem"), "--key", c.path("p256.key"),
                "--echo", "--count", "1"] + c.stack_args())
    try:
        srv.wait_for(b"listening on port", "server up", timeout=30, stream="err")
        cli = Proc(c.in_ns(["openssl", "s_client", "-tls1_3", "-quiet", "-connect", f"{c.ns.ustack_ip}:{PORT}",
                            "-CAfile", c.path("otherca.pem"), "-verify_return_error"]))
        cli.close_stdin()
        cli.wait()
        rc = srv.wait(timeout=30)
        check(rc == 1 and "alert received: unknown_ca" in srv.stderr(),
              "s_client refuses our certificate: server exits 1, alert received: unknown_ca")
    finally:
        srv.kill()


def sigint_idle_server(c):
    """SIGINT stops a server waiting for a connection: exit 0, the runtime shut down."""
    srv = Proc([c.exe, "server", "--port", str(PORT), "--cert", c.path("p256.pem"), "--key", c.path("p256.key"),
                "--echo"] + c.stack_args(tls=False))
    try:
        srv.wait_for(b"listening on port", "server up", timeout=30, stream="err")
        srv.p.send_signal(signal.SIGINT)
        rc = srv.wait(timeout=30)
        check(rc == 0 and "stopped" in srv.stderr() and not srv.out,
              "SIGINT to an idle server: exit 0, stopped, nothing on stdout")
    finally:
        srv.kill()


def check_captures(c):
    for cap, tls in c.captures:
        if not os.path.exists(cap):
            raise Failure(f"no capture {cap}")
        base = ["tshark", "-n", "-r", cap, "-d", f"tcp.port=={PORT},tls"]
        for p in PREFS:
            base += ["-o", p]
        def count(flt):
            p = run(base + ["-Y", flt, "-T", "fields", "-e", "frame.number"], timeout=120, check_rc=False)
            if p.returncode != 0:
                raise Failure(f"tshark on {cap}: {p.stderr.strip()}")
            return len([ln for ln in p.stdout.splitlines() if ln.strip()])
        name = os.path.basename(cap)
        check(count("_ws.malformed") == 0, f"{name}: no malformed frame")
        # Linux writes 0xffff where a TCP checksum computes to 0 (CSUM_MANGLED_0;
        # the same value in ones' complement, RFC 1624 §3), which tshark calls
        # bad: allowed from the kernel only, as interop-tcp does.
        ours = f"ip.src == {c.ns.ustack_ip}"
        check(count(f"{ours} && (ip.checksum.status == 0 || tcp.checksum.status == 0)") == 0,
              f"{name}: no bad checksum from ustack")
        check(count(f"!({ours}) && (ip.checksum.status == 0 || (tcp.checksum.status == 0 && tcp.checksum != 0xffff))")
              == 0, f"{name}: no bad checksum from the kernel (but 0xffff for 0)")
        if tls:
            check(count(f"{ours} && ip.checksum.status == 1 && tcp.checksum.status == 1") > 0,
                  f"{name}: checksums verified")
            check(count("tls.record") > 0, f"{name}: TLS records on the wire")


def body():
    if len(sys.argv) != 3:
        raise Failure("usage: tls_ustack.py USTACK_TLS_EXE NETNS_SH")
    exe, netns_sh = sys.argv[1], sys.argv[2]
    ok, why = can_make_namespaces()
    if not ok:
        print(f"SKIP: {why}", flush=True)
        sys.exit(SKIP)
    if shutil.which("openssl") is None:
        print("SKIP: no openssl", flush=True)
        sys.exit(SKIP)
    need_tools("ip", "ss", "tshark")
    pid = os.getpid()
    with Workdir() as wd, Netns(netns_sh, f"ustls{pid % 1000000}", 1 + (pid + 23) % 250) as ns:
        try:
            make_pki(wd.path)
            c = Case(exe, ns, wd.path)
            ustack_client(c, "ustack-tls client -> s_server")
            ustack_server(c, "s_client -> ustack-tls server --echo")
            if shutil.which("gnutls-cli"):
                ustack_server(c, "gnutls-cli -> ustack-tls server --echo", tool="gnutls")
            else:
                print("skip: gnutls-cli (apt-get install gnutls-bin)", flush=True)
            ustack_client(c, "ustack-tls client resumption + 0-RTT", resume=True, early=b"early data " * 50)
            ustack_server(c, "s_client resumption + 0-RTT", resume=True, early=b"early-data-line\n")
            negative(c)
            sigint_idle_server(c)
            check_captures(c)
        except Failure:
            wd.failed = True
            raise


if __name__ == "__main__":
    main(body)
