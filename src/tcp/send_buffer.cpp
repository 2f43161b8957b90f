#include "tcp/send_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace ustack::tcp {

SendBuffer::SendBuffer(rte_mempool* pool, std::size_t max_bytes, std::size_t max_segments, SeqNum snd_una)
    : pool_(pool),
      slots_(max_segments == 0 ? 1 : max_segments),
      max_bytes_(std::min(max_bytes, kMaxBytesLimit)),
      snd_una_(snd_una) {}

void SendBuffer::clear() {
  for (std::size_t i = 0; i < n_; ++i) {
    Slot& s = at(i);
    rte_pktmbuf_free(s.m);
    s.m = nullptr;
  }
  head_ = 0;
  n_ = 0;
  bytes_ = 0;
  tail_appendable_ = false;
}

void SendBuffer::push(rte_mbuf* m) {
  Slot& s = at(n_);
  s.m = m;
  s.seq = end();
  ++n_;
  bytes_ += m->data_len;
}

std::size_t SendBuffer::write_copy(Bytes data) {
  const std::size_t want = std::min(data.size(), free_space());
  std::size_t done = 0;

  // The tail's tailroom first. Appending never touches bytes an earlier
  // segment() references: an indirect mbuf keeps its own data_len, so bytes
  // added after it was made are outside its view. Only mbufs this function
  // allocated are appended to; a zero-copy mbuf may share its buffer.
  if (n_ != 0 && tail_appendable_ && want != 0) {
    rte_mbuf* t = at(n_ - 1).m;
    const std::size_t k = std::min<std::size_t>(rte_pktmbuf_tailroom(t), want);
    if (k != 0) {
      std::memcpy(rte_pktmbuf_mtod_offset(t, std::uint8_t*, t->data_len), data.data(), k);
      t->data_len = static_cast<std::uint16_t>(t->data_len + k);
      t->pkt_len += static_cast<std::uint32_t>(k);
      bytes_ += k;
      done = k;
    }
  }

  while (done < want && n_ < slots_.size()) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) break;  // pool exhausted: backpressure
    // Headers go into the header mbuf segment() allocates, so the whole data
    // room holds payload.
    m->data_off = 0;
    const std::size_t k = std::min<std::size_t>(m->buf_len, want - done);
    if (k == 0) {
      rte_pktmbuf_free(m);
      break;
    }
    std::memcpy(rte_pktmbuf_mtod(m, std::uint8_t*), data.data() + done, k);
    m->data_len = static_cast<std::uint16_t>(k);
    m->pkt_len = static_cast<std::uint32_t>(k);
    push(m);
    tail_appendable_ = true;
    done += k;
  }
  return done;
}

bool SendBuffer::write_zero_copy(Packet& p) {
  if (!p) return false;
  std::size_t len = 0;
  std::size_t segs = 0;
  for (const rte_mbuf* m = p.get(); m != nullptr; m = m->next) {
    len += m->data_len;
    if (m->data_len != 0) ++segs;
  }
  if (len > free_space() || segs > slots_.size() - n_) return false;

  // Unlink the chain: one slot per non-empty segment.
  rte_mbuf* m = p.release();
  while (m != nullptr) {
    rte_mbuf* next = m->next;
    m->next = nullptr;
    m->nb_segs = 1;
    m->pkt_len = m->data_len;
    if (m->data_len != 0) {
      push(m);
      tail_appendable_ = false;
    } else {
      rte_pktmbuf_free_seg(m);
    }
    m = next;
  }
  return true;
}

