// ustack-tls: the TLS 1.3 engine's record face over kernel TCP sockets.
//
//   ustack-tls server --port P --cert C --key K [--alpn A[,B]] [--early-data]
//                     [--echo] [--groups G[,G]] [--suites S[,S]] [--count N]
//                     [--client-ca F] [--key-update]
//   ustack-tls client HOST PORT [--ca FILE] [--sni NAME] [--alpn A[,B]]
//                     [--sess-out F] [--sess-in F] [--early-data FILE]
//                     [--groups G[,G]] [--shares G[,G]] [--suites S[,S]]
//                     [--cert C --key K] [--key-update]
//
// stdin goes to the peer, the peer's data to stdout (the server's --echo
// sends it back instead). The client closes (close_notify) at EOF on stdin
// and exits 0 once the peer has closed too. What was negotiated goes to
// stderr as one "handshake:" line. SSLKEYLOGFILE, if set, receives the NSS
// key log. This is a test and interop tool: one connection at a time.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "tls/record_layer.hpp"
#include "tls/replay.hpp"

using namespace ustack;
using namespace ustack::tls;

namespace {

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "ustack-tls: %s\n", msg);
  std::fprintf(stderr,
               "usage: ustack-tls server --port P --cert C --key K [--alpn A] [--early-data] [--echo]\n"
               "                         [--groups G] [--suites S] [--count N] [--client-ca F] [--key-update]\n"
               "       ustack-tls client HOST PORT [--ca FILE] [--sni NAME] [--alpn A] [--sess-out F]\n"
               "                         [--sess-in F] [--early-data FILE] [--groups G] [--shares G]\n"
               "                         [--suites S] [--cert C --key K] [--key-update]\n");
  std::exit(2);
}

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t c = s.find(',', start);
    const std::string part = s.substr(start, c == std::string::npos ? std::string::npos : c - start);
    if (!part.empty()) out.push_back(part);
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

std::vector<std::uint16_t> parse_groups(const std::string& s) {
  std::vector<std::uint16_t> out;
  for (const auto& g : split(s)) {
    if (g == "x25519" || g == "X25519") out.push_back(group::x25519);
    else if (g == "P-256" || g == "secp256r1" || g == "p256") out.push_back(group::secp256r1);
    else usage(("unknown group " + g).c_str());
  }
  return out;
}

std::vector<std::uint16_t> parse_suites(const std::string& s) {
  std::vector<std::uint16_t> out;
  for (const auto& n : split(s)) {
    bool found = false;
    for (auto id : {TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256}) {
      if (n == find_suite(id)->name) {
        out.push_back(id);
        found = true;
      }
    }
    if (!found) usage(("unknown cipher suite " + n).c_str());
  }
  return out;
}

