#include "drivers/pcap_replay.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace ustack {
namespace {

TimeNs timestamp_of(const pcap_pkthdr& h) {
  // Opened with nanosecond precision, so tv_usec holds nanoseconds.
  return static_cast<TimeNs>(h.ts.tv_sec) * kNsPerSec + static_cast<TimeNs>(h.ts.tv_usec);
}

}  // namespace

std::unique_ptr<PcapReplay> PcapReplay::open(const std::string& in_path, const std::string& out_path,
                                             rte_mempool* pool, const DeviceCaps& caps, std::string& err) {
  if (!pool) {
    err = "pcap replay: no mbuf pool given";
    return nullptr;
  }
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* in = pcap_open_offline_with_tstamp_precision(in_path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!in) {
    err = "pcap replay: cannot read '" + in_path + "': " + errbuf;
    return nullptr;
  }
  const int dlt = pcap_datalink(in);
  if (dlt != DLT_EN10MB) {
    const char* name = pcap_datalink_val_to_name(dlt);
    err = "pcap replay: '" + in_path + "' has link type " + (name ? name : "?") + " (" + std::to_string(dlt) +
          "); only Ethernet (EN10MB) captures can be replayed";
    pcap_close(in);
    return nullptr;
  }
  std::unique_ptr<PcapWriter> out;
  if (!out_path.empty()) {
    out = PcapWriter::open(out_path, err);
    if (!out) {
      err = "pcap replay: " + err;
      pcap_close(in);
      return nullptr;
    }
  }
  auto r = std::unique_ptr<PcapReplay>(new PcapReplay(in, std::move(out), pool, caps));
  r->advance();
  if (r->input_error_[0] != '\0') {
    err = "pcap replay: cannot read '" + in_path + "': " + r->input_error_.data();
    return nullptr;
  }
  return r;
}

PcapReplay::PcapReplay(pcap* in, std::unique_ptr<PcapWriter> out, rte_mempool* pool, const DeviceCaps& caps)
    : in_(in), out_(std::move(out)), pool_(pool), caps_(caps) {
  // A fresh mbuf starts RTE_PKTMBUF_HEADROOM into its buffer (or at the end
  // of a buffer smaller than that), so this is the longest frame one holds.
  const std::uint32_t room = rte_pktmbuf_data_room_size(pool);
  max_frame_ = room - std::min<std::uint32_t>(room, RTE_PKTMBUF_HEADROOM);
}

PcapReplay::~PcapReplay() { pcap_close(in_); }

void PcapReplay::advance() {
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  const int rc = pcap_next_ex(in_, &hdr, &data);
  if (rc == 1) {
    pending_hdr_ = hdr;
    pending_data_ = data;
    return;
  }
  pending_hdr_ = nullptr;
  pending_data_ = nullptr;
  if (rc == PCAP_ERROR) std::snprintf(input_error_.data(), input_error_.size(), "%s", pcap_geterr(in_));
}

std::optional<TimeNs> PcapReplay::next_rx_time() const {
  if (!pending_hdr_) return std::nullopt;
  return timestamp_of(*pending_hdr_);
}

std::uint16_t PcapReplay::rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) {
  std::uint16_t n = 0;
  while (n < pkts.size() && pending_hdr_ && timestamp_of(*pending_hdr_) <= now) {
    const std::uint32_t caplen = pending_hdr_->caplen;
    if (caplen < pending_hdr_->len) {
      ++counters_.rx_drop_truncated_capture;
    } else if (caplen > max_frame_) {
      ++counters_.rx_drop_oversize;
    } else if (rte_mbuf* m = rte_pktmbuf_alloc(pool_); !m) {
      // A NIC out of descriptors drops the frame and moves on; so does replay.
      ++counters_.rx_drop_nombuf;
    } else {
      std::memcpy(rte_pktmbuf_append(m, static_cast<std::uint16_t>(caplen)), pending_data_, caplen);
      pkts[n++] = m;
      ++counters_.rx_packets;
      counters_.rx_bytes += caplen;
    }
    advance();
  }
  return n;
}

std::uint16_t PcapReplay::tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) {
  const auto n = static_cast<std::uint16_t>(std::min<std::size_t>(pkts.size(), UINT16_MAX));
  for (std::uint16_t i = 0; i < n; ++i) {
    if (out_) out_->write(pkts[i], now);
    ++counters_.tx_packets;
    counters_.tx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
  }
  if (n) rte_pktmbuf_free_bulk(pkts.data(), n);
  return n;
}

void PcapReplay::flush(TimeNs /*now*/) {
  if (out_) out_->flush();
}

}  // namespace ustack
