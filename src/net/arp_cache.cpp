// ARP cache: see arp_cache.hpp for the life cycle and the table layout.
#include "net/arp_cache.hpp"

#include <bit>

#include "net/stack.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"

namespace ustack {

ArpCache::ArpCache(Stack& stack, const ArpConfig& cfg)
    : stack_(stack), cfg_(cfg), entries_(cfg.entries == 0 ? 1 : cfg.entries) {
  if (cfg_.pending_per_entry > kMaxPending) cfg_.pending_per_entry = kMaxPending;
  index_.assign(std::bit_ceil(entries_.size() * 2), -1);
  free_.reserve(entries_.size());
  for (std::size_t i = entries_.size(); i-- > 0;) {
    entries_[i].owner = this;
    entries_[i].timer.set_callback(&ArpCache::on_timer, &entries_[i]);
    free_.push_back(static_cast<std::int32_t>(i));
  }
}

ArpCache::~ArpCache() {
  for (auto& e : entries_) drop_pending(e);
}

std::size_t ArpCache::slot_of(Ipv4Addr ip) const {
  // Fibonacci hashing: multiply, keep the high bits.
  const std::uint64_t h = std::uint64_t{ip.v} * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(h >> 32) & (index_.size() - 1);
}

ArpCache::Entry* ArpCache::find(Ipv4Addr ip) {
  const std::size_t mask = index_.size() - 1;
  for (std::size_t s = slot_of(ip);; s = (s + 1) & mask) {
    const std::int32_t i = index_[s];
    if (i < 0) return nullptr;
    if (entries_[static_cast<std::size_t>(i)].ip == ip) return &entries_[static_cast<std::size_t>(i)];
  }
}

const ArpCache::Entry* ArpCache::find(Ipv4Addr ip) const { return const_cast<ArpCache*>(this)->find(ip); }

ArpCache::Entry* ArpCache::insert(Ipv4Addr ip) {
  if (free_.empty()) return nullptr;
  const std::int32_t i = free_.back();
  free_.pop_back();
  const std::size_t mask = index_.size() - 1;
  std::size_t s = slot_of(ip);
  while (index_[s] >= 0) s = (s + 1) & mask;
  index_[s] = i;
  Entry& e = entries_[static_cast<std::size_t>(i)];
  e.ip = ip;
  e.mac = MacAddr{};
  e.retries = 0;
  e.npending = 0;
  e.confirm_sent = false;
  ++used_;
  return &e;
}

void ArpCache::remove(Entry& e) {
  stack_.timers().cancel(e.timer);
  drop_pending(e);
  const std::size_t mask = index_.size() - 1;
  const auto idx = static_cast<std::int32_t>(&e - entries_.data());
  std::size_t hole = slot_of(e.ip);
  while (index_[hole] != idx) hole = (hole + 1) & mask;
  index_[hole] = -1;
  // Backward-shift deletion: pull later members of the probe run into the
  // hole when their home slot does not lie (cyclically) between hole and them.
  for (std::size_t j = (hole + 1) & mask; index_[j] >= 0; j = (j + 1) & mask) {
    const std::size_t home = slot_of(entries_[static_cast<std::size_t>(index_[j])].ip);
    const bool home_in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_in_range) {
      index_[hole] = index_[j];
      index_[j] = -1;
      hole = j;
    }
  }
  e.state = State::free;
  e.ip = Ipv4Addr{};
  free_.push_back(idx);
  --used_;
}

void ArpCache::drop_pending(Entry& e) {
  for (std::uint8_t i = 0; i < e.npending; ++i) rte_pktmbuf_free(e.pending[i]);
  e.npending = 0;
}

const MacAddr* ArpCache::lookup(Ipv4Addr ip, TimeNs now) {
  Entry* e = find(ip);
  if (!e || e->state == State::incomplete) return nullptr;
  if (e->state == State::stale && !e->confirm_sent) {
    e->confirm_sent = true;
    stack_.send_arp(wire::ArpOp::request, e->mac, e->mac, ip, now);
  }
  return &e->mac;
}

bool ArpCache::enqueue(Ipv4Addr ip, Packet&& pkt, TimeNs now) {
  Entry* e = find(ip);
  if (!e) {
    e = insert(ip);
    if (!e) {
      stack_.counters().inc(StackCounter::arp_drop_table_full);
      return false;
    }
    e->state = State::incomplete;
    stack_.send_arp(wire::ArpOp::request, MacAddr::broadcast(), MacAddr{}, ip, now);
    stack_.timers().arm(e->timer, now + cfg_.retry_ns);
  }
  if (e->state != State::incomplete) {  // resolved meanwhile: send now
    stack_.emit_frame(std::move(pkt), e->mac, wire::ethertype::kIpv4, now);
    return true;
  }
  if (e->npending >= cfg_.pending_per_entry) {
    stack_.counters().inc(StackCounter::arp_drop_pending_overflow);
    return false;
  }
  e->pending[e->npending++] = pkt.release();
  return true;
}

void ArpCache::update(Ipv4Addr ip, const MacAddr& mac, bool create, TimeNs now) {
  Entry* e = find(ip);
  if (!e) {
    if (!create) return;
    e = insert(ip);
    if (!e) {
      stack_.counters().inc(StackCounter::arp_drop_table_full);
      return;
    }
  }
  const bool was_incomplete = e->state == State::incomplete;
  e->mac = mac;
  e->state = State::reachable;
  e->retries = 0;
  e->confirm_sent = false;
  stack_.timers().arm(e->timer, now + cfg_.reachable_ns);
  if (was_incomplete) {
    const std::uint8_t n = e->npending;
    e->npending = 0;
    for (std::uint8_t i = 0; i < n; ++i)
      stack_.emit_frame(Packet{e->pending[i]}, mac, wire::ethertype::kIpv4, now);
  }
}

ArpCache::State ArpCache::state(Ipv4Addr ip) const {
  const Entry* e = find(ip);
  return e ? e->state : State::free;
}

void ArpCache::on_timer(Timer& /*t*/, TimeNs now, void* ctx) {
  Entry& e = *static_cast<Entry*>(ctx);
  ArpCache& c = *e.owner;
  switch (e.state) {
    case State::incomplete:
      if (e.retries < c.cfg_.max_retries) {
        ++e.retries;
        c.stack_.send_arp(wire::ArpOp::request, MacAddr::broadcast(), MacAddr{}, e.ip, now);
        c.stack_.timers().arm(e.timer, now + c.cfg_.retry_ns);
      } else {
        c.stack_.counters().inc(StackCounter::arp_resolve_failed);
        c.stack_.counters().inc(StackCounter::arp_drop_resolve_timeout, e.npending);
        c.remove(e);
      }
      break;
    case State::reachable:
      e.state = State::stale;
      e.confirm_sent = false;
      c.stack_.timers().arm(e.timer, now + c.cfg_.reachable_ns);
      break;
    case State::stale:
      c.remove(e);
      break;
    case State::free:
      break;
  }
}

}  // namespace ustack
