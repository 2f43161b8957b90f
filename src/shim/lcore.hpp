// The lcore half of the thread shim: executes the commands application
// threads send, turns TCP's callbacks into completions, and wakes threads
// through their handles' eventfds (protocol in channel.hpp).
//
// Polled from the lcore's loop (Engine::set_hook): each iteration takes at
// most `cmds_per_poll` commands per channel and flushes at most
// `slots_per_poll` handles with pending events, so the lcore's work per
// iteration is bounded however many threads and handles there are. All
// memory (channels, rings, per-handle state) is allocated in the
// constructor; the loop allocates nothing, takes no lock and makes no
// syscall except the eventfd writes (once per handle per readiness
// transition, after the TX flush).
//
// Received data crosses as the TCP receive queue's own mbufs
// (read_zero_copy), bounded per handle by a receive credit in bytes that
// the thread returns as it consumes; while a handle has no credit the data
// waits in TCP's queue and TCP's window closes, so a slow thread slows its
// peer instead of growing a queue. Sent data arrives as mbufs the thread
// filled; large ones go to send_zero_copy, small ones are copied into TCP's
// send buffer (coalescing them), bounded by the thread's send credit.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "shim/channel.hpp"
#include "runtime/engine.hpp"
#include "tcp/tcp_layer.hpp"
#include "udp/udp_layer.hpp"

namespace ustack::shim {

struct LcoreConfig {
  std::uint32_t max_threads = 4;        // channels
  ChannelConfig channel;
  std::uint32_t cmds_per_poll = 64;     // per channel per iteration
  std::uint32_t slots_per_poll = 256;   // handles flushed per iteration
  std::uint32_t starved_per_poll = 64;  // credit re-checks per iteration
  std::uint32_t udp_dgrams = 64;        // UDP datagrams in flight to the thread, per socket
};

struct LcoreCounters {
  std::uint64_t commands = 0;
  std::uint64_t completions = 0;
  std::uint64_t eventfd_writes = 0;
  std::uint64_t cpl_ring_full = 0;    // a flush stopped on a full completion ring (retried)
  std::uint64_t accept_no_slot = 0;   // accepted connection reset: the channel's accept half was full
  std::uint64_t cmd_stalled = 0;      // a command left in the ring for lack of an mbuf (retried)
};

class ShimLcore final : public LoopHook, public tcp::TcpHandler {
 public:
  // `udp`: the lcore's UDP, for SOCK_DGRAM handles (none: EPROTONOSUPPORT).
  ShimLcore(tcp::TcpLayer& tcp, const LcoreConfig& cfg, UdpLayer* udp = nullptr);
  ~ShimLcore();
  ShimLcore(const ShimLcore&) = delete;
  ShimLcore& operator=(const ShimLcore&) = delete;

  // LoopHook
  void poll(TimeNs now) override;
  void after_flush(TimeNs now) override;

  // TcpHandler
  void on_accept(tcp::TcpLayer& tcp, TcpListenerId l, TcpConnId c, TimeNs now) override;
  void on_connected(tcp::TcpLayer& tcp, TcpConnId c, TimeNs now) override;
  void on_readable(tcp::TcpLayer& tcp, TcpConnId c, TimeNs now) override;
  void on_writable(tcp::TcpLayer& tcp, TcpConnId c, TimeNs now) override;
  void on_closed(tcp::TcpLayer& tcp, TcpConnId c, TcpError err, TimeNs now) override;

  std::uint32_t channel_count() const { return static_cast<std::uint32_t>(channels_.size()); }
  Channel& channel(std::uint32_t i) { return *channels_[i]; }
  rte_mempool* pool() const { return pool_; }
  bool has_udp() const { return udp_ != nullptr; }
  // This lcore's UDP has an IgmpHost: multicast membership calls work here
  // (queue 0's lcore in the runtime), elsewhere they fail with ENODEV.
  bool has_igmp() const { return udp_ && udp_->igmp(); }
  // The stack's address (host order). A handle spans only the lcores that
  // serve the same address: every lcore of a Process does.
  std::uint32_t local_addr() const { return tcp_.stack().config().ip.addr.v; }
  std::size_t udp_max_payload() const { return udp_max_payload_; }
  const TcpConnOptions& tcp_defaults() const { return tcp_.config().defaults; }
  const LcoreConfig& config() const { return cfg_; }
  const LcoreCounters& counters() const { return ctr_; }

