#include "store/vram_chunks.hpp"

#include <cerrno>

namespace vram {
namespace {

ChunkLane &lane_of(void *lane) { return *static_cast<ChunkLane *>(lane); }

// The first error of a request is the one reported.
int note(ChunkLane &l, CUresult r)
{
  if (r == CUDA_SUCCESS) return 0;
  if (l.error == CUDA_SUCCESS) l.error = r;
  return EIO;
}

} // namespace

bool VramChunks::map(uint32_t chunk, void *lane)
{
  ChunkLane &l = lane_of(lane);
  std::string shortage;
  const CUresult r = vram_.map(chunk, *l.lane, shortage);
  if (r == CUDA_ERROR_OUT_OF_MEMORY && l.shortage.empty()) l.shortage = std::move(shortage);
  else note(l, r);
  return r == CUDA_SUCCESS;
}

bool VramChunks::release(uint32_t chunk, void *lane)
{
  ChunkLane &l = lane_of(lane);
  const uint64_t size = vram_.chunk_size();
  // Swap holds secrets: the chunk's VRAM is zeroed before it becomes a
  // spare or goes back to the driver.
  if (note(l, l.lane->zero(vram_.base() + uint64_t{chunk} * size, size)) != 0) return false;
  bool gone = false;
  note(l, vram_.unmap(chunk, gone));
  return gone;
}

int VramChunks::write(uint64_t offset, std::span<const std::byte> data, void *lane)
{
  ChunkLane &l = lane_of(lane);
  return note(l, l.lane->write(vram_.base() + offset, data.data(), data.size()));
}

int VramChunks::read(uint64_t offset, std::span<std::byte> data, void *lane)
{
  ChunkLane &l = lane_of(lane);
  return note(l, l.lane->read(data.data(), vram_.base() + offset, data.size()));
}

int VramChunks::write_many(std::span<const Copy> copies, void *lane)
{
  ChunkLane &l = lane_of(lane);
  const CUdeviceptr base = vram_.base();
  return note(l, l.lane->write_gather(copies.size(), [&](size_t i) {
    return IoLane::Copy{base + copies[i].offset, copies[i].host, copies[i].length};
  }));
}

int VramChunks::read_many(std::span<const Copy> copies, void *lane)
{
  ChunkLane &l = lane_of(lane);
  const CUdeviceptr base = vram_.base();
  return note(l, l.lane->read_scatter(copies.size(), [&](size_t i) {
    return IoLane::Copy{base + copies[i].offset, copies[i].host, copies[i].length};
  }));
}

} // namespace vram
