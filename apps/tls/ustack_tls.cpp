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
//
// Over ustack's own TCP instead of the kernel's: append "--" and what
// `ustack` would take, EAL arguments then, after a second "--", the stack's
// options (--ip is required; --gw, --mac, --port, --pcap-out, --tcp-* ...):
//
//   ustack-tls client 10.0.0.1 4433 --ca ca.pem
//       -- --vdev=net_af_packet0,iface=veth0 -- --ip 10.0.0.2/24
//
// One lcore runs the stack (src/runtime, as `ustack` does); the record face
// is driven from its loop (a LoopHook), stdin read and stdout written without
// blocking it. The runtime's own log ("EAL args", "ready", the stats line)
// goes to stderr, so that stdout carries only the peer's data. HOST must be
// an IPv4 address there (no resolver).
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
#include <fcntl.h>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/eal_args.hpp"
#include "runtime/engine.hpp"
#include "runtime/options.hpp"
#include "runtime/runtime.hpp"
#include "tls/record_layer.hpp"
#include "tls/replay.hpp"

using namespace ustack;
using namespace ustack::tls;

namespace {

void print_usage(FILE* f) {
  std::fprintf(f,
               "usage: ustack-tls server --port P --cert C --key K [--alpn A] [--early-data] [--echo]\n"
               "                         [--groups G] [--suites S] [--count N] [--client-ca F] [--key-update]\n"
               "       ustack-tls client HOST PORT [--ca FILE] [--sni NAME] [--alpn A] [--sess-out F]\n"
               "                         [--sess-in F] [--early-data FILE] [--groups G] [--shares G]\n"
               "                         [--suites S] [--cert C --key K] [--key-update]\n"
               "  either one over ustack's TCP instead of the kernel's: append\n"
               "    -- EAL-ARGS -- --ip A.B.C.D/N [--gw A.B.C.D] [other ustack options]\n"
               "  (what `ustack` takes; one lcore; HOST an IPv4 address), e.g.\n"
               "    -- --vdev=net_af_packet0,iface=veth0 -- --ip 10.0.0.2/24\n");
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "ustack-tls: %s\n", msg);
  print_usage(stderr);
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
  const tls::Engine& e = c.engine();
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

// The end of a connection, the same over either TCP: what went wrong, or the
// closing summary. Returns the exit code.
int finish_report(const RecordConnection& conn) {
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
  return finish_report(conn);
}

// ---- over ustack's TCP ------------------------------------------------------

// The stack's half of the command line: what follows the first "--".
struct StackArgs {
  std::vector<std::string> eal;  // argv[0] first
  std::vector<std::string> app;  // after the second "--"
};

// Parses the stack's options and starts the runtime (EAL, port, one lcore
// with TCP). Moves the process's stdout to stderr first (the runtime logs
// there) and returns in `data_fd` a descriptor for the peer's data. Exits 2
// on a usage error; returns nullptr (reported) on a runtime failure.
std::unique_ptr<Runtime> start_stack(const StackArgs& a, int& data_fd) {
  std::string err;
  const auto opts = parse_app_options(a.app, err);
  if (!opts) usage(("stack options: " + err).c_str());
  if (opts->help) usage("the stack options are ustack's (ustack --help)");
  if (!opts->services.empty() || !opts->gets.empty() || !opts->pings.empty())
    usage("--tcp-echo, --tcp-discard, --tcp-source, --tcp-get and --ping are ustack's, not ustack-tls's");
  std::fflush(stdout);
  data_fd = ::dup(STDOUT_FILENO);
  if (data_fd < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    std::fprintf(stderr, "ustack-tls: cannot move stdout: %s\n", std::strerror(errno));
    return nullptr;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const auto eal = effective_eal_args(a.eal, probe_eal_environment());
  std::printf("EAL args: %s\n", join_args(eal).c_str());
  auto rt = Runtime::create(eal, *opts, err);
  if (!rt) {
    std::fprintf(stderr, "ustack-tls: %s\n", err.c_str());
    return nullptr;
  }
  if (rt->queue_count() != 1) {
    std::fprintf(stderr, "ustack-tls: runs on one lcore (give -l with one CPU, or none)\n");
    return nullptr;
  }
  return rt;
}

// One TLS connection at a time on queue 0's TcpLayer, driven from the lcore's
// loop (LoopHook::poll, every iteration): TCP -> record face -> stdout (or
// back, --echo), stdin -> record face -> TCP. The TcpLayer callbacks only
// note events; the pump reads and writes. Both backlogs (TLS bytes TCP has no
// room for yet, data stdout has not taken yet) are bounded: past kBacklog
// nothing more is read, so the peer is flow-controlled by TCP's window.
// This is a tool: the record face allocates as it goes (not the stack's
// zero-allocation data path).
class StackTls final : public LoopHook, public tcp::TcpHandler {
 public:
  using MakeServerConn = std::function<std::unique_ptr<RecordConnection>()>;

  StackTls(Runtime& rt, tcp::TcpLayer& tcp, const RunOptions& o, int data_fd)
      : rt_(rt), tcp_(tcp), o_(o), data_fd_(data_fd) {}

  void client(Ipv4Addr dst, std::uint16_t port, RecordConnection& conn) {
    dst_ = dst;
    port_ = port;
    conn_ = &conn;
  }
  void server(std::uint16_t port, long count, MakeServerConn make) {
    port_ = port;
    count_ = count;
    make_ = std::move(make);
  }
  bool finished() const { return finished_; }
  // A server stopped (SIGINT) while waiting for a connection ended normally.
  bool between_connections() const { return make_ && phase_ == Phase::idle; }
  int rc() const { return rc_; }

  void poll(TimeNs now) override {
    if (!started_) start(now);
    if (finished_) return;
    if (phase_ == Phase::tls) pump(now);
    if (phase_ == Phase::draining) drain(now);
    if (phase_ == Phase::lingering) linger(now);
  }
  void after_flush(TimeNs) override {}

  void on_accept(tcp::TcpLayer& t, TcpListenerId, TcpConnId c, TimeNs now) override {
    if (c_ || phase_ != Phase::idle) {
      t.abort(c, now);  // one connection at a time
      return;
    }
    owned_ = make_();
    if (!owned_) {
      t.abort(c, now);
      rc_ = 1;
      return;
    }
    conn_ = owned_.get();
    begin(c, now);
  }
  void on_connected(tcp::TcpLayer&, TcpConnId c, TimeNs now) override { begin(c, now); }
  void on_closed(tcp::TcpLayer&, TcpConnId, TcpError err, TimeNs now) override {
    c_.reset();
    if (phase_ == Phase::connecting) {
      std::fprintf(stderr, "ustack-tls: cannot connect to %s:%u: %s\n", dst_.to_string().c_str(), port_,
                   to_string(err));
      rc_ = 1;
      finish();
      return;
    }
    if (phase_ == Phase::tls) end_tls(now);
    if (phase_ == Phase::draining) {
      phase_ = Phase::lingering;
      deadline_ = now + kLinger;
    }
  }

 private:
  enum class Phase : std::uint8_t { idle, connecting, tls, draining, lingering };
  static constexpr std::size_t kBacklog = 256 * 1024;
  static constexpr TimeNs kIdleTimeout = 30 * kNsPerSec;  // as the kernel path's poll()
  static constexpr TimeNs kLinger = 2 * kNsPerSec;         // for our FIN to be acknowledged

  void start(TimeNs now) {
    started_ = true;
    if (make_) {
      if (!tcp_.listen(port_, 16, this)) {
        std::fprintf(stderr, "ustack-tls: cannot listen on port %u\n", port_);
        rc_ = 1;
        finish();
        return;
      }
      std::fprintf(stderr, "ustack-tls: listening on port %u\n", port_);
      return;
    }
    phase_ = Phase::connecting;
    c_ = tcp_.connect(dst_, port_, this, nullptr, now);
    if (!c_) {
      std::fprintf(stderr, "ustack-tls: cannot connect to %s:%u: no connection slot or source port\n",
                   dst_.to_string().c_str(), port_);
      rc_ = 1;
      finish();
    }
  }

  void begin(TcpConnId c, TimeNs now) {
    c_ = c;
    phase_ = Phase::tls;
    active_ = now;
    reported_ = false;
    stdin_open_ = o_.use_stdin;
    key_update_done_ = !o_.key_update;
    tx_.clear();
    tx_off_ = 0;
    out_.clear();
    out_off_ = 0;
  }

  std::size_t tx_pending() const { return tx_.size() - tx_off_; }
  std::size_t out_pending() const { return out_.size() - out_off_; }

  // TLS output -> TCP, as far as the send buffer takes it.
  void send(TimeNs now) {
    Buf more = conn_->take_output();
    if (!more.empty()) {
      if (tx_off_ == tx_.size()) {
        tx_ = std::move(more);
        tx_off_ = 0;
      } else {
        tx_.insert(tx_.end(), more.begin(), more.end());
      }
    }
    if (!c_) return;
    while (tx_pending() > 0) {
      const std::size_t n = tcp_.send(*c_, Bytes(tx_.data() + tx_off_, tx_pending()), now);
      if (n == 0) break;
      tx_off_ += n;
    }
    if (tx_off_ == tx_.size()) {
      tx_.clear();
      tx_off_ = 0;
    }
  }

  // stdout, without blocking: only while poll() says there is room, at most
  // PIPE_BUF at a time (which a writable pipe always takes).
  void write_out() {
    for (int i = 0; i < 64 && out_pending() > 0; ++i) {
      pollfd p{data_fd_, POLLOUT, 0};
      if (::poll(&p, 1, 0) <= 0 || (p.revents & POLLOUT) == 0) break;
      const ssize_t n = ::write(data_fd_, out_.data() + out_off_, std::min<std::size_t>(out_pending(), 4096));
      if (n <= 0) {
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) break;
        out_off_ = out_.size();  // stdout is gone: drop what it would have had
        break;
      }
      out_off_ += static_cast<std::size_t>(n);
    }
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
    }
  }

