#!/usr/bin/python3
# Regenerates the libFuzzer seed corpora in this directory (one folder per
# target) with scapy: a few small, valid inputs per target. Run with Debian's
# python3, which has scapy: /usr/bin/python3 test/fuzz/corpus/make_seeds.py
#
# fuzz_stack inputs are a configuration byte followed by records
# [step][len_hi][len_lo][frame]; see test/fuzz/fuzz_stack.cpp.
import struct
import os
from scapy.all import ARP, Dot1Q, Ether, ICMP, IP, IPOption_EOL, IPOption_RR, IPOption_Router_Alert, Raw, TCP, UDP

base = os.path.dirname(os.path.abspath(__file__))
def w(target, name, b):
    d = os.path.join(base, target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(bytes(b))

US_MAC="02:00:00:00:00:01"; PEER_MAC="02:00:00:00:00:02"
US="192.0.2.1"; PEER="192.0.2.2"
arp_req = ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)
arp_rep = ARP(op=2, hwsrc=PEER_MAC, psrc=PEER, hwdst=US_MAC, pdst=US)
echo = IP(src=PEER, dst=US, id=0x1c46, flags="DF")/ICMP(type=8, id=0x1234, seq=1)/b"ustack!!"
udp = IP(src=PEER, dst=US, id=7)/UDP(sport=5353, dport=9)/b"hello world"
tcp = IP(src=PEER, dst=US)/TCP(sport=40000, dport=80, flags="S")
frag = IP(src="10.0.0.1", dst="10.0.0.2", id=0xbeef, flags="MF", frag=185, tos=0xb8, proto=17)/Raw(b"\0"*8)
ra = IP(src=PEER, dst="224.0.0.22", ttl=1, tos=0xc0, proto=2, options=[IPOption_Router_Alert()])/Raw(bytes.fromhex("2200f9020000000104000000e00000fb"))
rr = IP(src=PEER, dst=US, proto=17, options=[IPOption_RR(routers=["10.0.0.%d"%i for i in range(1,10)]), IPOption_EOL()])/Raw(bytes(range(4)))

# ethernet
w("fuzz_ethernet", "ipv4_untagged", Ether(dst=US_MAC, src=PEER_MAC)/echo)
w("fuzz_ethernet", "arp_vlan", Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER_MAC)/Dot1Q(prio=5, vlan=100)/arp_req)
w("fuzz_ethernet", "qinq", Ether(dst=US_MAC, src=PEER_MAC, type=0x88a8)/Raw(b"\x00\x64\x81\x00\x00\x0a\x08\x00"))
w("fuzz_ethernet", "header_only", bytes(Ether(dst=US_MAC, src=PEER_MAC, type=0x0800))[:14])
# arp
w("fuzz_arp", "request", arp_req)
w("fuzz_arp", "reply", arp_rep)
w("fuzz_arp", "reply_padded", bytes(arp_rep) + b"\0"*18)
w("fuzz_arp", "gratuitous", ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=PEER))
# ipv4
w("fuzz_ipv4", "echo", echo)
w("fuzz_ipv4", "udp", udp)
w("fuzz_ipv4", "fragment_padded", bytes(frag) + b"\xa5"*18)
w("fuzz_ipv4", "router_alert", ra)
w("fuzz_ipv4", "record_route", rr)
# icmp
w("fuzz_icmp", "echo_request", ICMP(type=8, id=0x1234, seq=1)/b"ustack!!")
w("fuzz_icmp", "echo_reply_odd", ICMP(type=0, id=0xbeef, seq=0xfffe)/b"abc")
q = bytes(udp)[:28]
w("fuzz_icmp", "port_unreachable", ICMP(type=3, code=3)/Raw(q))
w("fuzz_icmp", "frag_needed", ICMP(type=3, code=4, nexthopmtu=1400)/Raw(q))
w("fuzz_icmp", "time_exceeded", ICMP(type=11, code=0)/Raw(bytes(rr)[:68]))

# tcp: the TCP part of segments from PEER to US (fuzz_tcp verifies checksums
# with those addresses)
def t(name, tcp, payload=b""):
    w("fuzz_tcp", name, bytes(IP(bytes(IP(src=PEER, dst=US)/tcp/payload))[TCP]))
t("syn_linux", TCP(sport=40000, dport=80, seq=0xfffffff0, flags="S", window=64240,
    options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (2864434397, 0)), ("NOP", None), ("WScale", 7)]))
t("data_ts", TCP(sport=40000, dport=80, seq=0xfffffffd, ack=0x12345679, flags="PA", window=502,
    options=[("NOP", None), ("NOP", None), ("Timestamp", (2864434500, 1000))]), b"GET / HTTP/1.0\r\n\r\n")
t("sack3_ts", TCP(sport=40000, dport=80, seq=1, ack=1000, flags="A", window=509,
    options=[("NOP", None), ("NOP", None), ("Timestamp", (1102, 2864434502)), ("NOP", None), ("NOP", None),
             ("SAck", (0xfffffff0, 0x10, 4000, 5000, 2000, 3000))]))
