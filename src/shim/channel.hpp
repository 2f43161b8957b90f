// What crosses between one application thread and one lcore: the command
// ring (thread -> lcore), the completion ring (lcore -> thread), the waiter
// ring (thread -> lcore, "tell me when I may send again") and one shared
// slot per handle.
//
// Handle ids inside a channel: [0, N) are allocated and freed by the thread
// (socket()); [N, 2N) by the lcore (accepted connections). Each half has one
// owner, so neither side needs the other to hand out an id.
//
// ## Readiness and the eventfd: the protocol
//
// The thread-side state decides readiness (data queued, accept pending, EOF,
// error, send space after EAGAIN, connect done). The handle's eventfd
// counter is non-zero exactly while the thread-side state is ready, once
// every completion already pushed for the handle has been processed. Two
// parties may write the eventfd; only the thread reads (drains) it.
//
// SharedSlot::want is the thread's "I am waiting" word: 0, or 1 + the
// completion-ring position the thread had consumed up to when it armed
// (while the handle is not ready and its eventfd is drained). Every
// completion that makes a handle ready ("event" completions: data, EOF,
// accepted, connected, closed, writable) has a ring position p.
//
//  thread, when the handle becomes not ready (it consumed the last data...):
//    T1 wait until fired == claimed (every eventfd write the lcore claimed
//       has landed), then read() the eventfd to zero;
//    T2 want.store(1 + consumed position H); fence (below);
//    T3 re-check: drain the completion ring. If the handle is now ready,
//       take the wake-up back: CAS want -> 0. If that succeeds, the thread
//       writes the eventfd itself; if it fails, the lcore claimed the
//       wake-up (claimed += 1) and writes it.
//  lcore, after pushing an event completion at position p for a handle:
//    L1 (the push's release store is already done); fence, once per
//       iteration per channel;
//    L2 w = want; if w != 0 and p >= w - 1 (the thread armed before it
//       consumed this completion): one CAS want w -> 0; the winner writes
//       the eventfd after the iteration's TX flush, then fired += 1.
//
// The fence is an acq_rel read-modify-write on the channel's `order` word,
// done by both sides: the RMWs are totally ordered, and the later one reads
// the earlier one's value, so whichever side comes second sees everything
// the first side stored before its RMW. (A standalone seq_cst fence would do
// the same, but ThreadSanitizer does not model fences; this it checks.)
//
// No lost wake-up: T2/T3 and L1/L2 are the two halves of Dekker's pattern
// (store; fence; load on both sides), so either the thread's T3 sees the
// completion, or the lcore's L2 sees `want` set, or both. If the thread sees
// it, it handles readiness itself; if only the lcore does, the lcore writes.
// In the "both" case exactly one CAS wins, so the eventfd is written exactly
// once per not-ready -> ready transition: edge-triggered epoll sees one edge
// per transition, level-triggered sees the fd readable while the handle is
// ready.
//
// No spurious wake-up: the lcore fires only for a completion the thread had
// not consumed when it armed (p >= H; an older one was already accounted
// for before the thread decided it was not ready), with a single CAS against
// the value it read (a re-arm in between changes the value, and the
// re-arming thread's T3 sees the completion itself). Every event completion
// makes the handle ready when the thread processes it. The thread drains at
// T1 only after every write the lcore claimed has landed (fired == claimed),
// so no claimed write arrives after the drain. The wait is bounded by one
// lcore iteration and happens only when the thread learned of the readiness
// from the ring before the lcore's eventfd write (it was awake anyway).
//
// Busy polling (SO_BUSY_POLL, wake_delay_ns != 0): the lcore does L2 for
// the handle that much later, in a later iteration's after_flush (after that
// pass's fence, so the Dekker argument holds unchanged). A thread that polls
// the handle meanwhile processes the completion and, having consumed all it
// reported within the same call (recv), re-arms past it (a CAS from its old
// `want` to 1 + its consumed position H') instead of writing the eventfd
// itself; L2 then finds the new `want` and does not fire. Either the
// thread's CAS or the lcore's wins, so the accounting above is unchanged.
// This re-arm needs no fence and no T3: the lost wake-up that T2's Dekker
// pair prevents is an L2 that read `want` == 0 and skipped a completion the
// thread had not consumed. Here `want` has not been 0 since the arm (else
// the CAS fails and the thread takes the lcore's write, as above), and every
// completion not yet consumed is at a position p >= H', which the old value
// (1 + H, H <= H') and the new one both fire for: whichever value L2 reads,
// it does not skip one. The decision rests on one word, whose modification
// order the two CASes share. The cost is that a
// thread asleep in epoll_wait is woken up late: by wake_delay_ns, or by up
// to twice that when it went to sleep right after taking the completion the
// delay was counting for (the lcore, to leave `want`'s line alone while the
// thread polls, looks at it only when a delay runs out, and then gives the
// newest completion a delay of its own).
//
// Cost on the lcore: one write(2) on an eventfd per handle per not-ready ->
// ready transition, batched after the iteration's TX flush, never per
// packet: a handle whose thread has not consumed the previous event costs
// one relaxed load. A thread that keeps up with a stream arms and is woken
// once per burst.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "shim/spsc_ring.hpp"
#include "ustack/tcp.hpp"

