// CRC32C (Castagnoli, the iSCSI / ext4 / SCTP checksum): hardware
// instructions where the CPU has them (SSE4.2), a table-driven fallback
// elsewhere.  Both give identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace integrity {

// The CRC32C of `data`, continuing from `crc` (the result of an earlier
// call), so that crc32c(b, crc32c(a)) == crc32c(a + b).  Start with 0.
uint32_t crc32c(std::span<const std::byte> data, uint32_t crc = 0);

// The implementations, for tests and benchmarks.  crc32c() picks the
// fastest one this CPU supports, once.
uint32_t crc32c_portable(std::span<const std::byte> data, uint32_t crc = 0);
bool crc32c_hardware_available();
// Only call when crc32c_hardware_available().
uint32_t crc32c_hardware(std::span<const std::byte> data, uint32_t crc = 0);

// "sse4.2" or "portable": what crc32c() uses on this CPU.
std::string_view crc32c_implementation();

// The CRC32C of `length` zero bytes, without needing the bytes.
uint32_t crc32c_of_zeroes(uint64_t length);

} // namespace integrity
