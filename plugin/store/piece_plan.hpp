// How a request is cut into pieces that fit a lane's staging slots
// (piece-size=), so that the copy of one overlaps the staging of the next.
// (Not the lazy allocation's chunks: lazy/piece_residency.hpp.)
#pragma once

#include <cstdint>

namespace vram {

struct Piece {
  uint64_t offset; // from the start of the request
  uint64_t length;
};

class PiecePlan {
public:
  constexpr PiecePlan(uint64_t request_length, uint64_t piece_size)
    : length_(request_length), piece_(piece_size)
  {
  }

  constexpr uint64_t count() const { return length_ == 0 ? 0 : (length_ + piece_ - 1) / piece_; }

  constexpr Piece operator[](uint64_t i) const
  {
    const uint64_t off = i * piece_;
    const uint64_t left = length_ - off;
    return {off, left < piece_ ? left : piece_};
  }

private:
  uint64_t length_;
  uint64_t piece_;
};

} // namespace vram
