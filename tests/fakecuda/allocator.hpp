// First-fit allocator over one GPU's region [0, size). Offsets only: it
// knows nothing about the mapping. Not thread-safe; Device guards it.
//
// cuMemAlloc allocations and cuMemCreate physical allocations come from the
// same region (so both count against free memory and file offsets stay
// deterministic), but are told apart: a cuMemAlloc pointer is an address in
// the GPU's linear window, whereas cuMemCreate memory is reachable only
// through cuMemMap, so it must never satisfy a linear-window bounds check
// or be freed by cuMemFree or a context teardown.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace fakecuda {

enum class BlockOwner : unsigned char {
  MemAlloc,  // cuMemAlloc: a context object, addressed linearly
  MemCreate, // cuMemCreate: a physical allocation, addressed via cuMemMap
};

class RegionAllocator {
public:
  struct Block {
    std::uint64_t reserved; // rounded size, taken from the region
    std::uint64_t usable;   // what the caller asked for: the bounds checked on copies
    BlockOwner owner;
  };

  explicit RegionAllocator(std::uint64_t size);

  // Reserves `reserved` bytes at the lowest offset where they fit (first
  // fit, so the first allocation on an empty region is at offset 0) and
  // records `usable` (<= reserved) as the allocation's size. nullopt if no
  // free range is large enough.
  std::optional<std::uint64_t> allocate(std::uint64_t reserved, std::uint64_t usable,
                                        BlockOwner owner = BlockOwner::MemAlloc);

  // Releases the allocation of `owner` that starts exactly at `offset`;
  // false if no such live allocation starts there.
  bool release(std::uint64_t offset, BlockOwner owner = BlockOwner::MemAlloc);

  // True if [offset, offset + size) lies inside the usable bytes of a
  // single live cuMemAlloc allocation. Padding from rounding does not
  // count: a real GPU would not notice an overrun into it, but the code
  // under test is still wrong, and this is where the fake can say so.
  bool contains(std::uint64_t offset, std::uint64_t size) const;

  // Bytes taken by allocations of both kinds: what free memory drops by.
  std::uint64_t reserved_bytes() const { return reserved_; }
  const std::map<std::uint64_t, Block> &live() const { return used_; }

private:
  std::map<std::uint64_t, std::uint64_t> free_; // offset -> size, coalesced
  std::map<std::uint64_t, Block> used_;         // offset -> block
  std::uint64_t reserved_ = 0;
};

} // namespace fakecuda
