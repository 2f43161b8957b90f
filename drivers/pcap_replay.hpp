// Pcap replay: a capture is the wire and its timestamps are the clock.
//
// The input capture's packets come up through rx_burst once `now` reaches
// their timestamps; whatever the stack sends is written to an output capture
// stamped with the `now` it was sent at. Nothing reads a clock, so replaying
// the same input with the same stack gives the same output file, byte for
// byte. The driver runs the loop by asking next_rx_time() where virtual time
// should jump to next.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/time.hpp"
#include "drivers/device.hpp"
#include "drivers/pcap_tee.hpp"

struct pcap;
struct pcap_pkthdr;

namespace ustack {

class PcapReplay final : public Device {
 public:
  // Opens `in_path` for reading (any pcap/pcapng libpcap reads, Ethernet link
  // type only, nanosecond timestamps) and `out_path` for writing (nanosecond
  // pcap, DLT_EN10MB; an empty out_path discards what is sent). Received
  // packets are allocated from `pool`. On failure returns nullptr and sets
  // `err` to one clear line.
  static std::unique_ptr<PcapReplay> open(const std::string& in_path, const std::string& out_path,
                                          rte_mempool* pool, const DeviceCaps& caps, std::string& err);
  ~PcapReplay() override;
  PcapReplay(const PcapReplay&) = delete;
  PcapReplay& operator=(const PcapReplay&) = delete;

  const DeviceCaps& caps() const override { return caps_; }
  // Returns the input packets whose timestamp <= now, in capture order. A
  // record that cannot become a packet is counted and skipped (see Counters).
  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override;
  // Writes every packet to the output capture stamped `now`, frees them and
  // returns the count.
  std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override;
  // A capture has no filter: every frame in it is delivered.
  bool set_allmulticast(bool on) override { return on; }
  // pcap_dump_flush.
  void flush(TimeNs now) override;

  // Timestamp (ns, as in the capture) of the next input packet; nullopt at
  // end of input (including a read error, see input_error()).
  std::optional<TimeNs> next_rx_time() const;

  struct Counters {
    std::uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
    std::uint64_t rx_drop_oversize = 0;           // longer than one mbuf's data room
    std::uint64_t rx_drop_nombuf = 0;             // pool exhausted
    std::uint64_t rx_drop_truncated_capture = 0;  // caplen < len: the frame was not captured whole
  };
  const Counters& counters() const { return counters_; }

  // libpcap's message when the input ended in a read error (a file cut off
  // mid-record); empty when input ended cleanly or has not ended.
  const char* input_error() const { return input_error_.data(); }

 private:
  PcapReplay(pcap* in, std::unique_ptr<PcapWriter> out, rte_mempool* pool, const DeviceCaps& caps);
  // Reads the next record into pending_hdr_/pending_data_ (valid until the next read).
  void advance();

  pcap* in_;
  std::unique_ptr<PcapWriter> out_;
  rte_mempool* pool_;
  DeviceCaps caps_;
  std::uint32_t max_frame_;  // data room of one fresh mbuf from pool_
  const pcap_pkthdr* pending_hdr_ = nullptr;
  const std::uint8_t* pending_data_ = nullptr;
  Counters counters_;
  std::array<char, 256> input_error_{};
};

}  // namespace ustack
