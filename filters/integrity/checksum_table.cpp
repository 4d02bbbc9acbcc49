#include "checksum_table.hpp"

#include "crc32c.hpp"

#include <algorithm>

namespace integrity {

size_t ChecksumTable::bytes_for(uint64_t blocks)
{
  const uint64_t crc_bytes = blocks * sizeof(uint32_t);
  const uint64_t bit_words = (blocks + 63) / 64;
  // The bits start 8-byte aligned after the CRCs.
  return static_cast<size_t>((crc_bytes + 7) / 8 * 8 + bit_words * sizeof(uint64_t));
}

ChecksumTable::ChecksumTable(const BlockGeometry &geometry, MlockPolicy policy,
                             const std::string &what)
  : count_(geometry.block_count()), full_zero_crc_(crc32c_of_zeroes(geometry.block_size())),
    last_zero_crc_(count_ ? crc32c_of_zeroes(geometry.block(count_ - 1).length) : 0)
{
  if (count_ == 0) return;
  memory_ = std::make_unique<LockedMemory>(bytes_for(count_), policy, what);
  auto *base = static_cast<unsigned char *>(memory_->data());
  crcs_ = reinterpret_cast<uint32_t *>(base);
  bits_ = reinterpret_cast<uint64_t *>(base + (count_ * sizeof(uint32_t) + 7) / 8 * 8);
  // The mapping is zero-filled, so the bits are clear already.
  std::fill(crcs_, crcs_ + count_, full_zero_crc_);
  crcs_[count_ - 1] = last_zero_crc_;
}

bool ChecksumTable::note_mismatch(uint64_t block)
{
  const uint64_t bit = uint64_t{1} << (block % 64);
  const uint64_t before = bits_word(block).fetch_or(bit, std::memory_order_relaxed);
  if (before & bit) return false;
  reported_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ChecksumTable::forget_mismatch(uint64_t block)
{
  if (reported_.load(std::memory_order_relaxed) == 0) return;
  const uint64_t bit = uint64_t{1} << (block % 64);
  auto word = bits_word(block);
  if (!(word.load(std::memory_order_relaxed) & bit)) return;
  if (word.fetch_and(~bit, std::memory_order_relaxed) & bit)
    reported_.fetch_sub(1, std::memory_order_relaxed);
}

} // namespace integrity
