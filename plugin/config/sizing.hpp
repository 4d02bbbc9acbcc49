// How much VRAM to ask for, and what to fall back to when the driver says
// no.  Pure arithmetic over the GPU's reported memory, so it is unit-tested
// on its own.
#pragma once

#include "config/config.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace vram {

struct SizingError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct GpuMemory {
  uint64_t total = 0;
  uint64_t free = 0;
  bool display = false; // the GPU drives a display (desktop, compositor)
};

struct SizePlan {
  uint64_t first = 0;   // first size to try
  uint64_t minimum = 0; // smallest acceptable size
  uint64_t step = 0;    // back-off step
  uint64_t reserve = 0; // headroom kept free (size=auto)
  // compress=: `first` is the logical size and nothing is allocated at
  // start; this is the most VRAM the export may hold (its address range).
  uint64_t vram = 0;
};

// compress= with size=auto or max: the logical size is this many times the
// VRAM that size= would hold uncompressed.  Swapped memory compresses
// better than this (docs/benchmarks.md); a page that finds no VRAM fails
// with ENOSPC and stays in RAM.
constexpr uint64_t compress_auto_ratio = 2;

// The VRAM a compressed export may need beyond its size: a partly used
// 64 KiB run for each of the 64 size classes of compressed pages
// (SlotAllocator's).
constexpr uint64_t compress_run_slack = 64 * 64 * 1024;

// Sizes chosen by the plugin (auto, max, backing off from free memory) are
// multiples of this; sizes the user typed are used as typed.
constexpr uint64_t size_granularity = 2 * 1024 * 1024;

uint64_t default_reserve(bool display);

// Throws SizingError with a message naming the GPU's free memory and what
// to change when nothing acceptable can fit.
SizePlan plan_size(const Config &config, const GpuMemory &gpu, const std::string &gpu_name);

// first, first - step, ... down to minimum (always the last entry).
std::vector<uint64_t> backoff_sizes(const SizePlan &plan);

} // namespace vram