t("sack4", TCP(sport=40000, dport=80, seq=1, ack=1000, flags="A", window=509,
    options=[("NOP", None), ("NOP", None), ("SAck", (7000, 8000, 0xfffffff0, 0x10, 4000, 5000, 2000, 3000))]))
t("rst", TCP(sport=40000, dport=80, seq=0x12345679, flags="R", window=0))
t("fin_ack_urg", TCP(sport=40000, dport=80, seq=0x11, ack=0x12345679, flags="FAUEC", urgptr=1), b"x")
t("odd_options", TCP(sport=1, dport=2, flags="S", dataofs=9),
  bytes.fromhex("fd06020401010103030f0402") + b"\0" * 4)  # unknown kind, NOPs, wscale 15, sackOK, EOL
t("bad_option_len", TCP(sport=1, dport=2, flags="A", dataofs=6), bytes.fromhex("fd010101") + b"hi")

# udp: the UDP part of datagrams from PEER to US (fuzz_udp verifies checksums
# with those addresses)
def u(name, dgram, trailing=b""):
    w("fuzz_udp", name, bytes(IP(bytes(IP(src=PEER, dst=US)/dgram))[UDP]) + trailing)
u("dns_query", UDP(sport=40000, dport=53)/bytes.fromhex("123401000001000000000000076578616d706c6503636f6d0000010001"))
u("empty", UDP(sport=5353, dport=9))
u("odd_payload", UDP(sport=5353, dport=9)/b"hello world")
u("zero_checksum", UDP(sport=1234, dport=5678, chksum=0)/b"no checksum")
u("all_ones", UDP(sport=7, dport=7)/bytes.fromhex("7bc8"))  # the sum is zero: sent as 0xffff
u("trailing", UDP(sport=5353, dport=9)/b"hell", b" world")  # bytes after the UDP length
u("bad_length", UDP(sport=5353, dport=9, len=30)/b"hello world")
# The feed header (src/services/feed.hpp) as the input itself: fuzz_udp also
# reads the input as a multicast payload.
w("fuzz_udp", "feed_header", struct.pack("!IBBHQQ", 0x55535446, 1, 0, 24, 5, 1700000000123456789) + b"pattern!")

# stack: config byte, then [step][len_hi][len_lo][frame] records
def rec(step, frame):
    b = bytes(frame)
    return bytes([step, len(b) >> 8, len(b) & 0xff]) + b
E = lambda p, dst=US_MAC: Ether(dst=dst, src=PEER_MAC)/p
Ev = lambda p, dst=US_MAC: Ether(dst=dst, src=PEER_MAC)/Dot1Q(vlan=100)/p
# A peer resolves us, pings us, sends UDP to a closed port, TCP with no handler.
w("fuzz_stack", "arp_then_ping", bytes([0x40]) + rec(1, E(arp_req, "ff:ff:ff:ff:ff:ff")) + rec(10, E(echo))
  + rec(10, E(udp)) + rec(20, E(tcp)))
# We ping the peer: ARP request goes out, the peer replies, the queued ping leaves.
w("fuzz_stack", "we_ping_peer", bytes([0x00]) + rec(0x40 | 5, b"\0\0") + rec(12, E(arp_rep))
  + rec(12, E(IP(src=PEER, dst=US)/ICMP(type=0, id=1, seq=2)/b"fuzz")))
# VLAN-tagged, NIC-checked checksums (GOOD), broadcast ping answered.
w("fuzz_stack", "vlan_offloads", bytes([0x01 | 0x02 | (2 << 2) | 0x10 | 0x20])
  + rec(1, Ev(arp_req, "ff:ff:ff:ff:ff:ff")) + rec(3, Ev(echo))
  + rec(3, Ev(IP(src=PEER, dst="192.0.2.255")/ICMP(type=8, id=9, seq=9)/b"bcast", "ff:ff:ff:ff:ff:ff")))
# Gateway traffic and an ICMP error about something we sent.
w("fuzz_stack", "chained", bytes([0x80]) + rec(1, E(echo)))
w("fuzz_stack", "gateway_error", bytes([0x40]) + rec(0x80 | 2, b"\0" * 7)
  + rec(2, E(ARP(op=2, hwsrc="02:00:00:00:00:fe", psrc="192.0.2.254", hwdst=US_MAC, pdst=US)))
  + rec(30, E(IP(src="192.0.2.254", dst=US)/ICMP(type=3, code=1)/Raw(bytes(IP(src=US, dst="198.51.100.7")/UDP(sport=4000, dport=53)/b"query")[:28]))))
# Malformed frames of every layer.
w("fuzz_stack", "malformed", bytes([0x00]) + rec(1, b"\x02\x00\x00")
  + rec(1, Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER_MAC, type=0x0806)/Raw(bytes(arp_req)[:20]))
  + rec(1, E(IP(ihl=4, src=PEER, dst=US)))
  + rec(1, E(frag))
  + rec(1, E(IP(src=PEER, dst=US)/ICMP(type=8, chksum=0x1234))))