namespace ustack::shim {

// udp_bind / udp_connect open the lcore's UdpSocket on first use (value bit
// 0: SO_REUSEADDR; udp_bind, bit 1: the port must be free of every other
// socket, reuse or not, as an ephemeral port is); their result carries the
// socket's bound port in Completion::port. udp_unbind takes a bound socket
// off its port again (a bind that failed on another lcore is undone).
// udp_send carries one datagram (addr/port 0: the connected peer).
// send_inline: up to kInlineBytes of stream data carried in the command
// itself (Command::data, length in value), so that a small send costs the
// lcore no mbuf of the thread's to read and free: the bytes come with the
// ring slot, which crosses anyway.
// udp_send_inline: a datagram of at most kInlineBytes in Command::data
// (length in value; addr/port as udp_send), copied into an mbuf of the
// lcore's by UDP's send.
enum class CmdOp : std::uint8_t { listen, connect, send, shutdown, close, abort, set_option, udp_bind, udp_connect, udp_send,
                                  udp_mcast, udp_unbind, send_inline, udp_send_inline };
enum class OptId : std::uint8_t { nodelay, keepalive, delayed_ack };
// udp_mcast: an IPPROTO_IP multicast option, in Command::port; the group in
// addr, the source or the option's value (ttl, loop, interface address; host
// order) in value; mbuf & 1 the SO_REUSEADDR flag should this call open the
// lcore's UdpSocket. Synchronous (a result). `reuse` is not a multicast
// option but takes the same path: SO_REUSEADDR / SO_REUSEPORT (value 0/1) on
// a socket the lcore has already opened (a membership call opens it before
// bind, and Linux accepts the option at any time).
enum class McastOp : std::uint16_t { join, leave, join_source, leave_source, block_source, unblock_source, ttl, loop, ifaddr,
                                     reuse };

// Small payloads cross inside the ring slot (Command and Completion are
// then two cache lines less a word, the second line carrying only data).
inline constexpr std::size_t kInlineBytes = 96;
// Per handle, the thread's ring for data_inline bytes not yet received. The
// more it holds, the less often the lcore reads the thread's consumed count.
inline constexpr std::size_t kInlineRxBytes = 512;

struct Command {
  std::uint32_t id = 0;       // handle id in the channel
  CmdOp op = CmdOp::close;
  OptId opt = OptId::nodelay;
  std::uint16_t port = 0;     // listen / connect
  std::uint32_t addr = 0;     // listen / connect (host order)
  std::uint32_t value = 0;    // listen: backlog; set_option: value
  std::uint64_t mbuf = 0;     // send: the rte_mbuf chain
  std::uint8_t data[kInlineBytes];  // send_inline: the bytes (unused otherwise)
};
static_assert(sizeof(Command) == 2 * kCacheLine - 8);

// result and released answer the thread's own calls; the others are
// "event" completions, each of which makes its handle ready.
// dgram: one UDP datagram (mbuf, sender in addr/port); error: an ICMP error
// on a connected UDP socket (value: errno). data_inline: stream data in
// Completion::data (value bytes, at most kInlineBytes). The thread keeps
// such bytes in a ring of kInlineRxBytes per handle, ahead of any mbuf
// data; the lcore sends data_inline only when that cannot overflow and
// keeps the order: when no mbuf data is unconsumed and all unconsumed data
// plus this fits the ring (by its cached count of what the thread
// consumed, which only lags, so the check errs on the safe side; re-read
// when the check fails).
// dgram_inline: a datagram of at most kInlineBytes in Completion::data
// (always safe: the thread keeps a slot per datagram of credit).
enum class CplOp : std::uint8_t { result, connected, data, eof, closed, accepted, released, writable, dgram, error,
                                  data_inline, dgram_inline };

struct Completion {
  std::uint32_t id = 0;
  CplOp op = CplOp::result;
  std::uint16_t port = 0;     // accepted: the peer's port; connected: our (local) port; result of udp_bind/udp_connect: the bound port
  std::uint32_t addr = 0;     // accepted: the peer's address; connected: our address
  std::int32_t value = 0;     // result / closed: errno (0 ok); accepted: the new id; data: bytes
  std::uint64_t mbuf = 0;     // data: the rte_mbuf chain; accepted: local address << 16 | local port
  std::uint8_t data[kInlineBytes];  // data_inline: the bytes (unused otherwise)
};
static_assert(sizeof(Completion) == 2 * kCacheLine - 8);

// Per handle, shared by the two sides. Each field has one writer but
// `want` (either side may clear it). The fields are grouped by who writes
// them how often, one cache line per group, so that a write on one side does
// not take from the other a line it reads on every message: the thread's
// per-receive counters are read by the lcore only when its cached copy says
// the credit is running low (ShimLcore::credit), and tx_acked, which the
// lcore writes on every send, is read by the thread only when its cached
// copy says the send credit is short.
struct alignas(kCacheLine) SharedSlot {
  // Written by the thread on every receive.
  std::atomic<std::uint64_t> want{0};          // thread arms (1 + ring position), either side disarms by CAS
  std::atomic<std::uint64_t> rx_consumed{0};   // thread: bytes of data completions consumed (receive credit)
  std::atomic<std::uint64_t> rx_dgrams_consumed{0};  // thread: UDP datagrams consumed (datagram credit)
  // Written by the thread at set-up and by setsockopt; read by the lcore.
  alignas(kCacheLine) std::atomic<int> efd{-1};  // thread: the handle's eventfd
  std::atomic<std::uint32_t> wake_delay_ns{0};  // thread (SO_BUSY_POLL): how long L2 waits
  std::atomic<std::uint32_t> out_req{0};       // thread sets 0->1 and queues the id on `waiters`; lcore clears
  // Written by the thread before a listen/connect command, read by the lcore
  // when it executes it (the ring's release/acquire orders them).
  TcpConnOptions opt;
  std::uint32_t rx_limit = 0;                  // receive credit in bytes
  // Written by the lcore.
  alignas(kCacheLine) std::atomic<std::uint64_t> tx_acked{0};  // bytes sent through the shim that left TCP's send buffer
  std::atomic<std::uint32_t> fired{0};         // eventfd writes completed
};

struct ChannelConfig {
  std::uint32_t handles = 1024;   // per half: sockets the thread opens / connections the lcore accepts
  std::uint32_t cmd_ring = 1024;
  std::uint32_t cpl_ring = 4096;
};

// One (application thread, lcore) pair. Allocated at start-up.
struct Channel {
  Channel(std::uint32_t idx, const ChannelConfig& cfg)
      : index(idx),
        handles(cfg.handles),
        cmd(cfg.cmd_ring),
        cpl(cfg.cpl_ring),
        waiters(2 * static_cast<std::size_t>(cfg.handles)),
        slots(new SharedSlot[2 * static_cast<std::size_t>(cfg.handles)]) {}

  const std::uint32_t index;
  const std::uint32_t handles;
  std::atomic<bool> active{false};  // a thread attached: the lcore polls it
  alignas(kCacheLine) std::atomic<std::uint64_t> order{0};  // both sides' fence (see above)
  SpscRing<Command> cmd;
  SpscRing<Completion> cpl;
  SpscRing<std::uint32_t> waiters;  // at most one entry per handle (out_req)
  std::unique_ptr<SharedSlot[]> slots;
};

}  // namespace ustack::shim
