// The per-lcore UDP layer: sockets, demultiplexing, receive queues, output.
//
// Read with: RFC 768 (UDP), RFC 1122 §4.1.3 (host requirements: port
// unreachable, ICMP errors passed to the application, checksums) and §3.2.2
// (no ICMP errors about broadcasts or multicasts), RFC 6335 §6 and RFC 6056
// §3.3.1 (the ephemeral range and how to pick in it), RFC 1112 §7 (receiving
// multicast; that every socket listening on the port gets a copy is the BSD
// sockets convention, which we follow).
//
// One UdpLayer per Stack (per lcore). It registers itself as the Stack's
// ProtocolHandler for IP protocol 17, and owns a fixed pool of sockets and
// their receive queues, all allocated at construction: nothing on the data
// path touches the heap. Sockets are single-threaded like the stack: only
// the owning lcore may call them.
//
// Received datagrams stay in their mbufs (data() moved to the UDP payload):
// a socket's queue holds mbuf pointers, bounded in datagrams and in payload
// bytes. A unicast datagram goes to the one best-matching socket; one to a
// broadcast or multicast address goes to every socket on its port that
// accepts it, cloned with rte_pktmbuf_clone for all but the last (an indirect
// mbuf per extra socket, no payload copy).
//
// The application is told about new data and about ICMP errors through
// plain function-pointer callbacks (no std::function: no allocation). A
// callback may receive, send, open and close sockets; a close during
// delivery takes effect when the datagram has been delivered everywhere.
//
// Multicast membership (RFC 3376 §2, RFC 3678's socket calls): a layer built
// with an IgmpHost lets each socket join and leave groups with a source
// filter (any-source, INCLUDE/SSM or EXCLUDE). The IgmpHost keeps every
// socket's filter and merges them into the interface state (the union over
// sockets, §3.2) that it reports; a socket closed leaves its groups. With an
// IgmpHost, a datagram to a group (other than 224.0.0.1) reaches only the
// sockets on its port that joined the group with a filter passing its source
// (Linux's IP_MULTICAST_ALL=0); without one, every socket on the port whose
// local address matches gets it, as before IGMP existed.
//
// Multicast send options (RFC 1112 §6.1, the IP_MULTICAST_* socket options):
// TTL (default 1), outgoing interface (one stack is one interface, so only
// our address or 0.0.0.0), and loopback: when on, each datagram sent to a
// group is also delivered to this layer's members of the group (an indirect
// clone, no payload copy). Loopback is off by default, unlike Linux, because
// on a kernel-bypass lcore the sender usually is not a member of its feed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "core/bytes.hpp"
#include "core/time.hpp"
#include "igmp/igmp_host.hpp"
#include "net/packet.hpp"
#include "net/stack.hpp"
#include "ustack/addr.hpp"
#include "wire/udp.hpp"

