// How a request is cut into pieces that fit a lane's staging slots.
#pragma once

#include <cstdint>

namespace vram {

struct Chunk {
  uint64_t offset; // from the start of the request
  uint64_t length;
};

class ChunkPlan {
public:
  constexpr ChunkPlan(uint64_t request_length, uint64_t chunk_size)
    : length_(request_length), chunk_(chunk_size)
  {
  }

  constexpr uint64_t count() const { return length_ == 0 ? 0 : (length_ + chunk_ - 1) / chunk_; }

  constexpr Chunk operator[](uint64_t i) const
  {
    const uint64_t off = i * chunk_;
    const uint64_t left = length_ - off;
    return {off, left < chunk_ ? left : chunk_};
  }

private:
  uint64_t length_;
  uint64_t chunk_;
};

} // namespace vram
