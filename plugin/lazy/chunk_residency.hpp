// Which chunks of a lazily allocated export hold VRAM, and which of their
// blocks hold data.  A chunk is mapped on the first write into it and
// released once every block in it has been trimmed or zeroed again.  Pure
// bookkeeping and locking: mapping, copying and zeroing are the caller's
// callbacks, so it is unit-tested without a GPU.
//
// Locking: each chunk has a reader-writer lock.  Requests hold it shared
// while they copy, so they run in parallel; mapping and unmapping a chunk
// hold it exclusive, so no copy ever runs on memory being mapped or taken
// away.  Block bits are atomic, so writers sharing a chunk do not serialize.
#pragma once

#include "cuda_abi.hpp"
#include "status/request_board.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace vram {

class ChunkResidency {
public:
  static constexpr uint64_t block_size = 4096;

  // `chunk_size` is a multiple of 64 blocks (256 KiB).
  ChunkResidency(uint64_t export_size, uint64_t chunk_size);

  ChunkResidency(const ChunkResidency &) = delete;
  ChunkResidency &operator=(const ChunkResidency &) = delete;

  uint64_t chunk_size() const { return chunk_size_; }
  size_t chunks() const { return chunks_.size(); }
  size_t mapped_chunks() const { return mapped_.load(std::memory_order_relaxed); }
  bool mapped(size_t chunk) const { return chunks_[chunk].mapped; }
  uint64_t live_blocks(size_t chunk) const
  {
    return chunks_[chunk].live.load(std::memory_order_relaxed);
  }

  // Calls fn(offset, length, chunk) for each piece of [offset, offset +
  // length) that lies in one chunk, in order; stops at the first piece for
  // which fn returns something other than CUDA_SUCCESS and returns that.
  template <typename Fn> CUresult for_each_piece(uint64_t offset, uint64_t length, Fn fn) const;

  // A write of [offset, offset + length), all inside one chunk.  Maps the
  // chunk first if needed (map(chunk) must leave it zeroed; an error from it
  // is returned and nothing else happens), marks every block the range
  // touches as holding data, then runs io() under the chunk's lock.
  template <typename Map, typename Io>
  CUresult write(uint64_t offset, uint64_t length, Map map, Io io);

  // A read: io(true) with the chunk's memory to copy from, or io(false)
  // when the chunk holds no VRAM (the range reads as zeroes).
  template <typename Io> CUresult read(uint64_t offset, uint64_t length, Io io);

  // A zero or trim.  On a mapped chunk, clear() zeroes the range's bytes
  // in VRAM; then the blocks it covers entirely no longer hold data (a
  // partly covered block keeps its other bytes, so it stays).  A chunk left
  // with no data is released with unmap(chunk, gone), whose memory is by
  // then all zero; it counts as unmapped when unmap sets `gone`, whatever
  // it returns (a chunk whose VRAM could not be released is still out of
  // the export).  An unmapped chunk already reads as zeroes: nothing to do.
  template <typename Clear, typename Unmap>
  CUresult clear(uint64_t offset, uint64_t length, Clear clear, Unmap unmap);

  // Teardown: calls fn(chunk) for each mapped chunk with its lock held
  // exclusively and marks it unmapped.
  template <typename Fn> void release_all(Fn fn);

private:
  struct Chunk {
    std::shared_mutex lock;
    bool mapped = false;           // guarded by lock
    std::atomic<uint64_t> live{0}; // blocks holding data
  };

  void mark(size_t chunk, uint64_t offset, uint64_t length);
  // Returns the chunk's live block count after clearing.
  uint64_t unmark(size_t chunk, uint64_t offset, uint64_t length);
  void set_mapped(Chunk &c, bool mapped);

  uint64_t chunk_size_;
  std::vector<Chunk> chunks_;
  std::unique_ptr<std::atomic<uint64_t>[]> bits_; // one bit per block
  std::atomic<size_t> mapped_{0};
};

