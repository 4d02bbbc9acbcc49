// FAKECUDA_MAP_FILE: an append-only log of allocations and frees, so a test
// can find where in FAKECUDA_MEMORY_FILE a device allocation lives.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <string>

namespace fakecuda {

class MapFile {
 public:
  // Empty path: disabled. Throws ConfigError if the file cannot be opened.
  explicit MapFile(const std::string& path);
  ~MapFile();
  MapFile(const MapFile&) = delete;
  MapFile& operator=(const MapFile&) = delete;

  void alloc(int gpu, CUdeviceptr dptr, std::uint64_t file_offset, std::uint64_t size);
  void free(int gpu, CUdeviceptr dptr);

 private:
  void write_line(const char* line, int length);
  int fd_ = -1;
};

}  // namespace fakecuda