 private:
  static constexpr std::uint32_t kNone = 0xffffffffu;

  enum class Kind : std::uint8_t { idle, listener, conn, udp };
  // Lcore-private per-handle state, indexed by global slot number
  // (channel * 2N + id).
  struct Slot {
    Kind kind = Kind::idle;
    TcpConnId conn;
    TcpListenerId listener;
    bool announced = true;        // accepted: the thread has been told (Accepted pushed)
    bool result_pending = false;
    std::int32_t result = 0;
    std::uint16_t result_port = 0;  // udp_bind / udp_connect: the socket's bound port
    bool connected_pending = false;
    bool eof_sent = false;
    bool tcp_gone = false;        // on_closed came: the TcpConnId is dead
    bool closed_pending = false;  // Closed not pushed yet
    std::int32_t closed_errno = 0;
    bool closing = false;         // the thread closed it
    bool abort_on_close = false;
    bool shut_wr_pending = false;
    bool want_out = false;        // a thread waits for send credit
    bool writable_pending = false;  // Writable to push
    std::uint64_t rx_delivered = 0;
    std::uint64_t rx_seen = 0;    // SharedSlot::rx_consumed as last read (credit(), inline_ok())
    std::uint64_t rx_mbuf_end = 0;  // rx_delivered after the latest data delivered in an mbuf
    std::uint64_t tx_accepted = 0;
    std::uint32_t rx_limit = 0;
    rte_mbuf* rx_held = nullptr;  // data pulled at FIN, delivered before EOF
    rte_mbuf* rx_held_tail = nullptr;
    std::uint32_t tx_inline_done = 0;  // bytes of the send_inline at the ring's head already taken
    rte_mbuf* tx_held = nullptr;  // sends TCP could not take yet, in order
    rte_mbuf* tx_held_tail = nullptr;
    std::uint32_t acc_head = kNone, acc_tail = kNone;  // listener: accepted, not yet announced
    std::uint32_t acc_next = kNone;
    bool fin = false;             // TCP has the peer's FIN (all data before it pulled)
    std::uint32_t peer_addr = 0;  // accepted: announced with it
    std::uint16_t peer_port = 0;
    UdpSocket* udp = nullptr;     // Kind::udp
    std::uint64_t rx_dgrams = 0;  // datagrams delivered to the thread
    std::uint64_t rx_dgrams_seen = 0;  // SharedSlot::rx_dgrams_consumed as last read (rx_room())
    std::int32_t udp_errno = 0;   // an ICMP error to report
  };
  // List links survive a slot's reset (a freed slot may still sit in a list).
  struct Links {
    std::uint32_t dirty_next = kNone;
    std::uint32_t fire_next = kNone;
    std::uint32_t starved_next = kNone;
    std::uint32_t tx_retry_next = kNone;
    std::uint32_t free_next = kNone;  // lcore-half free list
    std::uint64_t fire_pos = 0;  // ring position of the slot's latest event completion
    std::uint32_t late_next = kNone;
    TimeNs late_at = 0;          // in the late list: when its wake-up is due
    std::uint64_t late_pos = 0;  // ... for the event completion at this position
    bool in_dirty = false;
    bool in_fire = false;
    bool in_late = false;
    bool in_starved = false;
    bool in_tx_retry = false;
  };

  // Slot numbers: channel << shift_ | id, the stride a power of two at
  // least per_channel(), so that the hot paths split them with a shift and a
  // mask rather than a division by a run-time value.
  std::uint32_t per_channel() const { return 2 * cfg_.channel.handles; }
  std::uint32_t slot_index(std::uint32_t ch, std::uint32_t id) const { return ch << shift_ | id; }
  std::uint32_t chan_index(std::uint32_t g) const { return g >> shift_; }
  Channel& chan_of(std::uint32_t g) { return *channels_[g >> shift_]; }
  std::uint32_t id_of(std::uint32_t g) const { return g & ((1u << shift_) - 1); }
  SharedSlot& shared(std::uint32_t g) { return chan_of(g).slots[id_of(g)]; }