  void pump(TimeNs now) {
    send(now);
    std::uint8_t buf[16384];
    while (c_ && tcp_.readable(*c_) > 0 && tx_pending() < kBacklog && out_pending() < kBacklog) {
      const std::size_t n = tcp_.read(*c_, MutBytes(buf, sizeof buf), now);
      if (n == 0) break;
      active_ = now;
      (void)conn_->feed(Bytes(buf, n));
      const Buf app = conn_->take_app_data();
      if (!app.empty()) {
        if (o_.echo) (void)conn_->write(app);
        else out_.insert(out_.end(), app.begin(), app.end());
      }
      send(now);
      if (conn_->failed()) break;
    }
    if (conn_->handshake_complete() && !reported_) {
      reported_ = true;
      report_handshake(*conn_);
    }
    if (conn_->handshake_complete() && !key_update_done_) {
      key_update_done_ = true;
      (void)conn_->key_update(true);
    }
    if (stdin_open_ && conn_->handshake_complete() && !conn_->failed() && tx_pending() < kBacklog) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0 && p.revents != 0) {
        const ssize_t r = ::read(STDIN_FILENO, buf, sizeof buf);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
        } else if (r <= 0) {
          stdin_open_ = false;
          conn_->close();
        } else {
          active_ = now;
          (void)conn_->write(Bytes(buf, static_cast<std::size_t>(r)));
        }
      }
    }
    send(now);
    write_out();
    if (conn_->failed()) {
      end_tls(now);
    } else if (conn_->peer_closed()) {
      conn_->close();  // answer close_notify with close_notify (§6.1)
      send(now);
      end_tls(now);
    } else if (c_ && tcp_.peer_closed(*c_)) {
      end_tls(now);  // TCP's FIN without close_notify: reported as such
    } else if (now - active_ > kIdleTimeout) {
      std::fprintf(stderr, "ustack-tls: timed out\n");
      rc_ = 1;
      if (c_) tcp_.abort(*c_, now);
      c_.reset();
      next(now);
    }
  }

  // The TLS side is over: report it, then let TCP deliver what is queued.
  void end_tls(TimeNs now) {
    const int r = finish_report(*conn_);
    if (r != 0) rc_ = r;
    phase_ = Phase::draining;
    deadline_ = now + kIdleTimeout;
  }

  // Everything sent and acknowledged, stdout written: then close (FIN).
  void drain(TimeNs now) {
    send(now);
    write_out();
    if (c_ && tcp_.readable(*c_) > 0) {  // late bytes (nothing more is expected): read, so close() is a FIN
      std::uint8_t buf[4096];
      while (tcp_.read(*c_, MutBytes(buf, sizeof buf), now) > 0) {
      }
    }
    const bool sent = !c_ || (tx_pending() == 0 && tcp_.send_queued(*c_) == 0);
    if ((sent && out_pending() == 0) || now > deadline_) {
      if (c_) tcp_.close(*c_, now);
      c_.reset();
      phase_ = Phase::lingering;
      deadline_ = now + kLinger;
    }
  }

  // Our FIN acknowledged (the connection closed, or in TIME-WAIT), or time's up.
  void linger(TimeNs now) {
    write_out();
    const bool tcp_done = tcp_.connection_count() == tcp_.time_wait_count();
    if ((tcp_done && out_pending() == 0) || now > deadline_) next(now);
  }

  void next(TimeNs) {
    phase_ = Phase::idle;
    ++served_;
    if (!make_ || (count_ >= 0 && served_ >= count_)) {
      finish();
      return;
    }
    conn_ = nullptr;
    owned_.reset();
  }

  void finish() {
    finished_ = true;
    rt_.request_stop();
  }

  Runtime& rt_;
  tcp::TcpLayer& tcp_;
  RunOptions o_;
  int data_fd_;
  Ipv4Addr dst_;
  std::uint16_t port_ = 0;
  long count_ = -1;
  long served_ = 0;
  MakeServerConn make_;
  std::unique_ptr<RecordConnection> owned_;
  RecordConnection* conn_ = nullptr;
  std::optional<TcpConnId> c_;
  Phase phase_ = Phase::idle;
  bool started_ = false;
  bool finished_ = false;
  bool reported_ = false;
  bool stdin_open_ = true;
  bool key_update_done_ = true;
  int rc_ = 0;
  TimeNs active_ = 0;
  TimeNs deadline_ = 0;
  Buf tx_;
  std::size_t tx_off_ = 0;
  Buf out_;
  std::size_t out_off_ = 0;
};

