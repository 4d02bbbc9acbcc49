// FAKECUDA_MAP_FILE: an append-only log of allocations and frees (and of
// cuMemCreate / cuMemMap and their undoing), so a test can find where in
// FAKECUDA_MEMORY_FILE a device allocation lives.
#pragma once

#include "line_file.hpp"

#include "cuda_abi.hpp"

#include <cstdint>
#include <string>

namespace fakecuda {

class MapFile {
public:
  // Empty path: disabled. Throws ConfigError if the file cannot be opened.
  explicit MapFile(const std::string &path);

  void alloc(int gpu, CUdeviceptr dptr, std::uint64_t file_offset, std::uint64_t size);
  void free(int gpu, CUdeviceptr dptr);
  // Virtual memory management: physical allocations by handle, and their
  // mappings (file_offset: where the mapping's byte 0 is in the file).
  void create(int gpu, std::uint64_t handle, std::uint64_t file_offset, std::uint64_t size);
  void release(std::uint64_t handle, bool deferred);
  void map(CUdeviceptr dptr, std::uint64_t size, std::uint64_t handle, std::uint64_t offset,
           std::uint64_t file_offset);
  void unmap(CUdeviceptr dptr, std::uint64_t size);

private:
  LineFile file_;
};

} // namespace fakecuda
