// One CRC32C per block of the export, in locked host RAM, plus one bit
// per block that remembers whether a mismatch in it was already logged.
//
// Not synchronised by itself: the caller holds the block's stripe lock
// (shared to read an entry, exclusive to change it).  The "reported"
// bits are atomic because they are set under a shared lock.
#pragma once

#include "block_geometry.hpp"
#include "locked_memory.hpp"
#include "settings.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace integrity {

class ChecksumTable {
public:
  // Every block starts as if it held zeroes.  Throws AllocationError.
  ChecksumTable(const BlockGeometry &geometry, MlockPolicy policy, const std::string &what);

  uint32_t get(uint64_t block) const { return crcs_[block]; }
  void set(uint64_t block, uint32_t crc) { crcs_[block] = crc; }
  // The CRC32C of the block's length in zero bytes.
  uint32_t zero_crc(uint64_t block) const
  {
    return block + 1 == count_ ? last_zero_crc_ : full_zero_crc_;
  }

  // True the first time a mismatch in `block` is noted since it was last
  // written: that is when it is logged.
  bool note_mismatch(uint64_t block);
  // The block was written: a later mismatch in it is news again.
  void forget_mismatch(uint64_t block);

  uint64_t blocks() const { return count_; }
  // Host memory held: the CRCs and the bits.
  size_t bytes() const { return memory_ ? memory_->size() : 0; }
  bool locked() const { return !memory_ || memory_->locked(); }
  std::string not_locked_reason() const { return memory_ ? memory_->not_locked_reason() : ""; }

  // Bytes of table for an export of `blocks` blocks.
  static size_t bytes_for(uint64_t blocks);

private:
  std::atomic_ref<uint64_t> bits_word(uint64_t block) const
  {
    return std::atomic_ref<uint64_t>(bits_[block / 64]);
  }

  uint64_t count_;
  uint32_t full_zero_crc_;
  uint32_t last_zero_crc_;
  std::unique_ptr<LockedMemory> memory_;
  uint32_t *crcs_ = nullptr;
  uint64_t *bits_ = nullptr;
  // How many bits are set, so that writes skip the bitmap while none is.
  std::atomic<uint64_t> reported_{0};
};

} // namespace integrity
