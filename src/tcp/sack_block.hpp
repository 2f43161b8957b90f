// One SACK block (RFC 2018 §3): a contiguous range of sequence space that the
// receiver holds beyond the cumulative ACK. Shared by the receive side
// (reassembly.hpp reports them) and the send side (sack_scoreboard.hpp
// consumes them); kept in its own header so the sender's scoreboard does not
// pull in packets and DPDK.
#pragma once

#include "core/seq.hpp"

namespace ustack::tcp {

struct SackBlock {
  SeqNum left;   // first sequence number of the block
  SeqNum right;  // one past the last
  bool operator==(const SackBlock&) const = default;
};

}  // namespace ustack::tcp
