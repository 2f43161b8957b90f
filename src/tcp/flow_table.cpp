// Flow table: see flow_table.hpp for the layout and the hash.
#include "tcp/flow_table.hpp"

#include <algorithm>
#include <bit>

namespace ustack::tcp {

TupleMap::TupleMap(std::uint32_t capacity, const Secret& key)
    : key_(key), capacity_(std::clamp<std::uint32_t>(capacity, 1, kMaxCapacity)) {
  slots_.resize(std::bit_ceil(std::size_t{capacity_} * 2));
  mask_ = static_cast<std::uint32_t>(slots_.size() - 1);
}

InsertResult TupleMap::insert(const FourTuple& k, std::uint32_t value) {
  if (value == kNoValue) return InsertResult::invalid;
  const std::uint32_t h = hash_of(k);
  std::uint32_t s = h & mask_;
  for (;; s = (s + 1) & mask_) {
    const Slot& slot = slots_[s];
    if (slot.value == kNoValue) break;
    if (slot.hash == h && slot.key == k) return InsertResult::exists;
  }
  // Checked after the lookup so a duplicate reports `exists` even when full.
  if (size_ == capacity_) return InsertResult::full;
  slots_[s] = Slot{k, value, h};
  ++size_;
  return InsertResult::ok;
}

bool TupleMap::erase(const FourTuple& k) {
  const std::uint32_t h = hash_of(k);
  std::uint32_t hole = h & mask_;
  for (;; hole = (hole + 1) & mask_) {
    const Slot& slot = slots_[hole];
    if (slot.value == kNoValue) return false;
    if (slot.hash == h && slot.key == k) break;
  }
  // Backward-shift deletion: walk the rest of the probe run and pull each
  // entry into the hole unless its home slot lies cyclically in (hole, j],
  // where it would then be unreachable from its home. No tombstones, so
  // lookups never slow down with churn.
  for (std::uint32_t j = (hole + 1) & mask_; slots_[j].value != kNoValue; j = (j + 1) & mask_) {
    const std::uint32_t home = slots_[j].hash & mask_;
    const bool home_in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_in_range) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{};
  --size_;
  return true;
}

}  // namespace ustack::tcp
