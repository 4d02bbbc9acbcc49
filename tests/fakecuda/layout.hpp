// Address layout of the fake device memory. Fixed and documented so tests
// can compute where a device pointer's bytes live in FAKECUDA_MEMORY_FILE.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fakecuda {

// GPU i's device pointers are kDevicePtrBase + i * kDeviceWindow + offset.
// A high, distinctive base makes stray host dereferences of device pointers
// fault instead of silently touching host memory.
inline constexpr std::uint64_t kDevicePtrBase = 0x100000000000ULL;
inline constexpr std::uint64_t kDeviceWindow = std::uint64_t{1} << 40; // so total <= 1T
inline constexpr std::size_t kMaxGpus = 64;

// cuMemAlloc rounds sizes up to this, like the real driver's large-page
// granularity; it keeps allocation offsets predictable for tests.
inline constexpr std::uint64_t kAllocGranularity = std::uint64_t{2} << 20;

// cuMemAddressReserve hands out virtual ranges from this window: above every
// cuMemAlloc window (kDevicePtrBase + kMaxGpus * kDeviceWindow =
// 0x500000000000), so a pointer's window says which kind of memory it is.
// Reservations are bookkeeping only: a 1 TiB one costs nothing.
inline constexpr std::uint64_t kVmmBase = 0x600000000000ULL;
inline constexpr std::uint64_t kVmmWindow = std::uint64_t{16} << 40; // 16 TiB
static_assert(kDevicePtrBase + kMaxGpus * kDeviceWindow <= kVmmBase);

// cuMemGetAllocationGranularity, minimum and recommended alike; the unit of
// cuMemCreate sizes and of cuMemAddressReserve / cuMemMap addresses.
inline constexpr std::uint64_t kVmmGranularity = std::uint64_t{2} << 20;

} // namespace fakecuda
