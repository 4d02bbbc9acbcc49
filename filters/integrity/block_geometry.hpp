// Block arithmetic for an export of `size` bytes cut into power-of-two
// blocks.  The last block is shorter when the size is not a multiple of
// the block size.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace integrity {

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  bool operator==(const ByteRange &) const = default;
};

// Blocks first..last (inclusive) touched by a request, and whether the
// request covers the first and last of them entirely.
struct BlockSpan {
  uint64_t first = 0;
  uint64_t last = 0;
  bool first_partial = false;
  bool last_partial = false;
  uint64_t count() const { return last - first + 1; }

  // The blocks covered entirely: full_begin() .. full_end() - 1.
  uint64_t full_begin() const { return first + (first_partial ? 1 : 0); }
  uint64_t full_end() const { return last + 1 - (last_partial ? 1 : 0); }
  uint64_t full_count() const { return full_end() > full_begin() ? full_end() - full_begin() : 0; }
  // A partly covered last block that is not also the first.
  bool separate_last_partial() const { return last_partial && last != first; }
};

class BlockGeometry {
public:
  // block_size must be a power of two.
  BlockGeometry(uint64_t export_size, uint32_t block_size)
    : size_(export_size), block_size_(block_size), shift_(std::countr_zero(block_size))
  {
  }

  uint64_t export_size() const { return size_; }
  uint32_t block_size() const { return block_size_; }
  uint64_t block_count() const { return (size_ + block_size_ - 1) >> shift_; }
  uint64_t block_of(uint64_t offset) const { return offset >> shift_; }

  // The bytes of block i (shorter for a short last block).
  ByteRange block(uint64_t i) const
  {
    const uint64_t start = i << shift_;
    return {start, std::min<uint64_t>(block_size_, size_ - start)};
  }

  // Which blocks a non-empty, in-bounds request touches.
  BlockSpan span(uint64_t offset, uint64_t length) const
  {
    BlockSpan s;
    const uint64_t end = offset + length;
    s.first = block_of(offset);
    s.last = block_of(end - 1);
    const ByteRange first = block(s.first), last = block(s.last);
    s.first_partial = offset != first.offset || end < first.end();
    s.last_partial = end != last.end() || offset > last.offset;
    return s;
  }

private:
  uint64_t size_;
  uint32_t block_size_;
  int shift_;
};

// The part of `outer` that `inner` overlaps, relative to outer's start.
inline ByteRange overlap_within(const ByteRange &outer, const ByteRange &inner)
{
  const uint64_t start = std::max(outer.offset, inner.offset);
  const uint64_t end = std::min(outer.end(), inner.end());
  if (end <= start) return {0, 0};
  return {start - outer.offset, end - start};
}

} // namespace integrity
