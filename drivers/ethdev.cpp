// DPDK ethdev port and queue setup. See ethdev.hpp for the split between the
// control plane (EthdevPort) and the data plane (EthdevQueue).
#include "drivers/ethdev.hpp"

#include <rte_errno.h>
#include <rte_ether.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "drivers/ethdev_rss.hpp"

namespace ustack {
namespace {

std::string errstr(int rc) {
  const int e = rc < 0 ? -rc : rc;
  return std::string(rte_strerror(e));
}

std::string port_prefix(std::uint16_t port) { return "port " + std::to_string(port) + ": "; }

constexpr std::uint64_t kWantedRxOffloads =
    RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
constexpr std::uint64_t kWantedTxOffloads = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
                                            RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_TSO |
                                            RTE_ETH_TX_OFFLOAD_MULTI_SEGS;

// Largest frame the port may deliver for `mtu`: Ethernet header, one VLAN tag, FCS.
constexpr std::uint32_t frame_len_for_mtu(std::uint32_t mtu) {
  return mtu + RTE_ETHER_HDR_LEN + 4 + RTE_ETHER_CRC_LEN;
}

}  // namespace

std::string LinkStatus::to_string() const {
  if (!up) return "down";
  std::string s = "up";
  if (speed_mbps != 0) s += " " + std::to_string(speed_mbps) + " Mbps";
  s += full_duplex ? " full-duplex" : " half-duplex";
  if (autoneg) s += " autoneg";
  return s;
}

std::unique_ptr<EthdevPort> EthdevPort::open(const EthdevConfig& cfg, std::string& err) {
  if (!rte_eth_dev_is_valid_port(cfg.port_id)) {
    err = port_prefix(cfg.port_id) + "no such port (" + std::to_string(rte_eth_dev_count_avail()) +
          " available; name one with --vdev=net_af_packet0,iface=IF or bind a NIC to vfio-pci)";
    return nullptr;
  }
  if (cfg.pools.empty() || cfg.pools.size() > RTE_MAX_QUEUES_PER_PORT) {
    err = port_prefix(cfg.port_id) + "bad number of queues: " + std::to_string(cfg.pools.size());
    return nullptr;
  }
  for (rte_mempool* mp : cfg.pools) {
    if (mp == nullptr) {
      err = port_prefix(cfg.port_id) + "missing mempool";
      return nullptr;
    }
  }
  std::unique_ptr<EthdevPort> p(new EthdevPort(cfg.port_id, static_cast<std::uint16_t>(cfg.pools.size())));
  if (!p->configure(cfg, err)) {
    p->close();
    return nullptr;
  }
  return p;
}

bool EthdevPort::configure(const EthdevConfig& cfg, std::string& err) {
  const std::string pre = port_prefix(port_);
  rte_eth_dev_info info;
  int rc = rte_eth_dev_info_get(port_, &info);
  if (rc != 0) {
    err = pre + "rte_eth_dev_info_get: " + errstr(rc);
    return false;
  }
  driver_ = info.driver_name ? info.driver_name : "?";
  if (nb_queues_ > info.max_rx_queues || nb_queues_ > info.max_tx_queues) {
    err = pre + driver_ + " supports at most " + std::to_string(std::min(info.max_rx_queues, info.max_tx_queues)) +
          " queue pair(s), but " + std::to_string(nb_queues_) +
          " lcores want one each (give fewer lcores with -l, or for net_af_packet add qpairs=N to --vdev)";
    return false;
  }

  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof conf);

