// Records what a device receives and sends to a capture file.
//
// PcapTee wraps any Device (smoltcp's `Tracer`/`PcapWriter` shape): every
// packet rx_burst returns and every packet handed to tx_burst is written to a
// nanosecond pcap (DLT_EN10MB) stamped `now + wall_offset_ns`, so a capture of
// a run on monotonic time reads as wall-clock time in Wireshark.
//
// PcapWriter is the capture-writing half, shared with PcapReplay's output.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/time.hpp"
#include "drivers/device.hpp"

struct pcap;
struct pcap_dumper;

namespace ustack {

// A nanosecond-precision Ethernet capture file open for writing.
// All memory (including the scratch buffer that linearises multi-segment
// mbufs) is allocated in open(); write() does not allocate.
class PcapWriter {
 public:
  // Largest record written; longer packets are truncated to this (caplen < len),
  // which is libpcap's own maximum snapshot length for Ethernet.
  static constexpr std::uint32_t kSnapLen = 262144;

  // Creates (truncates) `path`. On failure returns nullptr and sets `err` to
  // one line naming the file and libpcap's reason.
  static std::unique_ptr<PcapWriter> open(const std::string& path, std::string& err);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Appends one record holding the whole packet (every segment) stamped `ts`.
  void write(const rte_mbuf* m, TimeNs ts);
  // Pushes buffered records to the file (pcap_dump_flush).
  void flush();

 private:
  PcapWriter(pcap* dead, pcap_dumper* dumper);
  pcap* dead_;
  pcap_dumper* dumper_;
  std::unique_ptr<std::uint8_t[]> scratch_;
};

class PcapTee final : public Device {
 public:
  // Nanosecond pcap, DLT_EN10MB. Timestamps are now + wall_offset_ns (the
  // runtime passes realtime-at-start minus monotonic-at-start so captures show
  // wall-clock time). On failure returns nullptr and sets `err` to one line.
  static std::unique_ptr<PcapTee> open(Device& inner, const std::string& path, TimeNs wall_offset_ns,
                                       std::string& err);

  const DeviceCaps& caps() const override { return inner_.caps(); }
  // Records the packets inner returns, in order.
  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override;
  // Records every packet offered, before inner sees it (a PMD may free a
  // packet as soon as it takes it). A packet inner then refuses is in the
  // capture although it never left; tx_rejected() counts those.
  std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override;
  bool set_mc_addr_list(std::span<const MacAddr> macs) override { return inner_.set_mc_addr_list(macs); }
  bool set_allmulticast(bool on) override { return inner_.set_allmulticast(on); }
  // pcap_dump_flush, then inner.flush.
  void flush(TimeNs now) override;

  std::uint64_t packets_written() const { return written_; }
  std::uint64_t tx_rejected() const { return tx_rejected_; }

 private:
  PcapTee(Device& inner, std::unique_ptr<PcapWriter> writer, TimeNs wall_offset_ns)
      : inner_(inner), writer_(std::move(writer)), wall_offset_ns_(wall_offset_ns) {}
  Device& inner_;
  std::unique_ptr<PcapWriter> writer_;
  TimeNs wall_offset_ns_;
  std::uint64_t written_ = 0;
  std::uint64_t tx_rejected_ = 0;
};

}  // namespace ustack