// Runs the runtime with `app` on its lcore; the exit status.
int run_stack(Runtime& rt, StackTls& app) {
  rt.engine(0).set_hook(&app);
  const int status = rt.run();
  if (!app.finished() && !app.between_connections()) {
    std::fprintf(stderr, "ustack-tls: stopped before the end\n");
    return 1;
  }
  return app.rc() != 0 ? app.rc() : status;
}

int client_main(int argc, char** argv, const StackArgs* stack) {
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

  auto save_session = [&](const RecordConnection& conn) {
    if (!sess_out.empty() && !conn.engine().sessions().empty()) {
      const Buf s = conn.engine().sessions().back().serialize();
      std::ofstream f(sess_out, std::ios::binary);
      f.write(reinterpret_cast<const char*>(s.data()), static_cast<std::streamsize>(s.size()));
    }
  };
  if (stack) {
    const auto dst = Ipv4Addr::parse(host);
    if (!dst) usage("over ustack's TCP, HOST is an IPv4 address");
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (end == port.c_str() || *end != 0 || p < 1 || p > 65535) usage("PORT is 1..65535");
    int data_fd = -1;
    auto rt = start_stack(*stack, data_fd);
    if (!rt) return 1;
    RecordConnection conn(cfg);
    conn.set_keylog(keylog_writer());
    if (!conn.start()) return 1;
    if (!early.empty()) (void)conn.write(early);
    StackTls app(*rt, *rt->engine(0).tcp(), o, data_fd);
    app.client(*dst, static_cast<std::uint16_t>(p), conn);
    const int rc = run_stack(*rt, app);
    save_session(conn);
    return rc;
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
  save_session(conn);
  return rc;
}

int server_main(int argc, char** argv, const StackArgs* stack) {
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

  if (stack) {
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (end == port.c_str() || *end != 0 || p < 1 || p > 65535) usage("--port is 1..65535");
    int data_fd = -1;
    auto rt = start_stack(*stack, data_fd);
    if (!rt) return 1;
    StackTls app(*rt, *rt->engine(0).tcp(), o, data_fd);
    app.server(static_cast<std::uint16_t>(p), count, [&]() -> std::unique_ptr<RecordConnection> {
      cfg.now_ms = wall_ms();
      replay.advance(cfg.now_ms);
      auto conn = std::make_unique<RecordConnection>(cfg);
      conn->set_keylog(keylog_writer());
      if (!conn->start()) return nullptr;
      return conn;
    });
    return run_stack(*rt, app);
  }

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
  if (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    print_usage(stdout);
    return 0;
  }
  // "-- EAL-ARGS [-- STACK-OPTIONS]": over ustack's TCP.
  std::optional<StackArgs> stack;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") != 0) continue;
    stack.emplace();
    stack->eal.push_back("ustack-tls");
    bool app = false;
    for (int j = i + 1; j < argc; ++j) {
      if (!app && std::strcmp(argv[j], "--") == 0) {
        app = true;
        continue;
      }
      (app ? stack->app : stack->eal).push_back(argv[j]);
    }
    argc = i;
    break;
  }
  const std::string which = argv[1];
  const StackArgs* sa = stack ? &*stack : nullptr;
  if (which == "server") return server_main(argc, argv, sa);
  if (which == "client") return client_main(argc, argv, sa);
  usage("which: server or client");
}
