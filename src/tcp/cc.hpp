// Congestion control as the TCP connection sees it: one object, NewReno or CUBIC chosen
// per connection, driven by events, answering with cwnd/ssthresh and what to retransmit.
//
// Read first:
//   RFC 5681 §3      the events: new ACK, duplicate ACK, timeout, idle restart
//   RFC 6582 §3.2    what a partial / full ACK asks the sender to do
//   newreno.hpp      event and action types, the shared Reno machinery, NewReno
//   cubic.hpp        CUBIC (RFC 9438)
//
// Why a std::variant and not a virtual base. The connection must pick the algorithm per
// connection without a heap allocation, and connections live in a preallocated per-lcore
// table. A variant stores the larger of the two algorithms inline (both are a few dozen
// bytes of plain integers), so a connection slot has a fixed size and building one
// allocates nothing. Dispatch is one index test on a value already in the connection's
// cache lines, which the compiler can inline through; a virtual call would need a
// vtable pointer load and usually blocks inlining. Both alternatives are nothrow
// constructible, so the variant can never become valueless.
//
// Event contract, in the order the connection meets them on one incoming segment:
//   1. If the ACK acknowledges new data: time it (Karn's rule, see rtt.hpp), feed the
//      RttEstimator, then on_ack() with the estimator's SRTT. Act on the AckAction.
//   2. Else, if it is a duplicate ACK (RFC 5681 §2): on_dup_ack(). Act on DupAckAction.
//   Retransmission timer expiry: on_rto() before retransmitting, then backoff() the
//   estimator. Before sending with nothing in flight: on_idle_restart().
//   Then send while FlightSize < cwnd() (and the peer's window allows).
#pragma once

#include <cstdint>
#include <variant>

#include "core/time.hpp"
#include "tcp/cubic.hpp"
#include "tcp/newreno.hpp"

namespace ustack::tcp {

enum class CcAlgorithm : std::uint8_t { newreno, cubic };

class CongestionControl {
  using Impl = std::variant<NewReno, Cubic>;
  Impl impl_;

  // Dispatch. std::visit would do, but it is specified to throw on a valueless variant;
  // with two alternatives and nothrow construction a get_if pair says the same without
  // the exception path. Defined ahead of their callers: the return type is deduced.
  template <class F>
  decltype(auto) visit(F&& f) noexcept {
    if (auto* r = std::get_if<NewReno>(&impl_)) return f(*r);
    return f(*std::get_if<Cubic>(&impl_));
  }
  template <class F>
  decltype(auto) visit(F&& f) const noexcept {
    if (const auto* r = std::get_if<NewReno>(&impl_)) return f(*r);
    return f(*std::get_if<Cubic>(&impl_));
  }

 public:
  explicit CongestionControl(CcAlgorithm algo = CcAlgorithm::cubic,
                             const CcConfig& cfg = {}) noexcept
      : impl_(make(algo, cfg)) {}

  CcAlgorithm algorithm() const noexcept {
    return impl_.index() == 0 ? CcAlgorithm::newreno : CcAlgorithm::cubic;
  }

  // A new cumulative ACK (acked_bytes > 0).
  AckAction on_ack(const AckEvent& ev) noexcept {
    return visit([&](auto& a) { return a.on_ack(ev); });
  }
  // A duplicate ACK. The third one outside recovery enters fast retransmit.
  DupAckAction on_dup_ack(const DupAckEvent& ev) noexcept {
    return visit([&](auto& a) { return a.on_dup_ack(ev); });
  }
  // The retransmission timer expired.
  void on_rto(const RtoEvent& ev) noexcept {
    visit([&](auto& a) { a.on_rto(ev); });
  }
  // About to send with nothing in flight; `last_send` is when data was last sent and
  // `rto` the current RTO. Returns true if cwnd was cut to the restart window.
  bool on_idle_restart(TimeNs now, TimeNs last_send, TimeNs rto) noexcept {
    return visit([&](auto& a) { return a.on_idle_restart(now, last_send, rto); });
  }

  std::uint32_t cwnd() const noexcept { return window().cwnd(); }
  std::uint32_t ssthresh() const noexcept { return window().ssthresh(); }
  std::uint32_t smss() const noexcept { return window().smss(); }
  bool in_slow_start() const noexcept { return window().in_slow_start(); }
  bool in_recovery() const noexcept { return window().in_recovery(); }
  const RenoWindow& window() const noexcept {
    return visit([](const auto& a) -> const RenoWindow& { return a.window(); });
  }

  // The algorithm itself, for telemetry and tests; nullptr if it is the other one.
  const NewReno* newreno() const noexcept { return std::get_if<NewReno>(&impl_); }
  const Cubic* cubic() const noexcept { return std::get_if<Cubic>(&impl_); }

 private:
  static Impl make(CcAlgorithm algo, const CcConfig& cfg) noexcept {
    if (algo == CcAlgorithm::newreno) return Impl{std::in_place_type<NewReno>, cfg};
    return Impl{std::in_place_type<Cubic>, cfg};
  }
};

}  // namespace ustack::tcp
