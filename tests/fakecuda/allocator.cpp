#include "allocator.hpp"

#include <iterator>

namespace fakecuda {

RegionAllocator::RegionAllocator(std::uint64_t size)
{
  if (size != 0) free_.emplace(0, size);
}

std::optional<std::uint64_t> RegionAllocator::allocate(std::uint64_t reserved, std::uint64_t usable,
                                                       BlockOwner owner)
{
  if (reserved == 0 || usable > reserved) return std::nullopt;
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < reserved) continue;
    const std::uint64_t offset = it->first;
    const std::uint64_t rest = it->second - reserved;
    free_.erase(it);
    if (rest != 0) free_.emplace(offset + reserved, rest);
    used_.emplace(offset, Block{reserved, usable, owner});
    reserved_ += reserved;
    return offset;
  }
  return std::nullopt;
}

bool RegionAllocator::release(std::uint64_t offset, BlockOwner owner)
{
  auto used = used_.find(offset);
  if (used == used_.end() || used->second.owner != owner) return false;
  const std::uint64_t size = used->second.reserved;
  used_.erase(used);
  reserved_ -= size;

  // Coalesce with the free neighbours so that freeing everything gives back
  // one range and the next allocation again starts at offset 0.
  std::uint64_t start = offset;
  std::uint64_t length = size;
  auto next = free_.lower_bound(offset);
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      length += prev->second;
      free_.erase(prev);
    }
  }
  if (next != free_.end() && offset + size == next->first) {
    length += next->second;
    free_.erase(next);
  }
  free_.emplace(start, length);
  return true;
}

bool RegionAllocator::contains(std::uint64_t offset, std::uint64_t size) const
{
  auto it = used_.upper_bound(offset);
  if (it == used_.begin()) return false;
  --it;
  if (it->second.owner != BlockOwner::MemAlloc) return false;
  const std::uint64_t end = it->first + it->second.usable;
  return offset < end && size <= end - offset;
}

} // namespace fakecuda
