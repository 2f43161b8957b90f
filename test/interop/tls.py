#!/usr/bin/python3
"""interop-tls: ustack-tls against OpenSSL and GnuTLS over kernel TCP.

    tls.py USTACK_TLS_EXE

Both directions (ustack-tls as client and as server) against
`openssl s_server`/`s_client -tls1_3` for every suite, both groups and the
three signature types, HelloRetryRequest, resumption, 0-RTT and KeyUpdate;
against `gnutls-serv`/`gnutls-cli` for every suite and group. Application
data must arrive byte for byte. Client certificates both ways: ustack-tls
server --client-ca requiring one from `s_client -cert/-key`, and ustack-tls
client --cert/--key presenting one to `s_server -Verify 1`. Negative cases:
an untrusted certificate and a wrong host name end with the right alert, on
both sides; a required client certificate missing or from an untrusted CA.

Certificates are made at test time with `openssl req` in a temporary
directory (a P-256 CA; RSA-2048, P-256 and Ed25519 leaves for localhost and
127.0.0.1; a P-256 leaf from a second, untrusted CA) and deleted afterwards: no private key is committed.
Skips (77) without openssl; the GnuTLS cases are skipped without gnutls-bin.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_lib import SKIP, Failure, check, main  # noqa: E402

SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
GNUTLS_CIPHER = {"TLS_AES_128_GCM_SHA256": "AES-128-GCM", "TLS_AES_256_GCM_SHA384": "AES-256-GCM",
                 "TLS_CHACHA20_POLY1305_SHA256": "CHACHA20-POLY1305"}
GROUPS = {"x25519": ("X25519", "GROUP-X25519"), "P-256": ("P-256", "GROUP-SECP256R1")}


class Proc:
    """A child with stdin kept open and stdout/stderr collected by threads."""

    def __init__(self, cmd, cwd=None):
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=cwd)
        self.out = bytearray()
        self.err = bytearray()
        self.threads = [threading.Thread(target=self._pump, args=(self.p.stdout, self.out), daemon=True),
                        threading.Thread(target=self._pump, args=(self.p.stderr, self.err), daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _pump(f, buf):
        while True:
            b = f.read1(65536)
            if not b:
                return
            buf.extend(b)

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass

    def wait_for(self, needle, what, timeout=10, stream="out"):
        buf = self.out if stream == "out" else self.err
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in buf:
                return
            time.sleep(0.02)
        raise Failure(f"{what}: {needle[:60]!r} not seen from {self.cmd[0]} "
                      f"(stdout {bytes(self.out[-300:])!r}, stderr {bytes(self.err[-600:])!r})")

    def wait(self, timeout=15):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        for t in self.threads:
            t.join(timeout=2)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.wait()

    def stderr(self):
        return self.err.decode(errors="replace")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listen(port, timeout=10):
    """Waits until something listens on port, without connecting to it."""
    hexport = f"{port:04X}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    for line in f.readlines()[1:]:
                        cols = line.split()
                        if cols[1].endswith(":" + hexport) and cols[3] == "0A":
                            return
            except OSError:
                pass
        time.sleep(0.02)
    raise Failure(f"nothing listens on port {port}")


def make_pki(d):
    def run(cmd):
        p = subprocess.run(cmd, cwd=d, capture_output=True, text=True)
        if p.returncode != 0:
            raise Failure(f"{' '.join(cmd)}: {p.stderr.strip()}")

    ext = os.path.join(d, "leaf.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    for ca in ("ca", "otherca"):
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=ustack {ca}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
    keys = {"rsa": ["-newkey", "rsa:2048"], "p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "ed25519": ["-newkey", "ed25519"]}
    keys["untrusted"] = keys["p256"]
    for name, args in keys.items():
        ca = "otherca" if name == "untrusted" else "ca"
        run(["openssl", "req", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost"] + args)
        run(["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "leaf.ext"])


class Env:
    def __init__(self, exe, d):
        self.exe = exe
        self.d = d

    def path(self, name):
        return os.path.join(self.d, name)


def handshake_line(stderr):
    for line in stderr.splitlines():
        if "handshake:" in line:
            return line
    return ""


def ustack_client_vs_openssl(env, what, client_args=(), server_args=(), leaf="rsa", expect=(), resume=False,
                             early=None, sclient_extra=None):
    """ustack-tls client <-> openssl s_server; data both ways byte for byte."""
    port = free_port()
    naccept = "2" if resume else "1"
    srv = Proc(["openssl", "s_server", "-tls1_3", "-quiet", "-naccept", naccept, "-accept", str(port),
                "-cert", env.path(f"{leaf}.pem"), "-key", env.path(f"{leaf}.key")] + list(server_args))
    try:
        wait_listen(port)
        rounds = [False, True] if resume else [True]
        for last in rounds:
            up = os.urandom(3000)
            down = os.urandom(2000)
            args = [env.exe, "client", "127.0.0.1", str(port), "--ca", env.path("ca.pem"), "--sni", "localhost"]
            args += list(client_args)
            if resume:
                args += ["--sess-in", env.path("sess")] if last else ["--sess-out", env.path("sess")]
                if last and early is not None:
                    with open(env.path("early"), "wb") as f:
                        f.write(early)
                    args += ["--early-data", env.path("early")]
            cli = Proc(args)
            cli.wait_for(b"handshake:", f"{what}: handshake", stream="err")
            cli.write(up)
            srv.write(down)
            srv.wait_for(up, f"{what}: client -> s_server data")
            cli.wait_for(down, f"{what}: s_server -> client data")
            if last and early is not None:
                srv.wait_for(early, f"{what}: early data at s_server")
            cli.close_stdin()
            rc = cli.wait()
            line = handshake_line(cli.stderr())
            if rc != 0:
                raise Failure(f"{what}: ustack-tls client exited {rc}: {cli.stderr()}")
            if last:
                for e in expect:
                    if e not in line:
                        raise Failure(f"{what}: expected {e!r} in {line!r}")
            srv.out.clear()
        check(True, f"{what}: {handshake_line(cli.stderr()).split('handshake: ')[1]}")
        return cli.stderr()
    finally:
        srv.close_stdin()
        srv.kill()


def openssl_client_vs_ustack(env, what, sclient_args=(), server_args=(), leaf="rsa", expect=(), resume=False,
                             early=None, commands=False, expect_close=None):
    """openssl s_client <-> ustack-tls server --echo; the echo must match byte for byte."""
    port = free_port()
    count = "2" if resume else "1"
    srv = Proc([env.exe, "server", "--port", str(port), "--cert", env.path(f"{leaf}.pem"), "--key",
                env.path(f"{leaf}.key"), "--echo", "--count", count] + list(server_args))
    try:
        wait_listen(port)
        for last in ([False, True] if resume else [True]):
            # s_client treats a line starting with Q/R/k/K as a command unless -nocommands.
            data = os.urandom(1500).hex().encode() + b"\n" if not commands else b"after-key-update\n"
            args = ["openssl", "s_client", "-tls1_3", "-quiet", "-no_ign_eof", "-connect", f"127.0.0.1:{port}",
                    "-CAfile", env.path("ca.pem"), "-verify_return_error", "-verify_hostname", "localhost",
                    "-servername", "localhost"] + list(sclient_args)
            if not commands:
                args.append("-nocommands")
            if resume:
                args += ["-sess_in", env.path("ssess")] if last else ["-sess_out", env.path("ssess")]
                if last and early is not None:
                    with open(env.path("searly"), "wb") as f:
                        f.write(early)
                    args += ["-early_data", env.path("searly")]
            cli = Proc(args)
            if commands:
                # s_client reads a whole line as a command: 'K' alone asks for KeyUpdate(update_requested).
                cli.wait_for(b"verify return:1\ndepth=0", f"{what}: s_client connected", stream="err")
                cli.write(b"K\n")
                cli.wait_for(b"KEYUPDATE", f"{what}: s_client sent KeyUpdate", stream="err")
                time.sleep(0.2)
            if not (last and early is not None):
                cli.write(data)
            want = data if not commands else b"after-key-update\n"
            if last and early is not None:
                want = early
            cli.wait_for(want, f"{what}: echo through ustack-tls server")
            if not commands:
                time.sleep(0.1)
            cli.close_stdin()
            cli.wait()
        srv.wait(timeout=10)
        text = srv.stderr()
        lines = [ln for ln in text.splitlines() if "handshake:" in ln]
        if not lines:
            raise Failure(f"{what}: no handshake at the ustack-tls server: {text}")
        for e in expect:
            if e not in lines[-1] and e not in text:
                raise Failure(f"{what}: expected {e!r} in the server's report: {text}")
        check(True, f"{what}: {lines[-1].split('handshake: ')[1]}")
        return text
    finally:
        srv.kill()


def gnutls_cases(env):
    if shutil.which("gnutls-serv") is None or shutil.which("gnutls-cli") is None:
        print("skip: gnutls-bin is not installed (apt-get install gnutls-bin)", flush=True)
        return
    for suite in SUITES:
        for gname, (_, gprio) in GROUPS.items():
            prio = f"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+{GNUTLS_CIPHER[suite]}:-GROUP-ALL:+{gprio}"
            what = f"gnutls-serv {suite} {gname}"
            port = free_port()
            srv = Proc(["gnutls-serv", "--echo", "-p", str(port), "--x509certfile", env.path("p256.pem"),
                        "--x509keyfile", env.path("p256.key"), "--priority", prio])
            try:
                wait_listen(port)
                cli = Proc([env.exe, "client", "127.0.0.1", str(port), "--ca", env.path("ca.pem"), "--sni", "localhost"])
                data = os.urandom(1000).hex().encode() + b"\n"
                cli.write(data)
                cli.wait_for(data, f"{what}: echo")
                cli.close_stdin()
                rc = cli.wait()
                line = handshake_line(cli.stderr())
                if rc != 0 or suite not in line or f"group={'x25519' if gname == 'x25519' else 'secp256r1'}" not in line:
                    raise Failure(f"{what}: rc {rc}, {cli.stderr()}")
                check(True, f"{what}: {line.split('handshake: ')[1]}")
            finally:
                srv.kill()

            what = f"gnutls-cli {suite} {gname}"
            port = free_port()
            srv = Proc([env.exe, "server", "--port", str(port), "--cert", env.path("ed25519.pem"), "--key",
                        env.path("ed25519.key"), "--echo", "--count", "1"])
            try:
                wait_listen(port)
                cli = Proc(["gnutls-cli", "-p", str(port), "--x509cafile", env.path("ca.pem"), "--priority", prio,
                            "localhost"])
                data = os.urandom(1000).hex().encode() + b"\n"
                cli.write(data)
                cli.wait_for(data, f"{what}: echo")
                cli.close_stdin()
                cli.wait()
                if srv.wait() != 0:
                    raise Failure(f"{what}: ustack-tls server failed: {srv.stderr()}")
                line = handshake_line(srv.stderr())
                if suite not in line:
                    raise Failure(f"{what}: {srv.stderr()}")
                check(True, f"{what}: {line.split('handshake: ')[1]}")
            finally:
                srv.kill()


def negative_cases(env):
    # Untrusted issuer: our client refuses with unknown_ca.
    port = free_port()
    srv = Proc(["openssl", "s_server", "-tls1_3", "-quiet", "-naccept", "1", "-accept", str(port),
                "-cert", env.path("rsa.pem"), "-key", env.path("rsa.key")])
    try:
        wait_listen(port)
        cli = Proc([env.exe, "client", "127.0.0.1", str(port), "--ca", env.path("otherca.pem"), "--sni", "localhost"])
        rc = cli.wait()
        check(rc == 1 and "alert sent: unknown_ca" in cli.stderr(), "untrusted server certificate: unknown_ca")
    finally:
        srv.kill()
    # Wrong host name: bad_certificate.
    port = free_port()
    srv = Proc(["openssl", "s_server", "-tls1_3", "-quiet", "-naccept", "1", "-accept", str(port),
                "-cert", env.path("rsa.pem"), "-key", env.path("rsa.key")])
    try:
        wait_listen(port)
        cli = Proc([env.exe, "client", "127.0.0.1", str(port), "--ca", env.path("ca.pem"), "--sni", "wrong.example"])
        rc = cli.wait()
        check(rc == 1 and "alert sent: bad_certificate" in cli.stderr(), "wrong host name: bad_certificate")
    finally:
        srv.kill()
    # s_client that does not trust us: our server reports the alert it received.
    port = free_port()
    srv = Proc([env.exe, "server", "--port", str(port), "--cert", env.path("rsa.pem"), "--key",
                env.path("rsa.key"), "--echo", "--count", "1"])
    try:
        wait_listen(port)
        cli = Proc(["openssl", "s_client", "-tls1_3", "-quiet", "-connect", f"127.0.0.1:{port}",
                    "-CAfile", env.path("otherca.pem"), "-verify_return_error"])
        cli.close_stdin()
        cli.wait()
        rc = srv.wait()
        check(rc == 1 and "alert received: unknown_ca" in srv.stderr(),
              "s_client refuses our certificate: server sees unknown_ca")
    finally:
        srv.kill()
    # No ALPN in common: our server alerts no_application_protocol.
    port = free_port()
    srv = Proc([env.exe, "server", "--port", str(port), "--cert", env.path("rsa.pem"), "--key",
                env.path("rsa.key"), "--echo", "--count", "1", "--alpn", "h2"])
    try:
        wait_listen(port)
        cli = Proc(["openssl", "s_client", "-tls1_3", "-quiet", "-connect", f"127.0.0.1:{port}",
                    "-CAfile", env.path("ca.pem"), "-alpn", "foo"])
        cli.close_stdin()
        cli.wait()
        rc = srv.wait()
        check(rc == 1 and "alert sent: no_application_protocol" in srv.stderr(),
              "no common ALPN: no_application_protocol")
    finally:
        srv.kill()


def client_certificate_cases(env):
    # Our server requires a client certificate from our CA; s_client presents a P-256 one.
    # (s_client sends the CA after the leaf: it builds its chain from -CAfile.) The
    # server's key is RSA, so sig= here is the client's ECDSA CertificateVerify.
    text = openssl_client_vs_ustack(env, "s_client presents a client certificate",
                                    sclient_args=["-cert", env.path("p256.pem"), "-key", env.path("p256.key")],
                                    server_args=["--client-ca", env.path("ca.pem")],
                                    expect=["sig=ecdsa_secp256r1_sha256"])
    check("peer_certs=" in text and "peer_certs=0" not in text, "our server verified s_client's certificate chain")
    # Our client presents an RSA certificate (RSA-PSS CertificateVerify) to s_server -Verify 1,
    # which refuses the handshake without one (checked below): data both ways means it took ours.
    ustack_client_vs_openssl(env, "s_server -Verify 1: ustack-tls presents a client certificate",
                             client_args=["--cert", env.path("rsa.pem"), "--key", env.path("rsa.key")],
                             server_args=["-Verify", "1", "-CAfile", env.path("ca.pem"), "-verify_return_error"])
    # Required but missing, or from a CA we do not trust: our server refuses.
    for what, extra, alert in (
            ("s_client without a client certificate", [], "certificate_required"),
            ("s_client with an untrusted client certificate",
             ["-cert", env.path("untrusted.pem"), "-key", env.path("untrusted.key")], "unknown_ca")):
        port = free_port()
        srv = Proc([env.exe, "server", "--port", str(port), "--cert", env.path("rsa.pem"), "--key",
                    env.path("rsa.key"), "--echo", "--count", "1", "--client-ca", env.path("ca.pem")])
        try:
            wait_listen(port)
            cli = Proc(["openssl", "s_client", "-tls1_3", "-quiet", "-connect", f"127.0.0.1:{port}",
                        "-CAfile", env.path("ca.pem"), "-servername", "localhost"] + extra)
            cli.write(b"must not be echoed\n")
            rc = srv.wait()
            cli.close_stdin()
            cli.wait()
            check(rc == 1 and f"alert sent: {alert}" in srv.stderr() and b"must not be echoed" not in cli.out,
                  f"{what}: our server sends {alert}, no data released")
        finally:
            srv.kill()
    # s_server -Verify 1 and our client without a certificate: s_server's alert reaches us.
    port = free_port()
    srv = Proc(["openssl", "s_server", "-tls1_3", "-quiet", "-naccept", "1", "-accept", str(port),
                "-cert", env.path("rsa.pem"), "-key", env.path("rsa.key"), "-Verify", "1", "-CAfile", env.path("ca.pem")])
    try:
        wait_listen(port)
        cli = Proc([env.exe, "client", "127.0.0.1", str(port), "--ca", env.path("ca.pem"), "--sni", "localhost"])
        cli.write(b"must not arrive\n")
        rc = cli.wait()
        check(rc == 1 and "alert received: certificate_required" in cli.stderr() and b"must not arrive" not in srv.out,
              "s_server -Verify 1, no client certificate: certificate_required reaches ustack-tls")
    finally:
        srv.kill()


def body():
    if len(sys.argv) != 2:
        raise Failure("usage: tls.py USTACK_TLS_EXE")
    if shutil.which("openssl") is None:
        print("skip: openssl is not installed", flush=True)
        sys.exit(SKIP)
    exe = os.path.abspath(sys.argv[1])
    d = tempfile.mkdtemp(prefix="ustack-tls-")
    try:
        make_pki(d)
        env = Env(exe, d)
        for suite in SUITES:
            for gname, (ogroup, _) in GROUPS.items():
                ustack_client_vs_openssl(env, f"s_server {suite} {gname}", client_args=["--suites", suite, "--shares", gname],
                                         server_args=["-groups", ogroup], expect=[suite, "hrr=no"])
                openssl_client_vs_ustack(env, f"s_client {suite} {gname}",
                                         sclient_args=["-ciphersuites", suite, "-groups", ogroup], expect=[suite])
        for leaf, sig in (("p256", "ecdsa_secp256r1_sha256"), ("ed25519", "ed25519")):
            ustack_client_vs_openssl(env, f"s_server {leaf} certificate", leaf=leaf, expect=[f"sig={sig}"])
            openssl_client_vs_ustack(env, f"s_client {leaf} certificate", leaf=leaf, expect=[f"sig={sig}"])
        ustack_client_vs_openssl(env, "s_server HelloRetryRequest", client_args=["--shares", "x25519"],
                                 server_args=["-groups", "P-256"], expect=["hrr=yes", "group=secp256r1"])
        openssl_client_vs_ustack(env, "s_client HelloRetryRequest", server_args=["--groups", "P-256"],
                                 expect=["hrr=yes", "group=secp256r1"])
        ustack_client_vs_openssl(env, "s_server ALPN", client_args=["--alpn", "h2,http/1.1"],
                                 server_args=["-alpn", "http/1.1"], expect=["alpn=http/1.1"])
        ustack_client_vs_openssl(env, "s_server resumption", resume=True, expect=["resumed=yes"])
        early = b"early data: " + os.urandom(400).hex().encode() + b"\n"
        ustack_client_vs_openssl(env, "s_server 0-RTT", resume=True, early=early, server_args=["-early_data"],
                                 expect=["resumed=yes", "early_data=accepted"])
        openssl_client_vs_ustack(env, "s_client resumption", resume=True, expect=["resumed=yes"])
        openssl_client_vs_ustack(env, "s_client 0-RTT", resume=True, early=early, server_args=["--early-data"],
                                 expect=["resumed=yes", "early_data=accepted"])
        err = ustack_client_vs_openssl(env, "KeyUpdate from ustack-tls (update_requested)",
                                       client_args=["--key-update"])
        check("key_updates sent=1 received=1" in err, "s_server answered our KeyUpdate with its own")
        err = openssl_client_vs_ustack(env, "KeyUpdate from s_client ('K')", commands=True)
        check("key_updates sent=1 received=1" in err, "we answered s_client's requested KeyUpdate")
        client_certificate_cases(env)
        gnutls_cases(env)
        negative_cases(env)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    main(body)
