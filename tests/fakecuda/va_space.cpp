#include "va_space.hpp"

#include <algorithm>
#include <iterator>

namespace fakecuda {

std::optional<CUdeviceptr> VaSpace::reserve(std::uint64_t size, std::uint64_t alignment)
{
  if (size == 0 || size > size_ || alignment == 0 || (alignment & (alignment - 1)) != 0)
    return std::nullopt;
  const std::uint64_t end = base_ + size_; // no overflow: the window is fixed and low
  auto align_up = [alignment](std::uint64_t x) -> std::optional<std::uint64_t> {
    if (x > UINT64_MAX - (alignment - 1)) return std::nullopt;
    return (x + alignment - 1) & ~(alignment - 1);
  };
  // First fit: try the window start, then the end of each reservation.
  std::uint64_t candidate = base_;
  for (auto it = reservations_.begin();; ++it) {
    const std::uint64_t gap_end = it == reservations_.end() ? end : it->first;
    if (auto start = align_up(candidate); start && *start <= gap_end && gap_end - *start >= size) {
      reservations_.emplace(*start, size);
      return *start;
    }
    if (it == reservations_.end()) return std::nullopt;
    candidate = it->first + it->second;
  }
}

bool VaSpace::in_reservation(CUdeviceptr p) const
{
  auto r = reservations_.upper_bound(p);
  if (r == reservations_.begin()) return false;
  --r;
  return p - r->first < r->second;
}

const char *VaSpace::unreserve(CUdeviceptr ptr, std::uint64_t size, std::size_t &mappings_inside)
{
  mappings_inside = 0;
  auto it = reservations_.find(ptr);
  if (it == reservations_.end()) return "not the start of a reservation";
  if (it->second != size) return "the size differs from the reservation's";
  for (auto m = mappings_.lower_bound(ptr); m != mappings_.end() && m->first - ptr < size; ++m)
    ++mappings_inside;
  if (mappings_inside != 0) return "mappings remain inside the reservation (cuMemUnmap them first)";
  reservations_.erase(it);
  return nullptr;
}

const char *VaSpace::check_new_mapping(CUdeviceptr ptr, std::uint64_t size) const
{
  if (size == 0 || size > UINT64_MAX - ptr) return "empty or wrapping range";
  auto r = reservations_.upper_bound(ptr);
  if (r == reservations_.begin()) return "not inside a reservation";
  --r;
  if (ptr - r->first >= r->second || size > r->second - (ptr - r->first))
    return "not inside one reservation";
  // Overlap: the last mapping starting below the end must end at or before ptr.
  auto m = mappings_.lower_bound(ptr + size);
  if (m != mappings_.begin()) {
    --m;
    if (m->first + m->second.size > ptr) return "overlaps an existing mapping";
  }
  return nullptr;
}

const char *VaSpace::whole_mappings(CUdeviceptr ptr, std::uint64_t size,
                                    std::vector<CUdeviceptr> &starts) const
{
  starts.clear();
  if (size == 0 || size > UINT64_MAX - ptr) return "empty or wrapping range";
  const CUdeviceptr end = ptr + size;
  auto it = mappings_.find(ptr);
  if (it == mappings_.end())
    return "does not start at a mapping (a range must cover whole mappings)";
  CUdeviceptr at = ptr;
  while (at < end) {
    if (it == mappings_.end() || it->first != at) return "has a gap that is not mapped";
    if (it->second.size > end - at)
      return "ends inside a mapping (a range must cover whole mappings)";
    starts.push_back(at);
    at += it->second.size;
    ++it;
  }
  return nullptr;
}

Mapping VaSpace::remove_mapping(CUdeviceptr start)
{
  auto it = mappings_.find(start);
  Mapping m = it->second;
  mappings_.erase(it);
  return m;
}

} // namespace fakecuda
