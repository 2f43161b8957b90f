// DPDK ethdev backend: one port driven through any poll-mode driver (a real
// NIC on vfio-pci, or a virtual device: net_af_packet, net_tap, net_pcap,
// net_ring, net_memif).
//
// EthdevPort is the control plane for one port: configure N RX/TX queue
// pairs (one per lcore, each with its own mempool), RSS when there is more
// than one queue and the PMD offers it (symmetric key, RETA programmed and
// read back after start: rss()), offload discovery, MTU, filters, link,
// start/stop, port statistics. It is used from the main thread at
// start-up and shutdown and from the control thread (stats); every call may
// make syscalls or take locks inside DPDK.
//
// EthdevQueue is the data plane: one RX/TX queue pair of a started port as a
// Device. Its bursts forward to rte_eth_rx_burst/rte_eth_tx_burst and are
// the only calls an lcore makes on the port.
//
// Offloads: every checksum/TSO offload the PMD reports is enabled and recorded
// in DeviceCaps; what is missing the stack does in software (it asks the
// capabilities, it never guesses). Start-up errors come back as a message;
// nothing here aborts.
#pragma once

#include <rte_ethdev.h>
#include <rte_mempool.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "drivers/device.hpp"
#include "drivers/rss_info.hpp"

namespace ustack {

struct EthdevConfig {
  std::uint16_t port_id = 0;
  // One mempool per queue pair; the number of queue pairs is pools.size().
  std::vector<rte_mempool*> pools;
  std::uint16_t rx_desc = 1024;  // adjusted to the PMD's limits
  std::uint16_t tx_desc = 1024;
  std::optional<std::uint16_t> mtu;  // none: keep the port's current MTU
  bool enable_offloads = true;       // false: software checksums only (debugging)
  bool promiscuous = false;
  bool allmulticast = false;
};

struct PortStats {
  std::uint64_t ipackets = 0;
  std::uint64_t opackets = 0;
  std::uint64_t ibytes = 0;
  std::uint64_t obytes = 0;
  std::uint64_t imissed = 0;
  std::uint64_t ierrors = 0;
  std::uint64_t oerrors = 0;
  std::uint64_t rx_nombuf = 0;
};

struct LinkStatus {
  bool up = false;
  std::uint32_t speed_mbps = 0;  // 0: unknown
  bool full_duplex = false;
  bool autoneg = false;
  std::string to_string() const;
};

class EthdevPort {
 public:
  // Configures the port and sets up its queues; it is not started. On failure
  // returns nullptr and sets `err` to one line saying what failed and why.
  static std::unique_ptr<EthdevPort> open(const EthdevConfig& cfg, std::string& err);

  EthdevPort(const EthdevPort&) = delete;
  EthdevPort& operator=(const EthdevPort&) = delete;
  ~EthdevPort();  // stops and closes

  // Starts the port, then (with several queues and RSS) programs the RETA
  // and reads key, table and hash functions back into rss(). RSS problems
  // never fail the start: they leave rss() unknown, with a note saying why.
  bool start(std::string& err);
  void stop();
  // Stops (if started) and releases the port; later calls are no-ops.
  void close();

  std::uint16_t port_id() const { return port_; }
  std::uint16_t nb_queues() const { return nb_queues_; }
  const DeviceCaps& caps() const { return caps_; }
  const std::string& driver_name() const { return driver_; }
  // RSS hash functions configured (0: RSS off).
  std::uint64_t rss_hf() const { return rss_hf_; }
  // How the NIC steers packets to queues, as read back at start() (queue 0's
  // view: copy it and set `queue` per lcore). Unknown before start().
  const RssInfo& rss() const { return rss_; }
  std::uint16_t rx_desc() const { return rx_desc_; }
  std::uint16_t tx_desc() const { return tx_desc_; }
  // One line: driver, MAC, MTU, queues, descriptors, RSS and offloads.
  std::string describe() const;

  // Sets the MTU; a PMD that refuses to "change" the MTU to its current value
  // is not an error. Updates caps().mtu.
  bool set_mtu(std::uint16_t mtu, std::string& err);
  bool set_promiscuous(bool on);
  bool set_allmulticast(bool on);
  // Exact multicast MAC filter; false when the PMD cannot program one.
  bool set_mc_addr_list(std::span<const MacAddr> macs);
  // Accepts frames for `mac` besides the port's own address: a secondary MAC
  // filter when the PMD has one, else promiscuous mode. False when neither works.
  bool accept_mac(const MacAddr& mac);

  LinkStatus link() const;
  std::optional<PortStats> stats() const;

 private:
  EthdevPort(std::uint16_t port, std::uint16_t nb_queues) : port_(port), nb_queues_(nb_queues) {}
  bool configure(const EthdevConfig& cfg, std::string& err);
  RssInfo setup_rss();

  std::uint16_t port_;
  std::uint16_t nb_queues_;
  std::uint16_t rx_desc_ = 0;
  std::uint16_t tx_desc_ = 0;
  std::uint64_t rss_hf_ = 0;
  std::vector<std::uint8_t> rss_key_;       // the key configured (empty: the PMD's)
  std::vector<std::string> rss_notes_;      // degradations at configure
  RssInfo rss_;
  DeviceCaps caps_;
  std::string driver_;
  bool started_ = false;
  bool closed_ = false;
  bool promisc_on_ = false;   // enabled by us: disabled again at close
  bool allmulti_on_ = false;
};

// One RX/TX queue pair of a started port. Not thread-safe: owned by one lcore.
class EthdevQueue final : public Device {
 public:
  EthdevQueue(EthdevPort& port, std::uint16_t queue)
      : port_(port), port_id_(port.port_id()), queue_(queue), caps_(port.caps()) {}

  const DeviceCaps& caps() const override { return caps_; }

  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs /*now*/) override {
    return rte_eth_rx_burst(port_id_, queue_, pkts.data(), static_cast<std::uint16_t>(pkts.size()));
  }
  std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs /*now*/) override {
    return rte_eth_tx_burst(port_id_, queue_, pkts.data(), static_cast<std::uint16_t>(pkts.size()));
  }

  // Port-wide filters: control plane, not for the poll loop.
  bool set_mc_addr_list(std::span<const MacAddr> macs) override { return port_.set_mc_addr_list(macs); }
  bool set_allmulticast(bool on) override { return port_.set_allmulticast(on); }

  std::uint16_t queue_id() const { return queue_; }

 private:
  EthdevPort& port_;
  std::uint16_t port_id_;
  std::uint16_t queue_;
  DeviceCaps caps_;
};

}  // namespace ustack
