// How a host-to-device copy is issued so that another program's work on
// the GPU cannot hold it up.
//
// Measured on an H200 with driver 580 (docs/dev/benchmark-log.md, "Beside other
// GPU work"): a one-dimensional host-to-device copy under 32 KiB, every
// memset and every device-to-device copy wait for the time slice of any
// other context running kernels (2.5 ms beside large matrix products).
// Copies of 32 KiB and more, device-to-host copies, and two-dimensional
// host-to-device copies of two rows or more, whatever their size, run on a
// copy engine and do not wait.  So a small piece is written as two rows.
#pragma once

#include <array>
#include <cstdint>

namespace vram {

// The smallest one-dimensional host-to-device copy that runs on a copy
// engine.
inline constexpr uint64_t copy_engine_min_1d = 32 * 1024;

// One copy: `rows` rows of `width` bytes, back to back in both the source
// and the destination, starting `offset` bytes into the piece.  rows == 1
// is a plain one-dimensional copy.
struct CopyStep {
  uint64_t offset;
  uint64_t width;
  uint64_t rows;

  constexpr uint64_t length() const { return width * rows; }
  bool operator==(const CopyStep &) const = default;
};

// The copies that write `length` bytes: at most two, together covering
// every byte exactly (where they overlap, both write the same source
// bytes).  Every step is one-dimensional of at least copy_engine_min_1d
// bytes, or two-dimensional; the one exception is a single byte, which no
// shape of two rows can hold.  (IoLane::write lets the last piece of a
// split write take the byte before it along; what is left is a write of
// one byte, or one whose last byte falls alone into a new lazy chunk, and
// the kernel sends neither: the export's minimum block size is 512.)
struct CopyShape {
  std::array<CopyStep, 2> steps{};
  unsigned count = 0;

  const CopyStep *begin() const { return steps.data(); }
  const CopyStep *end() const { return steps.data() + count; }
};

constexpr CopyShape copy_shape(uint64_t length)
{
  CopyShape s;
  if (length == 0) return s;
  if (length >= copy_engine_min_1d || length == 1) {
    s.steps[s.count++] = {0, length, 1};
    return s;
  }
  const uint64_t half = length / 2;
  s.steps[s.count++] = {0, half, 2};
  // An odd length: the last two bytes again, as two rows of one byte.
  if (length % 2) s.steps[s.count++] = {length - 2, 1, 2};
  return s;
}

} // namespace vram
