// The bytes behind the fake device memory: a MAP_SHARED mapping of
// FAKECUDA_MEMORY_FILE (so tests can read and poke them from outside the
// process) or of an anonymous memfd. Sparse, so a 64 GiB GPU costs nothing
// until written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace fakecuda {

class Backing {
public:
  // Maps `size` bytes of `path` (creating/extending a regular file as
  // needed) or of a fresh memfd when path is nullopt. Throws ConfigError
  // with a message naming the file on failure.
  Backing(const std::optional<std::string> &path, std::uint64_t size);
  ~Backing();
  Backing(const Backing &) = delete;
  Backing &operator=(const Backing &) = delete;

  std::byte *data() const { return data_; }
  std::uint64_t size() const { return size_; }

private:
  int fd_ = -1;
  std::byte *data_ = nullptr;
  std::uint64_t size_ = 0;
};

} // namespace fakecuda
