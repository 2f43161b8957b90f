#include "drivers/pcap_tee.hpp"

#include <pcap/pcap.h>

#include <algorithm>

namespace ustack {

std::unique_ptr<PcapWriter> PcapWriter::open(const std::string& path, std::string& err) {
  pcap_t* dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, static_cast<int>(kSnapLen),
                                                      PCAP_TSTAMP_PRECISION_NANO);
  if (!dead) {
    err = "pcap: cannot create a capture handle for '" + path + "'";
    return nullptr;
  }
  pcap_dumper_t* dumper = pcap_dump_open(dead, path.c_str());
  if (!dumper) {
    err = "pcap: cannot open '" + path + "' for writing: " + pcap_geterr(dead);
    pcap_close(dead);
    return nullptr;
  }
  return std::unique_ptr<PcapWriter>(new PcapWriter(dead, dumper));
}

PcapWriter::PcapWriter(pcap* dead, pcap_dumper* dumper)
    : dead_(dead), dumper_(dumper), scratch_(new std::uint8_t[kSnapLen]) {}

PcapWriter::~PcapWriter() {
  pcap_dump_close(dumper_);
  pcap_close(dead_);
}

void PcapWriter::write(const rte_mbuf* m, TimeNs ts) {
  const std::uint32_t len = rte_pktmbuf_pkt_len(m);
  const std::uint32_t caplen = std::min(len, kSnapLen);
  // rte_pktmbuf_read points into the mbuf when the bytes are in the first
  // segment and copies into scratch only for a chain.
  const void* data = rte_pktmbuf_read(m, 0, caplen, scratch_.get());
  pcap_pkthdr hdr{};
  // With nanosecond precision the tv_usec field carries nanoseconds.
  hdr.ts.tv_sec = static_cast<decltype(hdr.ts.tv_sec)>(ts / kNsPerSec);
  hdr.ts.tv_usec = static_cast<decltype(hdr.ts.tv_usec)>(ts % kNsPerSec);
  hdr.caplen = caplen;
  hdr.len = len;
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &hdr, static_cast<const u_char*>(data));
}

void PcapWriter::flush() { pcap_dump_flush(dumper_); }

std::unique_ptr<PcapTee> PcapTee::open(Device& inner, const std::string& path, TimeNs wall_offset_ns,
                                       std::string& err) {
  auto writer = PcapWriter::open(path, err);
  if (!writer) {
    err = "pcap tee: " + err;
    return nullptr;
  }
  return std::unique_ptr<PcapTee>(new PcapTee(inner, std::move(writer), wall_offset_ns));
}

std::uint16_t PcapTee::rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) {
  const std::uint16_t n = inner_.rx_burst(pkts, now);
  for (std::uint16_t i = 0; i < n; ++i) writer_->write(pkts[i], now + wall_offset_ns_);
  written_ += n;
  return n;
}

std::uint16_t PcapTee::tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) {
  for (rte_mbuf* m : pkts) writer_->write(m, now + wall_offset_ns_);
  written_ += pkts.size();
  const std::uint16_t sent = inner_.tx_burst(pkts, now);
  tx_rejected_ += pkts.size() - sent;
  return sent;
}

void PcapTee::flush(TimeNs now) {
  writer_->flush();
  inner_.flush(now);
}

}  // namespace ustack
