// A compressed export: the export's 4 KiB pages, each kept in VRAM
// compressed (or whole where it will not compress), or as a value with no
// VRAM at all when it is same-filled.  Reads, writes, zeroes and trims of
// any alignment; VRAM comes and goes in chunks as pages need it
// (SlotAllocator); sparse chunks are emptied into others (compact()).
//
// The GPU side is a ChunkDevice: the store's lanes in the plugin, memory
// in the unit tests.  Each request brings a Worker (one per lane, made at
// start), so nothing is allocated while serving.
//
// A write that cannot get VRAM fails with ENOSPC and changes nothing: new
// pages go to new slots, and the table points at them only once every
// page of the request is in place.
#pragma once

#include "compress/page_codec.hpp"
#include "compress/page_table.hpp"
#include "compress/slot_allocator.hpp"
#include "stripe_locks.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vram::compress {

class ChunkDevice {
public:
  virtual ~ChunkDevice() = default;
  // VRAM under a chunk, zeroed; false when the GPU has none to give.
  virtual bool map(uint32_t chunk, void *lane) = 0;
  // Zeroes a chunk and gives its VRAM back; false when it is still held.
  virtual bool release(uint32_t chunk, void *lane) = 0;
  // Copies to and from VRAM at a byte offset of the chunk range; 0 or an
  // errno value.
  virtual int write(uint64_t offset, std::span<const std::byte> data, void *lane) = 0;
  virtual int read(uint64_t offset, std::span<std::byte> data, void *lane) = 0;
  // Many at once, done when it returns (a device may queue them all
  // before one wait).  0 or the first error.
  struct Copy {
    uint64_t offset;
    std::byte *host;
    uint32_t length;
  };
  virtual int write_many(std::span<const Copy> copies, void *lane)
  {
    for (const Copy &c : copies)
      if (const int r = write(c.offset, std::span(c.host, c.length), lane); r != 0) return r;
    return 0;
  }
  virtual int read_many(std::span<const Copy> copies, void *lane)
  {
    for (const Copy &c : copies)
      if (const int r = read(c.offset, std::span(c.host, c.length), lane); r != 0) return r;
    return 0;
  }
};

// What one request needs, made in advance.
struct Worker {
  Worker(const CodecSetting &codec, uint64_t max_request);
  PageCodec codec;
  std::vector<std::byte> page;   // one page, decoded
  std::vector<std::byte> packed; // one page, encoded
  struct Pending {
    uint64_t page;
    PageEntry entry;
  };
  std::vector<Pending> pending; // a write's new pages, up to max_request
  void *lane = nullptr;         // the device's own, passed through
  // Compressed pages on their way to or from VRAM, copied a batch at a
  // time: their bytes, and where each goes.
  static constexpr size_t batch_pages = 64;
  std::vector<std::byte> batch;          // batch_pages pages
  std::vector<ChunkDevice::Copy> copies; // up to batch_pages
  std::vector<PageEntry> entries;        // a read's, for each page of the batch
  size_t batch_used = 0;
};

class CompressedExport {
public:
  struct Settings {
    uint64_t size = 0;        // logical bytes, a multiple of 4 KiB
    uint64_t chunk_bytes = 0; // VRAM's unit
    uint32_t chunks = 0;      // the most VRAM it may hold, in chunks
    uint32_t spare_chunks = 0;
    uint64_t max_request = 0; // the largest request served
    // Pages that compress to more than this are stored whole.
    uint32_t whole_above = 3 * SlotAllocator::page_bytes / 4;
  };

  CompressedExport(const Settings &settings, ChunkDevice &device);

  uint64_t size() const { return settings_.size; }
  const Settings &settings() const { return settings_; }

  // 0 or an errno value (EIO, ENOSPC, EINVAL), with `message` for the log.
  int read(Worker &w, std::span<std::byte> buf, uint64_t offset, std::string &message);
  int write(Worker &w, std::span<const std::byte> data, uint64_t offset, std::string &message);
  // Zero and trim are the same here: whole pages hold nothing afterwards.
  int zero(Worker &w, uint64_t length, uint64_t offset, std::string &message);

  // Empties the chunks with the least in them into the free room of the
  // others while there is room, and returns how many chunks it emptied.
  size_t compact(Worker &w);
  // One step of that: empties one chunk and says whether it did (trying
  // the next candidate when one's pages find no room).  For a caller that
  // gives the lane back between steps.
  bool compact_one(Worker &w);

  struct Stats {
    PageTable::Stats pages;
    SlotAllocator::Stats vram;
    uint64_t compacted_chunks = 0;
  };
  Stats stats() const;
  // Host memory the page table and the slot allocator hold (made at start).
  uint64_t host_bytes() const { return table_.host_bytes() + slots_.host_bytes(); }

private:
  // The new entry for one page whose contents are `page` (4 KiB), its
  // bytes compressed into the worker's batch for a new slot if it needs
  // one (flush() copies them to VRAM).  0 or an errno value.
  int encode(Worker &w, std::span<const std::byte> page, PageEntry &entry, std::string &message);
  int flush(Worker &w, std::string &message);
  // ENOSPC, with `message` saying what the VRAM holds.
  int no_room(std::string &message) const;
  // One page's contents into `out` (4 KiB) from its bytes in VRAM
  // (`bytes`, when stored).
  int expand(Worker &w, uint64_t page, const PageEntry &e, std::span<const std::byte> bytes,
             std::span<std::byte> out, std::string &message);
  // `bytes` into a new slot of VRAM (in a chunk already in use unless
  // `may_map`).  0 or an errno value.
  int store(Worker &w, std::span<const std::byte> bytes, SlotAllocator::Slot &slot,
            std::string &message, bool may_map = true);
  // One page's contents into `out` (4 KiB).
  int decode(Worker &w, uint64_t page, const PageEntry &e, std::span<std::byte> out,
             std::string &message);
  // Writes [offset, offset + length) from `data`, or zeroes when null.
  int change(Worker &w, const std::byte *data, uint64_t length, uint64_t offset,
             std::string &message);
  void forget(Worker &w); // frees the pending pages' new slots
  enum class Evacuated { no_candidate, stuck, emptied };
  Evacuated evacuate(Worker &w);

  Settings settings_;
  ChunkDevice &device_;
  SlotAllocator slots_;
  PageTable table_;
  StripeLocks locks_;
  std::atomic<uint64_t> compacted_{0};
};

} // namespace vram::compress
