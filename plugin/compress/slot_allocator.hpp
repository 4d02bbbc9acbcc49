// Where compressed pages live in VRAM.  The VRAM budget is cut into chunks
// (the unit VRAM is mapped and released in, as with allocation=lazy); a
// chunk in use belongs to one size class and is cut into equal slots, one
// stored page each.  Classes are multiples of 64 bytes up to a whole 4 KiB
// page, so a page wastes less than 64 bytes of its slot, and chunks that
// trims and overwrites leave sparse can be emptied (evacuated) into the
// holes of others and given back.
//
// Pure bookkeeping: mapping and releasing a chunk's VRAM are the caller's
// callbacks, so it is unit-tested without a GPU.  Everything is allocated
// at construction: nothing on the I/O path.  Its RAM: a bit per 64 bytes
// of the VRAM budget (4 KiB per 2 MiB chunk, 0.2%), for the smallest
// class's slots.
//
// Locking: one mutex per class, held while a slot of it is taken or given
// back (and across the caller's map or release of a chunk, which is rare:
// once per chunk); the pool of unused chunks has its own, taken inside.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

namespace vram::compress {

class SlotAllocator {
public:
  static constexpr uint32_t granule = 64;
  static constexpr uint32_t page_bytes = 4096;
  static constexpr uint16_t class_count = page_bytes / granule;

  struct Slot {
    uint32_t chunk = 0;
    uint32_t index = 0;
    uint16_t cls = 0;
    bool operator==(const Slot &) const = default;
  };

  // map(chunk, ctx): give the chunk VRAM (zeroed); false if the GPU has
  // none.  release(chunk, ctx): take its VRAM back (zeroed first: swap
  // holds secrets); false if it is still held, so the chunk is kept as a
  // spare.  `ctx` is what the caller of allocate() or free() passed (the
  // I/O lane to do it with).
  using MapChunk = std::function<bool(uint32_t, void *)>;
  using ReleaseChunk = std::function<bool(uint32_t, void *)>;

  // `chunk_bytes` a multiple of 4 KiB; `spares`: empty chunks kept with
  // their VRAM for the next class that needs one, instead of released.
  SlotAllocator(uint64_t chunk_bytes, uint32_t chunks, uint32_t spares, MapChunk map,
                ReleaseChunk release);

  SlotAllocator(const SlotAllocator &) = delete;
  SlotAllocator &operator=(const SlotAllocator &) = delete;

  // The class of a stored length (1 to 4096 bytes), and its slot size.
  static uint16_t class_of(uint32_t bytes) { return static_cast<uint16_t>((bytes - 1) / granule); }
  static uint32_t class_bytes(uint16_t cls) { return (cls + 1u) * granule; }

  uint64_t chunk_bytes() const { return chunk_bytes_; }
  uint32_t chunks() const { return static_cast<uint32_t>(chunks_.size()); }
  uint32_t slots_per_chunk(uint16_t cls) const
  {
    return static_cast<uint32_t>(chunk_bytes_ / class_bytes(cls));
  }
  // Byte offset of a slot in the VRAM range the chunks are cut from.
  uint64_t offset(const Slot &s) const
  {
    return uint64_t{s.chunk} * chunk_bytes_ + uint64_t{s.index} * class_bytes(s.cls);
  }

  // A slot for `bytes` (1 to 4096), or nothing when the class has no free
  // slot and no chunk can be had (every chunk in use, or map() failed).
  std::optional<Slot> allocate(uint32_t bytes, void *ctx = nullptr);

  // Gives a slot back.  A chunk left empty goes to the spares, or is
  // released.
  void free(const Slot &slot, void *ctx = nullptr);

  // Compaction.  If the class's free slots could hold every page of its
  // emptiest chunk (and more than `slack` slots would still be free),
  // marks that chunk as being evacuated (no new page goes into it), writes
  // the indexes of its used slots to `used` (room for slots_per_chunk)
  // and returns the chunk and how many.  The caller moves each page to a
  // slot from allocate() and frees the old one; the last free() releases
  // the chunk.  finish_evacuation() puts a chunk that was not emptied
  // back into service, and says whether it had been emptied.
  struct Evacuation {
    uint32_t chunk;
    uint16_t cls;
    uint32_t used;
  };
  std::optional<Evacuation> start_evacuation(uint16_t cls, std::span<uint32_t> used,
                                             uint32_t slack = 0);
  bool finish_evacuation(const Evacuation &e);

  struct ClassStats {
    uint32_t chunks = 0;
    uint64_t used_slots = 0;
    uint64_t free_slots = 0;
  };
  struct Stats {
    uint32_t chunks_in_classes = 0; // chunks holding pages (or being evacuated)
    uint32_t spare_chunks = 0;      // empty, VRAM kept
    uint64_t slot_bytes = 0;        // bytes of the slots in use
    uint64_t vram_bytes = 0;        // VRAM held: both kinds of chunk
  };
  Stats stats() const;
  ClassStats class_stats(uint16_t cls) const;

private:
  enum class State : uint8_t { absent, spare, in_class, evacuating };
  struct Chunk {
    State state = State::absent;
    uint16_t cls = 0;
    uint32_t used = 0;
    uint32_t hint = 0;            // a word of the bitmap that may have a free slot
    int64_t prev = -1, next = -1; // the class's list of chunks with free slots
  };
  struct Class {
    mutable std::mutex mu;
    int64_t head = -1; // chunks with a free slot, not being evacuated
    uint32_t chunks = 0;
    uint64_t used = 0;
  };

  std::span<uint64_t> bits(uint32_t chunk)
  {
    return std::span(bitmap_).subspan(size_t{chunk} * words_per_chunk_, words_per_chunk_);
  }
  std::span<const uint64_t> bits(uint32_t chunk) const
  {
    return std::span(bitmap_).subspan(size_t{chunk} * words_per_chunk_, words_per_chunk_);
  }
  void link(Class &c, uint32_t chunk);
  void unlink(Class &c, uint32_t chunk);
  std::optional<uint32_t> take_chunk(uint16_t cls, void *ctx); // with cls's lock held
  void give_back_chunk(uint32_t chunk, void *ctx);             // with its class's lock held
  uint32_t take_slot(uint32_t chunk);

  uint64_t chunk_bytes_;
  uint32_t spares_wanted_;
  size_t words_per_chunk_;
  MapChunk map_;
  ReleaseChunk release_;
  std::vector<Chunk> chunks_;
  std::vector<uint64_t> bitmap_;
  std::array<Class, class_count> classes_;

  mutable std::mutex pool_mu_;
  std::vector<uint32_t> absent_; // a stack, lowest chunk on top
  std::vector<uint32_t> spare_;
  uint32_t in_classes_ = 0; // guarded by pool_mu_
};

} // namespace vram::compress