template <typename Fn>
CUresult ChunkResidency::for_each_piece(uint64_t offset, uint64_t length, Fn fn) const
{
  while (length > 0) {
    const size_t chunk = offset / chunk_size_;
    const uint64_t piece = std::min(length, (chunk + 1) * chunk_size_ - offset);
    if (const CUresult r = fn(offset, piece, chunk); r != CUDA_SUCCESS) return r;
    offset += piece;
    length -= piece;
  }
  return CUDA_SUCCESS;
}

template <typename Map, typename Io>
CUresult ChunkResidency::write(uint64_t offset, uint64_t length, Map map, Io io)
{
  const size_t chunk = offset / chunk_size_;
  Chunk &c = chunks_[chunk];
  {
    request_trace::phase(RequestPhase::chunk_wait, static_cast<int64_t>(chunk));
    std::shared_lock shared(c.lock);
    request_trace::phase(RequestPhase::chunk, static_cast<int64_t>(chunk));
    if (c.mapped) {
      mark(chunk, offset, length);
      return io();
    }
  }
  request_trace::phase(RequestPhase::chunk_wait, static_cast<int64_t>(chunk));
  std::unique_lock exclusive(c.lock);
  request_trace::phase(RequestPhase::chunk, static_cast<int64_t>(chunk));
  if (!c.mapped) {
    request_trace::phase(RequestPhase::map, static_cast<int64_t>(chunk));
    if (const CUresult r = map(chunk); r != CUDA_SUCCESS) return r;
    set_mapped(c, true);
    request_trace::phase(RequestPhase::chunk, static_cast<int64_t>(chunk));
  }
  mark(chunk, offset, length);
  return io();
}

template <typename Io> CUresult ChunkResidency::read(uint64_t offset, uint64_t /*length*/, Io io)
{
  const size_t chunk = offset / chunk_size_;
  Chunk &c = chunks_[chunk];
  request_trace::phase(RequestPhase::chunk_wait, static_cast<int64_t>(chunk));
  std::shared_lock shared(c.lock);
  request_trace::phase(RequestPhase::chunk, static_cast<int64_t>(chunk));
  return io(c.mapped);
}

template <typename Clear, typename Unmap>
CUresult ChunkResidency::clear(uint64_t offset, uint64_t length, Clear clear, Unmap unmap)
{
  const size_t chunk = offset / chunk_size_;
  Chunk &c = chunks_[chunk];
  {
    request_trace::phase(RequestPhase::chunk_wait, static_cast<int64_t>(chunk));
    std::shared_lock shared(c.lock);
    request_trace::phase(RequestPhase::chunk, static_cast<int64_t>(chunk));
    if (!c.mapped) return CUDA_SUCCESS;
    if (const CUresult r = clear(); r != CUDA_SUCCESS) return r;
    if (unmark(chunk, offset, length) != 0) return CUDA_SUCCESS;
  }
  request_trace::phase(RequestPhase::chunk_wait, static_cast<int64_t>(chunk));
  std::unique_lock exclusive(c.lock);
  request_trace::phase(RequestPhase::chunk, static_cast<int64_t>(chunk));
  // A writer may have come in between: it marked blocks, so live != 0.
  if (!c.mapped || c.live.load(std::memory_order_relaxed) != 0) return CUDA_SUCCESS;
  request_trace::phase(RequestPhase::map, static_cast<int64_t>(chunk));
  bool gone = false;
  const CUresult r = unmap(chunk, gone);
  if (gone) set_mapped(c, false);
  return r;
}

template <typename Fn> void ChunkResidency::release_all(Fn fn)
{
  for (size_t i = 0; i < chunks_.size(); ++i) {
    Chunk &c = chunks_[i];
    std::unique_lock exclusive(c.lock);
    if (!c.mapped) continue;
    fn(i);
    set_mapped(c, false);
  }
}

} // namespace vram