namespace ustack {

struct UdpConfig {
  std::uint16_t max_sockets = 64;
  // Receive queue bound per socket. Every socket gets room for
  // rx_queue_datagrams mbuf pointers at construction; set_rx_limits() sets a
  // socket's own bounds at or below these.
  std::uint16_t rx_queue_datagrams = 64;
  std::uint32_t rx_queue_bytes = 256 * 1024;
  // Ephemeral range (RFC 6335 §6: 49152-65535) and the seed of the
  // generator that picks in it; injected so tests and replays are repeatable.
  std::uint16_t ephemeral_first = 49152;
  std::uint16_t ephemeral_last = 65535;
  std::uint64_t port_seed = 0x2545f4914f6cdd1dULL;
};

enum class UdpStatus : std::uint8_t {
  ok = 0,
  closed,           // the socket is not open
  already_bound,    // bind() on a bound socket
  bad_address,      // not one of our addresses (bind), or 0.0.0.0 / port 0 as a destination
  addr_in_use,      // another socket holds the address and port and not both set reuse
  no_ports,         // every ephemeral port is taken
  not_connected,    // send() without connect()
  too_big,          // more than the MTU allows (we never fragment), or than an mbuf holds
  no_mbuf,          // the mempool is empty
  no_headroom,      // zero-copy send: less than Stack::kHeaderRoom + 8 bytes in front of the data
  shared_mbuf,      // zero-copy send: the buffer is shared (a clone, or refcnt > 1)
  not_contiguous,   // zero-copy send: a chained mbuf
  dropped,          // the stack refused it (no route, ARP queue full); counted there
  not_multicast,    // join/leave/filter: the group is not in 224.0.0.0/4
  no_igmp,          // join/leave/filter: this layer has no IgmpHost
  table_full,       // join/filter: IGMP's membership or group table is full
  sources_full,     // join/filter: too many sources in the socket's or the merged filter
};
const char* to_string(UdpStatus s);

struct UdpEndpoint {
  Ipv4Addr addr;
  std::uint16_t port = 0;
  constexpr bool operator==(const UdpEndpoint&) const = default;
};

// An ICMP error about a datagram this socket sent (RFC 1122 §4.1.3.3).
struct UdpIcmpError {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  UdpEndpoint remote;  // where the offending datagram was going
};

struct UdpSocketStats {
  std::uint64_t rx_datagrams = 0;  // queued for the application
  std::uint64_t rx_bytes = 0;      // payload bytes of those
  std::uint64_t tx_datagrams = 0;  // handed to the stack
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_drop_queue_full = 0;
  std::uint64_t rx_drop_no_mbuf = 0;  // the clone for this socket could not be allocated
  std::uint64_t tx_dropped = 0;       // refused by the stack (UdpStatus::dropped)
  std::uint64_t icmp_errors = 0;
  std::uint64_t tx_looped = 0;  // multicast datagrams also delivered locally (loopback)
};

// What recv_from() copied.
struct UdpRecvInfo {
  std::size_t len = 0;           // bytes copied into the caller's span
  std::size_t datagram_len = 0;  // payload bytes the datagram had
  UdpEndpoint from;
  Ipv4Addr to;  // the destination address: ours, a broadcast or a group
  bool truncated() const { return len < datagram_len; }
};

// A datagram handed over without a copy: pkt.data() is the payload.
struct UdpRxDatagram {
  Packet pkt;
  UdpEndpoint from;
  Ipv4Addr to;
};

class UdpLayer;

class UdpSocket {
 public:
  using ReadableFn = void (*)(UdpSocket& s, TimeNs now, void* ctx);
  using ErrorFn = void (*)(UdpSocket& s, const UdpIcmpError& e, TimeNs now, void* ctx);

