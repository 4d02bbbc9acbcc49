// What the filter sits in front of: the next filter or the plugin.  The
// nbdkit callback file adapts nbdkit's next_ops to this; tests use a
// plain in-memory disk they can corrupt at will.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace integrity {

struct WriteFlags {
  bool fua = false;       // durable before the reply
  bool may_trim = false;  // zero: the backend may deallocate instead
  bool fast_zero = false; // zero: fail with ENOTSUP rather than be slow
};

class Backend {
public:
  virtual ~Backend() = default;
  // Each returns 0 or a positive errno value.
  virtual int read(std::span<std::byte> buffer, uint64_t offset) = 0;
  virtual int write(std::span<const std::byte> data, uint64_t offset, WriteFlags flags) = 0;
  virtual int zero(uint64_t length, uint64_t offset, WriteFlags flags) = 0;
};

} // namespace integrity
