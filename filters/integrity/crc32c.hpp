// CRC32C (Castagnoli, the iSCSI / ext4 / SCTP checksum), computed by
// Intel's ISA-L (libisal), which picks the fastest code for this CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace integrity {

// The CRC32C of `data`, continuing from `crc` (the result of an earlier
// call), so that crc32c(b, crc32c(a)) == crc32c(a + b).  Start with 0.
uint32_t crc32c(std::span<const std::byte> data, uint32_t crc = 0);

// The CRC32C of `length` zero bytes.
uint32_t crc32c_of_zeroes(uint64_t length);

} // namespace integrity