  UdpSocket() = default;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Binds to `addr` (0.0.0.0, our address, a local broadcast address or a
  // multicast group) and `port`; port 0 picks a free ephemeral port.
  UdpStatus bind(Ipv4Addr addr, std::uint16_t port);
  // Sets the default destination and accepts datagrams only from it. Binds
  // to an ephemeral port on 0.0.0.0 first if the socket is not bound.
  UdpStatus connect(Ipv4Addr addr, std::uint16_t port);
  void disconnect() { remote_.reset(); }
  // Takes the socket off its port (and forgets its peer): unbound again, its
  // memberships and queued datagrams kept. Not from a delivery callback.
  // The shim undoes with it a bind that failed on another lcore.
  void unbind();
  // Lets several sockets bind the same address and port (all of them must
  // set it), for multicast receivers. Read whenever a bind looks for a
  // conflict, so it may change at any time: on a bound socket it decides
  // whether later binds may share its port (Linux's SO_REUSEADDR likewise).
  void set_reuse(bool on) { reuse_ = on; }
  // This socket's receive bounds (clamped to UdpConfig's, which are the default).
  void set_rx_limits(std::uint16_t datagrams, std::uint32_t bytes);

  // Copies `data` into a fresh mbuf and sends it. An unbound socket is
  // bound to an ephemeral port first.
  UdpStatus send_to(Bytes data, Ipv4Addr dst, std::uint16_t port, TimeNs now);
  UdpStatus send(Bytes data, TimeNs now);
  // Zero-copy: `pkt.data()` is the payload and the mbuf has at least
  // Stack::kHeaderRoom + 8 bytes of headroom. On `ok` and `dropped` the packet
  // was consumed; on any other status it is left with the caller, untouched.
  UdpStatus send_packet_to(Packet&& pkt, Ipv4Addr dst, std::uint16_t port, TimeNs now);
  UdpStatus send_packet(Packet&& pkt, TimeNs now);

  // Multicast membership (see the top of the file). join() is an
  // any-source join (EXCLUDE {}); set_source_filter() replaces the socket's
  // filter for `group` (INCLUDE with sources is a source-specific join,
  // INCLUDE {} a leave). The socket need not be bound yet. On any status
  // but ok nothing changed.
  UdpStatus join(Ipv4Addr group, TimeNs now);
  UdpStatus leave(Ipv4Addr group, TimeNs now);
  UdpStatus set_source_filter(Ipv4Addr group, FilterMode mode, std::span<const Ipv4Addr> sources, TimeNs now);
  // This socket's filter for `group` (mode and sorted sources, valid until
  // the next membership change); nullopt when not joined or without an IgmpHost.
  std::optional<IgmpHost::InterfaceState> source_filter(Ipv4Addr group) const;
  // Whether this layer has an IgmpHost (membership calls fail without one).
  bool has_igmp() const;
  // Multicast send options; they apply to datagrams sent to a group.
  void set_multicast_ttl(std::uint8_t ttl) { mc_ttl_ = ttl; }
  void set_multicast_loop(bool on) { mc_loop_ = on; }
  // The outgoing interface, by its address: 0.0.0.0 (the default) or ours.
  UdpStatus set_multicast_if(Ipv4Addr addr);
  std::uint8_t multicast_ttl() const { return mc_ttl_; }
  bool multicast_loop() const { return mc_loop_; }
  // The id this socket has in the IgmpHost (stable while it is open).
  SocketId igmp_id() const { return (std::uint64_t{generation_} << 16) | index_; }

  // The oldest queued datagram copied into `buf` (the rest of a longer one
  // is discarded, see UdpRecvInfo::truncated()); nullopt when none.
  std::optional<UdpRecvInfo> recv_from(MutBytes buf);
  // The oldest queued datagram without a copy; nullopt when none.
  std::optional<UdpRxDatagram> recv();

  // Leaves every group the socket joined, frees the queued datagrams and
  // returns the socket to the pool. The pointer must not be used afterwards.
  // `now` stamps the leave reports; close() without it uses the latest time
  // the stack and its IgmpHost have seen.
  void close(TimeNs now);
  void close();

  // Called after each datagram is queued, and after each ICMP error.
  void on_readable(ReadableFn fn, void* ctx) { readable_fn_ = fn; readable_ctx_ = ctx; }
  void on_error(ErrorFn fn, void* ctx) { error_fn_ = fn; error_ctx_ = ctx; }
  // The last ICMP error, cleared by reading it (like SO_ERROR).
  std::optional<UdpIcmpError> take_error() { return std::exchange(error_, std::nullopt); }

  // Would this socket take a datagram sent to `dst` from `src` (its port
  // already matched)? Bound to 0.0.0.0 or to `dst` itself, and, for a group
  // other than 224.0.0.1 on a layer with an IgmpHost, joined to `dst` with a
  // filter that passes `src`.
  bool accepts(Ipv4Addr dst, Ipv4Addr src) const;

  bool is_open() const { return open_; }
  bool is_bound() const { return local_.port != 0; }
  bool is_connected() const { return remote_.has_value(); }
  UdpEndpoint local() const { return local_; }
  std::optional<UdpEndpoint> remote() const { return remote_; }
  std::size_t rx_queued() const { return count_; }
  std::size_t rx_queued_bytes() const { return bytes_; }
  const UdpSocketStats& stats() const { return stats_; }

 private:
  friend class UdpLayer;
  struct RxSlot {
    rte_mbuf* m = nullptr;
    UdpEndpoint from;
    Ipv4Addr to;
  };

  bool has_room(std::size_t len) const { return count_ < max_datagrams_ && bytes_ + len <= max_bytes_; }
  RxSlot pop();
  void drain();

  UdpLayer* layer_ = nullptr;
  std::uint16_t index_ = 0;
  std::uint16_t next_ = 0;  // next socket on the same port, or in the free list
  bool open_ = false;
  bool closing_ = false;  // closed during a delivery; released after it
  bool reuse_ = false;
  bool mc_loop_ = false;
  std::uint8_t mc_ttl_ = 1;
  std::uint16_t generation_ = 0;  // bumped on every open(): a fresh IGMP socket id
  UdpEndpoint local_;
  std::optional<UdpEndpoint> remote_;
  std::optional<UdpIcmpError> error_;
  // Receive ring: a fixed slice of the layer's slot array.
  RxSlot* ring_ = nullptr;
  std::uint16_t cap_ = 0;
  std::uint16_t head_ = 0;
  std::uint16_t count_ = 0;
  std::uint16_t max_datagrams_ = 0;
  std::uint32_t max_bytes_ = 0;
  std::uint32_t bytes_ = 0;
  ReadableFn readable_fn_ = nullptr;
  void* readable_ctx_ = nullptr;
  ErrorFn error_fn_ = nullptr;
  void* error_ctx_ = nullptr;
  UdpSocketStats stats_;
};

class alignas(64) UdpLayer final : public ProtocolHandler {
 public:
  // Registers itself on `stack` for protocol 17. `stack` must outlive it,
  // and so must `igmp` (the stack's IgmpHost, for multicast membership), if given.
  UdpLayer(Stack& stack, const UdpConfig& cfg = {}, IgmpHost* igmp = nullptr);
  ~UdpLayer();
  UdpLayer(const UdpLayer&) = delete;
  UdpLayer& operator=(const UdpLayer&) = delete;

