// One export with a checksum per block: every read is verified against
// what was last written, zeroed or trimmed through this object.
//
// Shared by all connections to the export (the NBD client may use several
// at once): tables are per export, not per connection.
#pragma once

#include "backend.hpp"
#include "block_geometry.hpp"
#include "checksum_table.hpp"
#include "settings.hpp"
#include "stripe_locks.hpp"
#include "unsettled_blocks.hpp"

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace integrity {

class CheckedExport {
public:
  // Every block starts as zeroes (as the vram and memory plugins do).
  // Throws AllocationError when the table cannot be allocated (or locked,
  // with integrity-mlock=require).
  CheckedExport(std::string name, uint64_t size, const Settings &settings,
                size_t lock_stripes = 4096);

  // Each returns 0 or a positive errno value.  A block whose data does
  // not match its checksum fails the request with EIO (logged the first
  // time); a read that fails leaves `buffer` zeroed, never partly filled
  // with data that did not check.
  int read(Backend &backend, std::span<std::byte> buffer, uint64_t offset);
  int write(Backend &backend, std::span<const std::byte> data, uint64_t offset, WriteFlags flags);
  int zero(Backend &backend, uint64_t length, uint64_t offset, WriteFlags flags);
  // NBD lets a trimmed range read back as anything, which no checksum can
  // follow, so a trim is a zero that may deallocate.
  int trim(Backend &backend, uint64_t length, uint64_t offset, bool fua);

  const std::string &name() const { return name_; }
  const BlockGeometry &geometry() const { return geometry_; }
  const ChecksumTable &table() const { return table_; }

private:
  // Blocks found bad during one request; those to log are logged after
  // the locks are released.
  struct Findings {
    bool bad = false;
    std::vector<uint64_t> to_log;
  };

  bool verify(uint64_t block, std::span<const std::byte> data, Findings &findings);
  int read_locked(Backend &backend, std::span<std::byte> buffer, uint64_t offset,
                  const BlockSpan &span, Findings &findings);
  int read_block(Backend &backend, uint64_t block, std::vector<std::byte> &out);
  // Read-modify-write of a partly covered block: reads and verifies it,
  // lays the request's bytes over it (zeroes if request_data is null)
  // and computes its new CRC.  The caller holds the block exclusively.
  int rewrite_partial(Backend &backend, uint64_t block, const ByteRange &request,
                      const std::byte *request_data, uint32_t &crc, Findings &findings);
  void resync(Backend &backend, uint64_t first, uint64_t last);
  // Before a read: takes what the backend now holds as the truth for the
  // unsettled blocks in [first, last] (exclusively locked here).  0, or
  // the backend's error when one still cannot be read.
  int settle(Backend &backend, uint64_t first, uint64_t last);
  // A request changed these blocks: their checksums are known again.
  void written(uint64_t first, uint64_t last);
  void report(const Findings &findings) const;

  std::string name_;
  BlockGeometry geometry_;
  ChecksumTable table_;
  vram::StripeLocks locks_;
  UnsettledBlocks unsettled_;
  std::atomic<bool> unsettled_full_logged_{false};
};

} // namespace integrity
