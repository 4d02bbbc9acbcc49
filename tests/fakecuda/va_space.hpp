// The virtual address space of cuMemAddressReserve / cuMemMap: reservations
// (first fit in a fixed window, bookkeeping only) and the mappings of
// physical allocations inside them, with the access cuMemSetAccess granted.
// Pure bookkeeping: no memory, no locks, no messages. Functions that can
// refuse return nullptr on success or a static description of what is
// wrong, which the caller puts into its message.
#pragma once

#include "cuda_abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace fakecuda {

using VmmHandle = std::uint64_t; // CUmemGenericAllocationHandle

struct Mapping {
  std::uint64_t size;
  VmmHandle handle;
  std::uint64_t handle_offset; // cuMemMap's offset into the physical allocation
  int device;                  // where the physical memory is
  std::uint64_t region_offset; // offset of the mapping's byte 0 in that GPU's region
  std::uint64_t readable = 0;  // bit d: GPU d may read (cuMemSetAccess)
  std::uint64_t writable = 0;  // bit d: GPU d may write
};

class VaSpace {
public:
  // The window [base, base + size) that reservations are taken from.
  VaSpace(std::uint64_t base, std::uint64_t size) : base_(base), size_(size) {}

  bool in_window(CUdeviceptr p) const { return p >= base_ && p - base_ < size_; }
  bool in_reservation(CUdeviceptr p) const;

  // Lowest `alignment`-aligned free range of `size` bytes (alignment a
  // power of two). nullopt if the window has no room.
  std::optional<CUdeviceptr> reserve(std::uint64_t size, std::uint64_t alignment);

  // Frees the reservation that is exactly [ptr, ptr + size). Refused if
  // mappings remain inside; `mappings_inside` says how many.
  const char *unreserve(CUdeviceptr ptr, std::uint64_t size, std::size_t &mappings_inside);

  // Whether a new mapping may cover [ptr, ptr + size): inside one
  // reservation, overlapping no mapping.
  const char *check_new_mapping(CUdeviceptr ptr, std::uint64_t size) const;
  void add_mapping(CUdeviceptr ptr, const Mapping &m) { mappings_.emplace(ptr, m); }

  // The starts of the mappings that tile [ptr, ptr + size) exactly: whole
  // mappings, back to back, no gap (cuMemUnmap, cuMemSetAccess).
  const char *whole_mappings(CUdeviceptr ptr, std::uint64_t size,
                             std::vector<CUdeviceptr> &starts) const;
  Mapping &mapping_at(CUdeviceptr start) { return mappings_.at(start); }
  Mapping remove_mapping(CUdeviceptr start);

  // Calls f(const Mapping& m, std::uint64_t offset_in_mapping,
  // std::uint64_t length, CUdeviceptr va) for consecutive pieces of
  // [ptr, ptr + n), each inside one mapping, in address order, while f
  // returns true. Returns nullopt if every piece was visited, else the
  // address where it stopped: not mapped, or f said stop.
  template <class F>
  std::optional<CUdeviceptr> for_each_piece(CUdeviceptr ptr, std::uint64_t n, F &&f) const;

  std::size_t reservation_count() const { return reservations_.size(); }
  std::size_t mapping_count() const { return mappings_.size(); }

private:
  const std::uint64_t base_;
  const std::uint64_t size_;
  std::map<CUdeviceptr, std::uint64_t> reservations_; // start -> size
  std::map<CUdeviceptr, Mapping> mappings_;           // start -> mapping
};

template <class F>
std::optional<CUdeviceptr> VaSpace::for_each_piece(CUdeviceptr ptr, std::uint64_t n, F &&f) const
{
  if (n > UINT64_MAX - ptr) return ptr;
  const CUdeviceptr end = ptr + n;
  auto it = mappings_.upper_bound(ptr);
  if (it == mappings_.begin()) return ptr;
  --it; // the last mapping starting at or below ptr
  CUdeviceptr at = ptr;
  while (at < end) {
    if (it == mappings_.end() || it->first > at || at - it->first >= it->second.size) return at;
    const std::uint64_t offset = at - it->first;
    const std::uint64_t length = std::min<std::uint64_t>(end - at, it->second.size - offset);
    if (!f(it->second, offset, length, at)) return at;
    at += length;
    ++it;
  }
  return std::nullopt;
}

} // namespace fakecuda