  // A fresh, unbound socket; nullptr when max_sockets are open.
  UdpSocket* open();
  std::size_t open_sockets() const { return open_count_; }

  // The largest payload one datagram can carry: the MTU less IPv4 and UDP
  // headers (we send with DF and never fragment).
  std::size_t max_payload() const;

  void ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs now) override;
  void icmp_error(std::uint8_t type, std::uint8_t code, Bytes quoted, TimeNs now) override;

  Stack& stack() { return stack_; }
  IgmpHost* igmp() { return igmp_; }
  const UdpConfig& config() const { return cfg_; }

 private:
  friend class UdpSocket;
  static constexpr std::uint16_t kNone = 0xffff;

  UdpStatus bind(UdpSocket& s, Ipv4Addr addr, std::uint16_t port);
  void unbind(UdpSocket& s);
  bool port_conflict(const UdpSocket& s, Ipv4Addr addr, std::uint16_t port) const;
  std::optional<std::uint16_t> pick_ephemeral();
  void unlink(UdpSocket& s);
  void close(UdpSocket& s, TimeNs now);
  TimeNs latest_time() const;
  UdpStatus set_filter(UdpSocket& s, Ipv4Addr group, FilterMode mode, std::span<const Ipv4Addr> sources, TimeNs now);
  void release(UdpSocket& s);
  void release_closed();
  UdpStatus send_copy(UdpSocket& s, Bytes data, UdpEndpoint dst, TimeNs now);
  UdpStatus send_zero_copy(UdpSocket& s, Packet& pkt, UdpEndpoint dst, TimeNs now);
  UdpStatus output(UdpSocket& s, Packet&& pkt, UdpEndpoint dst, TimeNs now);
  void deliver_unicast(Packet&& pkt, UdpEndpoint from, Ipv4Addr to, const wire::Ipv4Packet& ip,
                       std::uint16_t port, TimeNs now);
  void deliver_multi(Packet&& pkt, UdpEndpoint from, Ipv4Addr to, std::uint16_t port, TimeNs now);
  void enqueue(UdpSocket& s, Packet&& pkt, UdpEndpoint from, Ipv4Addr to, TimeNs now);
  bool matches(const UdpSocket& s, UdpEndpoint from, Ipv4Addr to) const;
  UdpSocket& sock(std::uint16_t i) { return sockets_[i]; }

  Stack& stack_;
  IgmpHost* igmp_;
  UdpConfig cfg_;
  std::unique_ptr<UdpSocket[]> sockets_;
  std::unique_ptr<UdpSocket::RxSlot[]> slots_;
  // Head of the list of sockets bound to each port (kNone when free).
  std::unique_ptr<std::uint16_t[]> port_head_;
  std::uint16_t free_head_ = kNone;
  std::size_t open_count_ = 0;
  std::uint64_t rng_;
  // Callbacks may close sockets while a datagram is being delivered; those
  // are unlinked only when the delivery is over.
  int delivering_ = 0;
  std::size_t pending_closes_ = 0;
};

}  // namespace ustack