std::optional<Buf> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  return Buf(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

bool write_all(int fd, Bytes b) {
  std::size_t off = 0;
  while (off < b.size()) {
    const ssize_t n = ::write(fd, b.data() + off, b.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::function<void(std::string_view)> keylog_writer() {
  const char* path = std::getenv("SSLKEYLOGFILE");
  if (path == nullptr || *path == 0) return {};
  std::string p(path);
  return [p](std::string_view line) {
    if (FILE* f = std::fopen(p.c_str(), "a")) {
      std::fprintf(f, "%.*s\n", static_cast<int>(line.size()), line.data());
      std::fclose(f);
    }
  };
}

void report_handshake(const RecordConnection& c) {
  const Engine& e = c.engine();
  const char* early = "none";
  if (e.early_data_offered()) early = e.early_data_accepted() ? "accepted" : "rejected";
  // peer_certs: the certificates the peer sent and we verified (a server's
  // count is the client certificate chain's; 0 when none was asked or sent).
  std::fprintf(stderr,
               "ustack-tls: handshake: suite=%s group=%s sig=%s alpn=%s resumed=%s early_data=%s hrr=%s peer_certs=%zu\n",
               e.suite()->name, std::string(group_name(e.group())).c_str(),
               e.resumed() ? "-" : std::string(scheme_name(e.signature_scheme())).c_str(),
               e.alpn().empty() ? "-" : e.alpn().c_str(), e.resumed() ? "yes" : "no", early,
               e.did_hrr() ? "yes" : "no", e.peer_chain().size());
}

struct RunOptions {
  bool echo = false;
  bool use_stdin = true;
  bool key_update = false;
};

// Drives one connection until both sides closed or something failed. Returns the exit code.
int run(int fd, RecordConnection& conn, const RunOptions& o) {
  bool reported = false;
  bool stdin_open = o.use_stdin;
  bool key_update_done = !o.key_update;
  bool peer_eof = false;
  std::uint8_t buf[65536];
  auto flush = [&]() { return write_all(fd, conn.take_output()); };
  if (!flush()) {
    std::fprintf(stderr, "ustack-tls: write failed: %s\n", std::strerror(errno));
    return 1;
  }
  while (true) {
    if (conn.handshake_complete() && !reported) {
      reported = true;
      report_handshake(conn);
    }
    if (conn.handshake_complete() && !key_update_done) {
      key_update_done = true;
      (void)conn.key_update(true);
      flush();
    }
    if (conn.failed()) break;
    if (conn.peer_closed()) {
      conn.close();  // answer close_notify with close_notify (§6.1)
      flush();
      break;
    }
    if (peer_eof) break;
    pollfd p[2] = {{fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    const bool watch_stdin = stdin_open && conn.handshake_complete();
    const int n = ::poll(p, watch_stdin ? 2 : 1, 30000);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      std::fprintf(stderr, "ustack-tls: timed out\n");
      return 1;
    }
    if (p[0].revents != 0) {
      const ssize_t r = ::read(fd, buf, sizeof buf);
      if (r <= 0) {
        peer_eof = true;
      } else {
        (void)conn.feed(Bytes(buf, static_cast<std::size_t>(r)));
        const Buf app = conn.take_app_data();
        if (!app.empty()) {
          if (o.echo) {
            (void)conn.write(app);
          } else {
            write_all(STDOUT_FILENO, app);
          }
        }
      }
    }
    if (watch_stdin && p[1].revents != 0) {
      const ssize_t r = ::read(STDIN_FILENO, buf, sizeof buf);
      if (r <= 0) {
        stdin_open = false;
        conn.close();
      } else {
        (void)conn.write(Bytes(buf, static_cast<std::size_t>(r)));
      }
    }
    if (!flush()) {
      peer_eof = true;
    }
  }
  if (conn.alert_sent()) {
    std::fprintf(stderr, "ustack-tls: alert sent: %s (%s)\n", std::string(to_string(*conn.alert_sent())).c_str(), conn.why());
    return 1;
  }
  if (conn.alert_received()) {
    std::fprintf(stderr, "ustack-tls: alert received: %s\n", std::string(to_string(*conn.alert_received())).c_str());
    return 1;
  }
  if (!conn.handshake_complete()) {
    std::fprintf(stderr, "ustack-tls: connection closed during the handshake\n");
    return 1;
  }
  std::fprintf(stderr, "ustack-tls: closed: key_updates sent=%d received=%d early_bytes=%zu\n", conn.key_updates_sent(),
               conn.key_updates_received(), conn.early_bytes());
  if (!conn.peer_closed()) {
    std::fprintf(stderr, "ustack-tls: peer closed the connection without close_notify\n");
    return 1;
  }
  return 0;
}

int client_main(int argc, char** argv) {
  if (argc < 4) usage("client needs HOST and PORT");
  const std::string host = argv[2];
  const std::string port = argv[3];
  ClientConfig cfg;
  cfg.server_name = host;
  std::string ca, sess_in, sess_out, early_file, cert, key;
  RunOptions o;
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--ca") ca = val();
    else if (a == "--sni") cfg.server_name = val();
    else if (a == "--alpn") cfg.alpn = split(val());
    else if (a == "--sess-out") sess_out = val();
    else if (a == "--sess-in") sess_in = val();
    else if (a == "--early-data") early_file = val();
    else if (a == "--groups") cfg.groups = parse_groups(val());
    else if (a == "--shares") cfg.key_share_groups = parse_groups(val());
    else if (a == "--suites") cfg.cipher_suites = parse_suites(val());
    else if (a == "--cert") cert = val();
    else if (a == "--key") key = val();
    else if (a == "--key-update") o.key_update = true;
    else usage(("unknown option " + a).c_str());
  }
  TrustStore trust;
  if (!ca.empty() ? !trust.add_file(ca) : !trust.add_system_default()) usage("cannot load the CA file");
  cfg.trust = &trust;
  cfg.now_ms = wall_ms();
  if (!cert.empty()) {
    cfg.cert_chain = load_cert_chain_pem(cert);
    cfg.key = PKey::load_private_pem(key);
    if (cfg.cert_chain.empty() || !cfg.key) usage("cannot load --cert/--key");
  }
  if (!sess_in.empty()) {
    auto b = read_file(sess_in);
    if (!b) usage("cannot read --sess-in");
    cfg.session = Session::parse(*b);
    if (!cfg.session) usage("--sess-in is not a ustack-tls session");
  }
  Buf early;
  if (!early_file.empty()) {
    auto b = read_file(early_file);
    if (!b) usage("cannot read --early-data");
    early = std::move(*b);
    cfg.send_early_data = true;
  }

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) usage("cannot resolve HOST");
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    std::fprintf(stderr, "ustack-tls: cannot connect to %s:%s: %s\n", host.c_str(), port.c_str(), std::strerror(errno));
    return 1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  RecordConnection conn(cfg);
  conn.set_keylog(keylog_writer());
  if (!conn.start()) return 1;
  if (!early.empty()) (void)conn.write(early);  // 0-RTT when the ticket allows, else after the handshake
  const int rc = run(fd, conn, o);
  ::close(fd);
  if (!sess_out.empty() && !conn.engine().sessions().empty()) {
    const Buf s = conn.engine().sessions().back().serialize();
    std::ofstream f(sess_out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(s.data()), static_cast<std::streamsize>(s.size()));
  }
  return rc;
}

int server_main(int argc, char** argv) {
  ServerConfig cfg;
  std::string port, cert, key, client_ca;
  long count = -1;
  RunOptions o;
  bool early = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--port") port = val();
    else if (a == "--cert") cert = val();
    else if (a == "--key") key = val();
    else if (a == "--alpn") cfg.alpn = split(val());
    else if (a == "--early-data") early = true;
    else if (a == "--echo") o.echo = true;
    else if (a == "--groups") cfg.groups = parse_groups(val());
    else if (a == "--suites") cfg.cipher_suites = parse_suites(val());
    else if (a == "--count") count = std::strtol(val().c_str(), nullptr, 10);
    else if (a == "--client-ca") client_ca = val();
    else if (a == "--key-update") o.key_update = true;
    else usage(("unknown option " + a).c_str());
  }
  if (port.empty() || cert.empty() || key.empty()) usage("server needs --port, --cert and --key");
  cfg.cert_chain = load_cert_chain_pem(cert);
  cfg.key = PKey::load_private_pem(key);
  if (cfg.cert_chain.empty() || !cfg.key) usage("cannot load --cert/--key");
  TrustStore client_trust;
  if (!client_ca.empty()) {
    if (!client_trust.add_file(client_ca)) usage("cannot load --client-ca");
    cfg.request_client_cert = true;
    cfg.require_client_cert = true;
    cfg.client_trust = &client_trust;
  }
  // A fresh ticket key per process; a long-running server would rotate it
  // by pushing a new key in front of ticket_keys and dropping the oldest.
  TicketKey tk;
  random_bytes(tk.name);
  random_bytes(tk.key);
  cfg.ticket_keys = {tk};
  SingleUseTickets replay(1 << 16, std::uint64_t{cfg.ticket_lifetime} * 1000);
  if (early) {
    cfg.max_early_data = 16384;
    cfg.replay = &replay;
  }
  o.use_stdin = !o.echo;

  const int ls = ::socket(AF_INET6, SOCK_STREAM, 0);
  const int one = 1, zero = 0;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_any;
  addr.sin6_port = htons(static_cast<std::uint16_t>(std::strtol(port.c_str(), nullptr, 10)));
  if (::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(ls, 16) != 0) {
    std::fprintf(stderr, "ustack-tls: cannot listen on port %s: %s\n", port.c_str(), std::strerror(errno));
    return 1;
  }
  std::fprintf(stderr, "ustack-tls: listening on port %s\n", port.c_str());
  int rc = 0;
  for (long n = 0; count < 0 || n < count; ++n) {
    const int fd = ::accept(ls, nullptr, nullptr);
    if (fd < 0) continue;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    cfg.now_ms = wall_ms();
    replay.advance(cfg.now_ms);
    RecordConnection conn(cfg);
    conn.set_keylog(keylog_writer());
    if (!conn.start()) {
      ::close(fd);
      rc = 1;
      continue;
    }
    const int r = run(fd, conn, o);
    ::close(fd);
    if (r != 0) rc = r;
  }
  ::close(ls);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("which: server or client");
  const std::string which = argv[1];
  if (which == "server") return server_main(argc, argv);
  if (which == "client") return client_main(argc, argv);
  usage("which: server or client");
}