  bool execute(Channel& ch, const Command& c, TimeNs now);  // false: cannot run yet, leave it in the ring
  void take_waiters(Channel& ch, TimeNs now);
  void retry_held(TimeNs now);
  void flush_dirty(TimeNs now);
  void check_starved();
  void mark_dirty(std::uint32_t g);
  void mark_fire(std::uint32_t g, std::uint64_t pos);
  void fire(std::uint32_t g);  // L1/L2 (channel.hpp) for one handle
  bool flush(std::uint32_t g, TimeNs now);  // false: completion ring full, stays dirty
  bool deliver(std::uint32_t g, TimeNs now);  // TCP's queued data to the thread; false: completion ring full
  template <class Fill>
  bool emit_with(std::uint32_t g, CplOp op, Fill&& fill);
  bool emit(std::uint32_t g, const Completion& c);
  bool emit_inline(std::uint32_t g, CplOp op, const Packet& p, std::uint32_t addr = 0, std::uint16_t port = 0);
  void drain_tx(std::uint32_t g, TimeNs now);
  void publish_acked(std::uint32_t g);
  void check_writable(std::uint32_t g);
  void release(std::uint32_t g);
  void reset(std::uint32_t g);
  void reset_shared(std::uint32_t g);
  bool inline_ok(std::uint32_t g, std::size_t len);
  std::uint64_t credit(std::uint32_t g);  // receive credit left (reads the thread's count when low)
  std::uint32_t slot_of_conn(TcpConnId c) const;
  bool rx_room(std::uint32_t g);  // UDP: datagram and byte credit left
  void flush_udp(std::uint32_t g, bool& ok);
  bool open_udp(std::uint32_t g, SharedSlot& sh, bool reuse);  // false: no free UdpSocket
  std::int32_t membership(UdpSocket& u, McastOp op, Ipv4Addr group, Ipv4Addr src, TimeNs now);
  struct UdpCtx {
    ShimLcore* self;
    std::uint32_t g;
  };
  static void on_udp_readable(UdpSocket& s, TimeNs now, void* ctx);
  static void on_udp_error(UdpSocket& s, const UdpIcmpError& e, TimeNs now, void* ctx);

  tcp::TcpLayer& tcp_;
  UdpLayer* udp_;
  std::size_t udp_max_payload_ = 0;
  LcoreConfig cfg_;
  std::uint32_t shift_ = 0;
  rte_mempool* pool_;
  std::vector<std::unique_ptr<Channel>> channels_;
  std::vector<Slot> slots_;
  std::vector<Links> links_;
  std::vector<UdpCtx> udp_ctx_;  // per slot: the context of its UdpSocket's callbacks
  std::vector<std::uint32_t> conn_slot_;      // TcpConnId.index -> slot
  std::vector<std::uint32_t> listener_slot_;  // TcpListenerId.index -> slot
  std::vector<std::uint32_t> free_head_;      // per channel: lcore-half free list
  std::uint32_t dirty_head_ = kNone, dirty_tail_ = kNone;
  std::uint32_t fire_head_ = kNone;
  // Handles with SO_BUSY_POLL: their wake-ups wait here until due (unordered;
  // scanned only once the earliest is due).
  std::uint32_t late_head_ = kNone;
  TimeNs late_due_ = ~TimeNs{0};
  std::uint32_t starved_head_ = kNone;
  // Handles whose held sends TCP refused with nothing in flight (no mbuf to
  // copy them into): no ACK will bring on_writable, so poll() retries them.
  std::uint32_t tx_retry_head_ = kNone;
  std::array<Ipv4Addr, 64> mcast_scratch_{};  // a socket's source list being edited (Linux's default limit is 10)
  // Per channel: waiters taken from the ring, answered once the commands
  // queued before them have run.
  struct Deferred {
    std::vector<std::uint32_t> ids;
    std::size_t n = 0;
  };
  std::vector<Deferred> deferred_;
  std::vector<std::uint64_t> fenced_;  // per channel: the after_flush pass that fenced it
  std::uint64_t fence_epoch_ = 0;
  LcoreCounters ctr_;
};

}  // namespace ustack::shim
