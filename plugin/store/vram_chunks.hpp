// compress=: the compressed export's chunks (compress/compressed_export.hpp)
// are LazyVram's chunks, mapped, zeroed, copied and released through the
// request's I/O lane, so small compressed pages take the lane's copy
// shapes (copy engines beside other programs' GPU work, share-gpu=).
#pragma once

#include "compress/compressed_export.hpp"
#include "lazy/lazy_vram.hpp"
#include "store/io_lane.hpp"

#include <cstdint>
#include <string>

namespace vram {

// What the compressed export passes through as its `lane`: the lane, and
// what its last GPU call said, for the store to report (a sticky error
// puts it out of service; a shortage of VRAM is ENOSPC).
struct ChunkLane {
  IoLane *lane = nullptr;
  CUresult error = CUDA_SUCCESS;
  std::string shortage; // why the last chunk could not be mapped, if VRAM was short
  void clear()
  {
    error = CUDA_SUCCESS;
    shortage.clear();
  }
};

class VramChunks final : public compress::ChunkDevice {
public:
  explicit VramChunks(LazyVram &vram) : vram_(vram) {}

  bool map(uint32_t chunk, void *lane) override;
  bool release(uint32_t chunk, void *lane) override;
  int write(uint64_t offset, std::span<const std::byte> data, void *lane) override;
  int read(uint64_t offset, std::span<std::byte> data, void *lane) override;
  // A request's compressed pages, queued together and waited for once.
  int write_many(std::span<const Copy> copies, void *lane) override;
  int read_many(std::span<const Copy> copies, void *lane) override;

private:
  LazyVram &vram_;
};

} // namespace vram
