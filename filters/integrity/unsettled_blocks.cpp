#include "unsettled_blocks.hpp"

#include <algorithm>

namespace integrity {

bool UnsettledBlocks::add(uint64_t block)
{
  std::lock_guard lock(mutex_);
  const auto end = blocks_.begin() + static_cast<long>(size_);
  if (std::find(blocks_.begin(), end, block) != end) return true;
  if (size_ == capacity) return false;
  blocks_[size_++] = block;
  count_.store(size_, std::memory_order_release);
  return true;
}

void UnsettledBlocks::remove(uint64_t block)
{
  if (empty()) return;
  std::lock_guard lock(mutex_);
  const auto end = blocks_.begin() + static_cast<long>(size_);
  const auto it = std::find(blocks_.begin(), end, block);
  if (it == end) return;
  *it = blocks_[--size_];
  count_.store(size_, std::memory_order_release);
}

bool UnsettledBlocks::contains(uint64_t block) const
{
  if (empty()) return false;
  std::lock_guard lock(mutex_);
  const auto end = blocks_.begin() + static_cast<long>(size_);
  return std::find(blocks_.begin(), end, block) != end;
}

bool UnsettledBlocks::any_in(uint64_t first, uint64_t last) const
{
  if (empty()) return false;
  std::lock_guard lock(mutex_);
  const auto end = blocks_.begin() + static_cast<long>(size_);
  return std::any_of(blocks_.begin(), end, [&](uint64_t b) { return b >= first && b <= last; });
}

} // namespace integrity
