// State of the virtual memory management API (cuMemCreate, cuMemMap, ...):
// physical allocations by handle, and the reserved address space. Not
// context objects: they outlive the last cuDevicePrimaryCtxRelease and go
// only with fakecuda_reset(). The Driver methods using this are in vmm.cpp.
#pragma once

#include "layout.hpp"
#include "va_space.hpp"

#include <cstdint>
#include <shared_mutex>
#include <unordered_map>

namespace fakecuda {

// What a CUmemGenericAllocationHandle stands for: a block of one GPU's
// region, freed when it is released and no longer mapped (either order).
struct PhysicalAllocation {
  int device;
  std::uint64_t region_offset;
  std::uint64_t size;
  unsigned mappings = 0; // live cuMemMap mappings of it
  bool released = false; // cuMemRelease was called; the handle is dead
};

struct VmmState {
  // Shared while a copy or memset runs through the mappings (so none is
  // unmapped under it), exclusive to change anything here. Taken before a
  // Device's mem_mu, never after.
  mutable std::shared_mutex mu;
  VaSpace va{kVmmBase, kVmmWindow};
  std::unordered_map<VmmHandle, PhysicalAllocation> allocations;
  // Opaque handle values; distinctive so they are not mistaken for
  // pointers, sizes or chunk numbers. Never reused within one cuInit.
  VmmHandle next_handle = 0xc0de0001;
};

} // namespace fakecuda