  // RSS only spreads flows when there is more than one queue; a PMD without
  // it (or one like net_af_packet that spreads by kernel fanout) is left alone.
  const RssConfigPlan rss = plan_rss_config(nb_queues_, info.flow_type_rss_offloads, info.hash_key_size);
  if (!rss.note.empty()) rss_notes_.push_back(rss.note);
  if (rss.enable) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss.hf;
    rss_hf_ = rss.hf;
    if (!rss.key.empty()) {
      // rte_eth_rss_conf takes a non-const key pointer; the PMD only reads it.
      rss_key_ = rss.key;
      conf.rx_adv_conf.rss_conf.rss_key = rss_key_.data();
      conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<std::uint8_t>(rss_key_.size());
    }
  }

  if (cfg.enable_offloads) {
    conf.rxmode.offloads = kWantedRxOffloads & info.rx_offload_capa;
    std::uint64_t tx = kWantedTxOffloads & info.tx_offload_capa;
    // TSO needs the TCP checksum offload to fill in each segment's checksum.
    if (!(tx & RTE_ETH_TX_OFFLOAD_TCP_CKSUM)) tx &= ~RTE_ETH_TX_OFFLOAD_TCP_TSO;
    conf.txmode.offloads = tx;
  }

  if (cfg.mtu) {
    if (*cfg.mtu < info.min_mtu || *cfg.mtu > info.max_mtu) {
      err = pre + "MTU " + std::to_string(*cfg.mtu) + " outside " + driver_ + "'s range " +
            std::to_string(info.min_mtu) + ".." + std::to_string(info.max_mtu);
      return false;
    }
    conf.rxmode.mtu = *cfg.mtu;
  }

  // Without scatter every frame must fit one mbuf's data room.
  const std::uint32_t mtu_wanted = cfg.mtu ? *cfg.mtu : 1500;
  for (rte_mempool* mp : cfg.pools) {
    const std::uint32_t room = rte_pktmbuf_data_room_size(mp) - RTE_PKTMBUF_HEADROOM;
    if (frame_len_for_mtu(mtu_wanted) > room) {
      err = pre + "MTU " + std::to_string(mtu_wanted) + " does not fit a " + std::to_string(room) +
            "-byte mbuf data room (jumbo frames need larger mbufs)";
      return false;
    }
  }

  rc = rte_eth_dev_configure(port_, nb_queues_, nb_queues_, &conf);
  // A PMD that refuses our RSS set-up still runs: first with its own key,
  // then without RSS. Whatever else is wrong fails the last try.
  if (rc != 0 && conf.rx_adv_conf.rss_conf.rss_key != nullptr) {
    rss_notes_.push_back("rte_eth_dev_configure refused our RSS key (" + errstr(rc) + "): keeping the PMD's key");
    conf.rx_adv_conf.rss_conf.rss_key = nullptr;
    conf.rx_adv_conf.rss_conf.rss_key_len = 0;
    rss_key_.clear();
    rc = rte_eth_dev_configure(port_, nb_queues_, nb_queues_, &conf);
  }
  if (rc != 0 && conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS) {
    rss_notes_.push_back("rte_eth_dev_configure refused RSS (" + errstr(rc) + "): RSS off");
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
    conf.rx_adv_conf.rss_conf = {};
    rss_hf_ = 0;
    rc = rte_eth_dev_configure(port_, nb_queues_, nb_queues_, &conf);
  }
  if (rc != 0) {
    err = pre + "rte_eth_dev_configure(" + driver_ + ", " + std::to_string(nb_queues_) + " queues): " + errstr(rc);
    return false;
  }

  rx_desc_ = cfg.rx_desc;
  tx_desc_ = cfg.tx_desc;
  rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_, &rx_desc_, &tx_desc_);
  if (rc != 0) {
    err = pre + "rte_eth_dev_adjust_nb_rx_tx_desc: " + errstr(rc);
    return false;
  }

  const int sock = rte_eth_dev_socket_id(port_);
  const unsigned socket_id = sock < 0 ? static_cast<unsigned>(SOCKET_ID_ANY) : static_cast<unsigned>(sock);
  for (std::uint16_t q = 0; q < nb_queues_; ++q) {
    rte_eth_rxconf rxconf = info.default_rxconf;
    rxconf.offloads = conf.rxmode.offloads;
    rc = rte_eth_rx_queue_setup(port_, q, rx_desc_, socket_id, &rxconf, cfg.pools[q]);
    if (rc != 0) {
      err = pre + "rx queue " + std::to_string(q) + " setup (" + std::to_string(rx_desc_) + " descriptors): " + errstr(rc);
      return false;
    }
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    rc = rte_eth_tx_queue_setup(port_, q, tx_desc_, socket_id, &txconf);
    if (rc != 0) {
      err = pre + "tx queue " + std::to_string(q) + " setup (" + std::to_string(tx_desc_) + " descriptors): " + errstr(rc);
      return false;
    }
  }

  if (cfg.mtu && !set_mtu(*cfg.mtu, err)) return false;
  std::uint16_t mtu = 0;
  caps_.mtu = rte_eth_dev_get_mtu(port_, &mtu) == 0 && mtu != 0 ? mtu : 1500;

  rte_ether_addr mac;
  rc = rte_eth_macaddr_get(port_, &mac);
  if (rc != 0) {
    err = pre + "rte_eth_macaddr_get: " + errstr(rc);
    return false;
  }
  std::memcpy(caps_.mac.b.data(), mac.addr_bytes, caps_.mac.b.size());

  caps_.max_burst = 32;
  const std::uint64_t rxo = conf.rxmode.offloads;
  const std::uint64_t txo = conf.txmode.offloads;
  caps_.rx_ipv4_cksum = (rxo & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0;
  // The flag means "the PMD reports GOOD/BAD for L4"; an UNKNOWN status (e.g.
  // UDP on a PMD that only checks TCP) still sends the stack to software.
  caps_.rx_l4_cksum = (rxo & (RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM)) != 0;
  caps_.tx_ipv4_cksum = (txo & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
  caps_.tx_udp_cksum = (txo & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0;
  caps_.tx_tcp_cksum = (txo & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) != 0;
  caps_.tso = (txo & RTE_ETH_TX_OFFLOAD_TCP_TSO) != 0;
  caps_.tx_multi_seg = (txo & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0;
  // Probe the multicast list with an empty list (which is also the state we want).
  caps_.mc_filter = rte_eth_dev_set_mc_addr_list(port_, nullptr, 0) == 0;

  if (cfg.promiscuous && !set_promiscuous(true)) {
    err = pre + driver_ + " cannot enable promiscuous mode";
    return false;
  }
  if (cfg.allmulticast && !set_allmulticast(true)) {
    err = pre + driver_ + " cannot enable all-multicast mode";
    return false;
  }
  return true;
}

EthdevPort::~EthdevPort() { close(); }

bool EthdevPort::start(std::string& err) {
  if (closed_) {
    err = port_prefix(port_) + "closed";
    return false;
  }
  if (started_) return true;
  const int rc = rte_eth_dev_start(port_);
  if (rc != 0) {
    err = port_prefix(port_) + "rte_eth_dev_start(" + driver_ + "): " + errstr(rc);
    return false;
  }
  started_ = true;
  // After start: PMDs (ixgbe, i40e) write their default RETA when they start.
  rss_ = setup_rss();
  return true;
}

RssInfo EthdevPort::setup_rss() {
  RssReadback rb;
  rb.nqueues = nb_queues_;
  rb.enabled = rss_hf_ != 0;
  rb.notes = rss_notes_;
  if (nb_queues_ <= 1 || !rb.enabled) return assess_rss(rb);

  rte_eth_dev_info info;
  int rc = rte_eth_dev_info_get(port_, &info);
  if (rc != 0) {
    rb.key_error = rb.reta_error = "rte_eth_dev_info_get: " + errstr(rc);
    return assess_rss(rb);
  }

  // The table: program entry i -> queue i % n, then read back whatever the
  // NIC holds (its own default if it refused ours).
  if (info.reta_size == 0) {
    rb.reta_error = "the PMD reports reta_size 0";
  } else {
    const std::vector<std::uint16_t> want = plan_reta(info.reta_size, nb_queues_);
    std::vector<rte_eth_rss_reta_entry64> conf((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                               RTE_ETH_RETA_GROUP_SIZE);
    for (auto& g : conf) std::memset(&g, 0, sizeof g);
    for (std::size_t i = 0; i < want.size(); ++i) {
      auto& g = conf[i / RTE_ETH_RETA_GROUP_SIZE];
      g.mask |= std::uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
      g.reta[i % RTE_ETH_RETA_GROUP_SIZE] = want[i];
    }
    rc = rte_eth_dev_rss_reta_update(port_, conf.data(), info.reta_size);
    if (rc != 0) rb.notes.push_back("cannot program the RETA (" + errstr(rc) + "): reading the PMD's own");
    for (auto& g : conf) std::memset(g.reta, 0, sizeof g.reta);  // masks stay: read every entry
    rc = rte_eth_dev_rss_reta_query(port_, conf.data(), info.reta_size);
    if (rc == 0) {
      std::vector<std::uint16_t> got(info.reta_size);
      for (std::size_t i = 0; i < got.size(); ++i)
        got[i] = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
      rb.reta = std::move(got);
    } else {
      rb.reta_error = "rte_eth_dev_rss_reta_query: " + errstr(rc);
    }
  }

  // Key and hash functions as the NIC has them. A PMD that does not report
  // its key size gets the RSS specification's 40 bytes; the buffer is as
  // large as any size it could report, so no PMD writes past it.
  std::array<std::uint8_t, 256> key{};
  rte_eth_rss_conf rc_conf;
  std::memset(&rc_conf, 0, sizeof rc_conf);
  rc_conf.rss_key = key.data();
  const std::uint8_t key_len = info.hash_key_size != 0 ? info.hash_key_size : RssInfo::kKeyLen;
  rc_conf.rss_key_len = key_len;
  rc = rte_eth_dev_rss_hash_conf_get(port_, &rc_conf);
  if (rc == 0) {
    rb.hf = rc_conf.rss_hf;
    rb.key = std::vector<std::uint8_t>(key.begin(), key.begin() + key_len);
    if (!rss_key_.empty() && *rb.key != rss_key_)
      rb.notes.push_back("the PMD reports another RSS key than the one configured: using the reported key");
  } else {
    rb.key_error = "rte_eth_dev_rss_hash_conf_get: " + errstr(rc);
  }
  return assess_rss(rb);
}

void EthdevPort::stop() {
  if (!started_ || closed_) return;
  const int rc = rte_eth_dev_stop(port_);
  if (rc != 0) std::fprintf(stderr, "ustack: %srte_eth_dev_stop: %s\n", port_prefix(port_).c_str(), errstr(rc).c_str());
  started_ = false;
}

void EthdevPort::close() {
  if (closed_) return;
  stop();
  // A virtual device's modes live on in the kernel interface (net_af_packet
  // sets IFF_PROMISC): leave it as we found it.
  if (promisc_on_) set_promiscuous(false);
  if (allmulti_on_) set_allmulticast(false);
  const int rc = rte_eth_dev_close(port_);
  if (rc != 0) std::fprintf(stderr, "ustack: %srte_eth_dev_close: %s\n", port_prefix(port_).c_str(), errstr(rc).c_str());
  closed_ = true;
}

std::string EthdevPort::describe() const {
  std::string s = "port " + std::to_string(port_) + " (" + driver_ + "): mac " + caps_.mac.to_string() + ", mtu " +
                  std::to_string(caps_.mtu) + ", " + std::to_string(nb_queues_) + " queue pair(s), rxd " +
                  std::to_string(rx_desc_) + " txd " + std::to_string(tx_desc_) + ", rss ";
  if (rss_hf_ != 0) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(rss_hf_));
    s += hex;
  } else {
    s += "off";
  }
  std::string off;
  auto add = [&off](bool on, const char* name) {
    if (!on) return;
    if (!off.empty()) off += ' ';
    off += name;
  };
  add(caps_.rx_ipv4_cksum, "rx-ipv4-cksum");
  add(caps_.rx_l4_cksum, "rx-l4-cksum");
  add(caps_.tx_ipv4_cksum, "tx-ipv4-cksum");
  add(caps_.tx_udp_cksum, "tx-udp-cksum");
  add(caps_.tx_tcp_cksum, "tx-tcp-cksum");
  add(caps_.tso, "tso");
  add(caps_.tx_multi_seg, "tx-multi-seg");
  add(caps_.mc_filter, "mc-filter");
  s += ", offloads: " + (off.empty() ? std::string("none") : off);
  return s;
}

bool EthdevPort::set_mtu(std::uint16_t mtu, std::string& err) {
  const int rc = rte_eth_dev_set_mtu(port_, mtu);
  if (rc != 0) {
    // Some PMDs refuse any set_mtu, even to the value they already have.
    std::uint16_t cur = 0;
    if (rte_eth_dev_get_mtu(port_, &cur) != 0 || cur != mtu) {
      err = port_prefix(port_) + "rte_eth_dev_set_mtu(" + std::to_string(mtu) + "): " + errstr(rc);
      return false;
    }
  }
  caps_.mtu = mtu;
  return true;
}

bool EthdevPort::set_promiscuous(bool on) {
  const int rc = on ? rte_eth_promiscuous_enable(port_) : rte_eth_promiscuous_disable(port_);
  if (rc == 0) promisc_on_ = on;
  return rc == 0;
}

bool EthdevPort::set_allmulticast(bool on) {
  const int rc = on ? rte_eth_allmulticast_enable(port_) : rte_eth_allmulticast_disable(port_);
  if (rc == 0) allmulti_on_ = on;
  return rc == 0;
}

bool EthdevPort::set_mc_addr_list(std::span<const MacAddr> macs) {
  std::vector<rte_ether_addr> list(macs.size());
  for (std::size_t i = 0; i < macs.size(); ++i) std::memcpy(list[i].addr_bytes, macs[i].b.data(), 6);
  const int rc = rte_eth_dev_set_mc_addr_list(port_, list.empty() ? nullptr : list.data(),
                                              static_cast<std::uint32_t>(list.size()));
  return rc == 0;
}

bool EthdevPort::accept_mac(const MacAddr& mac) {
  if (mac == caps_.mac) return true;
  rte_ether_addr a;
  std::memcpy(a.addr_bytes, mac.b.data(), 6);
  if (rte_eth_dev_mac_addr_add(port_, &a, 0) == 0) return true;
  return set_promiscuous(true);
}

LinkStatus EthdevPort::link() const {
  rte_eth_link l;
  std::memset(&l, 0, sizeof l);
  LinkStatus s;
  if (rte_eth_link_get_nowait(port_, &l) != 0) return s;
  s.up = l.link_status == RTE_ETH_LINK_UP;
  s.speed_mbps = l.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : l.link_speed;
  s.full_duplex = l.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
  s.autoneg = l.link_autoneg == RTE_ETH_LINK_AUTONEG;
  return s;
}

std::optional<PortStats> EthdevPort::stats() const {
  if (closed_) return std::nullopt;
  rte_eth_stats st;
  if (rte_eth_stats_get(port_, &st) != 0) return std::nullopt;
  PortStats p;
  p.ipackets = st.ipackets;
  p.opackets = st.opackets;
  p.ibytes = st.ibytes;
  p.obytes = st.obytes;
  p.imissed = st.imissed;
  p.ierrors = st.ierrors;
  p.oerrors = st.oerrors;
  p.rx_nombuf = st.rx_nombuf;
  return p;
}

}  // namespace ustack