# igmp: IGMP messages (the IP payload) of every version and shape
from scapy.contrib.igmp import IGMP
from scapy.contrib.igmpv3 import IGMPv3, IGMPv3gr, IGMPv3mq, IGMPv3mr
w("fuzz_igmp", "v1_query", IGMP(type=0x11, mrcode=0, gaddr="0.0.0.0"))
w("fuzz_igmp", "v2_group_query", IGMP(type=0x11, mrcode=10, gaddr="239.1.2.3"))
w("fuzz_igmp", "v2_report", IGMP(type=0x16, mrcode=0, gaddr="239.1.2.3"))
w("fuzz_igmp", "v2_leave_long", IGMP(type=0x17, mrcode=0, gaddr="239.1.2.3")/b"\x01\x02\x03\x04")
w("fuzz_igmp", "v3_general_query", IGMPv3(type=0x11, mrcode=100)/IGMPv3mq(gaddr="0.0.0.0", qrv=2, qqic=125))
w("fuzz_igmp", "v3_source_query", IGMPv3(type=0x11, mrcode=0xa3)/IGMPv3mq(gaddr="232.1.1.1", s=1, qrv=3, qqic=0x8f,
  srcaddrs=["10.0.0.1", "10.0.0.9"]))
w("fuzz_igmp", "v3_report", IGMPv3(type=0x22)/IGMPv3mr(records=[IGMPv3gr(rtype=4, maddr="239.1.2.3"),
  IGMPv3gr(rtype=1, maddr="232.1.1.1", srcaddrs=["10.0.0.1", "10.0.0.9"]),
  IGMPv3gr(rtype=6, maddr="232.1.1.2", srcaddrs=["192.0.2.7"])]))
w("fuzz_igmp", "v3_report_aux", IGMPv3(type=0x22)/IGMPv3mr(numgrp=2)/Raw(bytes(IGMPv3gr(rtype=5, auxdlen=1,
  maddr="239.9.9.9", srcaddrs=["10.1.1.1"])) + b"\xde\xad\xbe\xef" + bytes(IGMPv3gr(rtype=7, maddr="239.9.9.10"))))
# tcp_conn: setup bytes, then ops (see test/fuzz/fuzz_tcp_conn.cpp). No
# scapy here: the harness builds the segments, the input only steers it.
def seg(flow, flags, seq=0, ack=0, wnd=0xff, opts=0x01, arg=0, n=0, far=False):
    return bytes([(flow << 5) | (0x10 if far else 0), flags, (seq >> 8) & 0xff, seq & 0xff,
                  (ack >> 8) & 0xff, ack & 0xff, wnd, opts, arg, n])
def op(code, *args, flow=0):
    return bytes([(flow << 5) | code, *args])
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
TIME, SEND, READ, SHUT, CLOSE, ABORT, OPTS, NEWSYN, LISTEN = 2, 3, 4, 5, 6, 7, 8, 9, 10
# ESTABLISHED with timestamps, window scaling and SACK: data both ways, a
# loss repaired by SACK, a zero window, an orderly close into TIME-WAIT.
w("fuzz_tcp_conn", "established_exchange", bytes([0x70 | 4, 0x00])
  + op(SEND, 20) + op(TIME, 24) + seg(0, ACK) + seg(0, ACK | PSH, n=100)
  + seg(0, ACK | PSH, seq=1200, n=100) + op(READ, 20) + seg(0, ACK | PSH, n=200)
  + seg(0, ACK, wnd=0) + op(SEND, 40) + op(TIME, 28) + op(TIME, 29) + seg(0, ACK)
  + op(SHUT) + seg(0, ACK | FIN) + op(TIME, 36))
# Active open (flow 4) answered by a SYN-ACK with options, then RST probes
# in and out of the window and an exact one.
w("fuzz_tcp_conn", "active_open_resets", bytes([0x70 | 2, 0x10])
  + seg(4, SYN | ACK, seq=0xffff, opts=0x71, arg=180) + op(SEND, 5, flow=4)
  + seg(4, RST, seq=100) + seg(4, RST, seq=0x7fff, far=True) + seg(4, SYN, seq=10)
  + seg(4, ACK | PSH, ack=0x0100, n=3) + op(TIME, 30) + seg(4, RST))
# A listener with a backlog of 2: the third SYN gets a cookie, its ACK
# opens a connection; simultaneous close on another; TIME-WAIT reuse.
w("fuzz_tcp_conn", "listen_cookies", bytes([0x10 | 1, 0x84])
  + op(NEWSYN, 0, flow=0) + op(NEWSYN, 0x10, flow=1) + op(NEWSYN, 0x50, flow=2)
  + seg(2, ACK) + seg(0, ACK) + op(SHUT, flow=0) + seg(0, ACK | FIN, ack=0xffff)
  + seg(0, ACK) + op(NEWSYN, 0x90, flow=0) + op(TIME, 33) + op(LISTEN) + op(TIME, 38))