std::size_t SendBuffer::ack(SeqNum ack) {
  // Acceptable: snd_una <= ack <= end. Anything else is not ours to act on.
  if (!seq_in_window(ack, snd_una_, static_cast<std::uint32_t>(bytes_) + 1)) return 0;
  const std::uint32_t acked = ack.raw() - snd_una_.raw();
  std::uint32_t left = acked;
  while (left != 0) {
    Slot& s = at(0);
    const std::uint32_t len = s.m->data_len;
    if (len <= left) {
      // Frees our reference only: segments still in flight hold their own.
      rte_pktmbuf_free(s.m);
      s.m = nullptr;
      head_ = (head_ + 1) % slots_.size();
      --n_;
      left -= len;
    } else {
      // Moves this slot's view of the buffer; indirect mbufs made earlier
      // copied data_off/data_len and are unaffected.
      rte_pktmbuf_adj(s.m, static_cast<std::uint16_t>(left));
      s.seq += left;
      left = 0;
    }
  }
  bytes_ -= acked;
  snd_una_ = ack;
  if (n_ == 0) {
    head_ = 0;
    tail_appendable_ = false;
  }
  return acked;
}

std::size_t SendBuffer::find(SeqNum seq) const {
  // Offsets from snd_una grow along the ring, so this is an ordinary binary
  // search for the last slot starting at or before seq.
  const std::uint32_t target = seq.raw() - snd_una_.raw();
  std::size_t lo = 0;
  std::size_t hi = n_;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (at(mid).seq.raw() - snd_una_.raw() <= target)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

bool SendBuffer::range(SeqNum seq, std::uint32_t max_len, std::uint32_t& len) const {
  const std::uint32_t off = seq.raw() - snd_una_.raw();
  if (off > bytes_) return false;
  len = std::min(max_len, static_cast<std::uint32_t>(bytes_ - off));
  return true;
}

Packet SendBuffer::segment(SeqNum seq, std::uint32_t max_len, rte_mempool* hdr_pool) const {
  std::uint32_t len = 0;
  if (!range(seq, max_len, len)) return {};
  Packet out = Packet::alloc(hdr_pool);
  if (!out || rte_pktmbuf_headroom(out.get()) < kMaxHeaderBytes) return {};
  if (len == 0) return out;

  rte_mbuf* h = out.get();
  rte_mbuf* last = h;
  std::size_t i = find(seq);
  std::uint32_t off = seq.raw() - at(i).seq.raw();
  std::uint32_t left = len;
  while (left != 0 && h->nb_segs < RTE_MBUF_MAX_NB_SEGS) {
    const Slot& s = at(i);
    const std::uint32_t take = std::min<std::uint32_t>(left, s.m->data_len - off);
    rte_mbuf* mi = rte_pktmbuf_alloc(hdr_pool);
    if (mi == nullptr) return {};  // `out` frees the partial chain, detaching each indirect
    // mi now references s.m's buffer (refcount taken) with s.m's view; narrow it.
    rte_pktmbuf_attach(mi, s.m);
    mi->data_off = static_cast<std::uint16_t>(mi->data_off + off);
    mi->data_len = static_cast<std::uint16_t>(take);
    mi->pkt_len = take;
    last->next = mi;
    last = mi;
    ++h->nb_segs;
    h->pkt_len += take;
    left -= take;
    off = 0;
    ++i;
  }
  return out;
}

Packet SendBuffer::segment_copy(SeqNum seq, std::uint32_t max_len, rte_mempool* pool) const {
  std::uint32_t len = 0;
  if (!range(seq, max_len, len)) return {};
  Packet out = Packet::alloc(pool);
  if (!out || rte_pktmbuf_headroom(out.get()) < kMaxHeaderBytes) return {};
  len = std::min<std::uint32_t>(len, rte_pktmbuf_tailroom(out.get()));
  if (len == 0) return out;

  MutBytes dst = out.append(len);
  std::size_t i = find(seq);
  std::uint32_t off = seq.raw() - at(i).seq.raw();
  std::size_t done = 0;
  while (done < len) {
    const rte_mbuf* m = at(i).m;
    const std::size_t take = std::min<std::size_t>(len - done, m->data_len - off);
    std::memcpy(dst.data() + done, rte_pktmbuf_mtod_offset(m, const std::uint8_t*, off), take);
    done += take;
    off = 0;
    ++i;
  }
  return out;
}

}  // namespace ustack::tcp
