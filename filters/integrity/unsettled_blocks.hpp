// Blocks whose contents nobody knows: a write or zero to them failed,
// which NBD allows to leave old data, new data or a mix, and reading them
// back to learn which failed too.  Their checksum says nothing, so a
// mismatch in one is not corruption: the next read takes whatever the
// backend then holds, as the read-back would have.
//
// Fixed capacity, made at start: nothing here allocates while serving
// (the filter sits in a swap device's I/O path).  It is rarely used at
// all: a transient GPU error, then a failed read right after it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace integrity {

class UnsettledBlocks {
public:
  static constexpr size_t capacity = 1024;

  // False when full: the block then keeps its old checksum, and reads of
  // it fail as corrupt until it is written whole, zeroed or trimmed.
  bool add(uint64_t block);
  void remove(uint64_t block);
  bool contains(uint64_t block) const;
  // Any in [first, last]; cheap when there are none.
  bool any_in(uint64_t first, uint64_t last) const;
  bool empty() const { return count_.load(std::memory_order_acquire) == 0; }

private:
  mutable std::mutex mutex_;
  std::array<uint64_t, capacity> blocks_{};
  size_t size_ = 0; // guarded by mutex_
  std::atomic<size_t> count_{0};
};

} // namespace integrity
