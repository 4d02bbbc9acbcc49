// Where compressed pages live in VRAM.  The VRAM budget is cut into chunks
// (the unit VRAM is mapped and released in, as with allocation=lazy), and
// each chunk into runs of 64 KiB.  A run in use belongs to one size class
// and is cut into equal slots, one stored page each.  Classes are
// multiples of 64 bytes up to a whole 4 KiB page, so a page wastes less
// than 64 bytes of its slot, and a class that holds pages keeps at most
// one run partly used (not a whole chunk: 64 classes of 2 MiB chunks
// would hold 128 MiB of VRAM for a few pages each).
//
// Runs are taken from the lowest chunk in use that has one free, so pages
// pack into few chunks; a chunk goes back when its last run does.  Chunks
// that trims and overwrites leave sparse are emptied (evacuated) into the
// free room of the others and given back.
//
// Pure bookkeeping: mapping and releasing a chunk's VRAM are the caller's
// callbacks, so it is unit-tested without a GPU.  Everything is allocated
// at construction: nothing on the I/O path.  Its RAM: a bit per 64 bytes
// of the VRAM budget (4 KiB per 2 MiB chunk, 0.2%) for the slots, and 16
// bytes per run.
//
// Locking: one mutex per class, held while a slot of it is taken or given
// back, and across the caller's map or release of a chunk (rare: once per
// chunk); the chunks' bookkeeping has its own, taken inside, never across
// a callback.
#pragma once

#include <array>
#include <atomic>
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
  static constexpr uint32_t run_bytes = 64 * 1024;

  // `index` is the run within the chunk (high 16 bits) and the slot within
  // the run (low 16).
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

  // `chunk_bytes` a multiple of 64 KiB; `spares`: empty chunks kept with
  // their VRAM for the next run that needs one, instead of released.
  SlotAllocator(uint64_t chunk_bytes, uint32_t chunks, uint32_t spares, MapChunk map,
                ReleaseChunk release);

  SlotAllocator(const SlotAllocator &) = delete;
  SlotAllocator &operator=(const SlotAllocator &) = delete;

  // The class of a stored length (1 to 4096 bytes), and its slot size.
  static uint16_t class_of(uint32_t bytes) { return static_cast<uint16_t>((bytes - 1) / granule); }
  static uint32_t class_bytes(uint16_t cls) { return (cls + 1u) * granule; }
  static uint32_t slots_per_run(uint16_t cls) { return run_bytes / class_bytes(cls); }

  uint64_t chunk_bytes() const { return chunk_bytes_; }
  uint32_t chunks() const { return static_cast<uint32_t>(chunks_.size()); }
  uint32_t runs_per_chunk() const { return runs_per_chunk_; }
  // Byte offset of a slot in the VRAM range the chunks are cut from.
  uint64_t offset(const Slot &s) const
  {
    return uint64_t{s.chunk} * chunk_bytes_ + uint64_t{s.index >> 16} * run_bytes +
           uint64_t{s.index & 0xffff} * class_bytes(s.cls);
  }

  // A slot for `bytes` (1 to 4096), or nothing when the class has no free
  // slot and no run can be had: every chunk full, or map() failed, or
  // (`may_map` false) no chunk already in use has a free run.
  std::optional<Slot> allocate(uint32_t bytes, void *ctx = nullptr, bool may_map = true);

  // Gives a slot back.  A run left empty goes back to its chunk, and a
  // chunk left empty to the spares, or is released.
  void free(const Slot &slot, void *ctx = nullptr);

  // Compaction.  If the chunk in use with the least in it could fit into
  // the free room of the others, marks it as being evacuated (no new page
  // goes into it) and returns it.  The caller moves each of its pages to a
  // slot from allocate(..., may_map = false) and frees the old one; the
  // last free() releases the chunk.  finish_evacuation() puts a chunk that
  // was not emptied back into service, and says whether it had been
  // emptied.  A chunk that could not be emptied (its pages' size classes
  // had no room elsewhere) is not chosen again until a chunk is mapped or
  // released.
  std::optional<uint32_t> start_evacuation();
  bool finish_evacuation(uint32_t chunk);

  struct ClassStats {
    uint32_t runs = 0;
    uint64_t used_slots = 0;
    uint64_t free_slots = 0;
  };
  struct Stats {
    uint32_t chunks_in_use = 0; // chunks holding pages (or being evacuated)
    uint32_t spare_chunks = 0;  // empty, VRAM kept
    uint64_t runs_in_use = 0;
    uint64_t slot_bytes = 0; // bytes of the slots in use
    uint64_t vram_bytes = 0; // VRAM held: both kinds of chunk
  };
  Stats stats() const;
  ClassStats class_stats(uint16_t cls) const;
  // Host memory this bookkeeping holds (allocated at construction).
  uint64_t host_bytes() const
  {
    return slot_bits_.size() * 8 + runs_.size() * sizeof(Run) + chunks_.size() * sizeof(Chunk) +
           (run_bits_.size() + open_chunks_.size() + absent_bits_.size() + stuck_bits_.size()) * 8 +
           spare_.capacity() * 4;
  }

private:
  enum class State : uint8_t { absent, mapping, spare, in_use, evacuating, releasing };
  struct Chunk {
    std::atomic<State> state{State::absent}; // written under pool_mu_
    uint32_t used_runs = 0;                  // guarded by pool_mu_
    std::atomic<uint64_t> used_bytes{0};     // slot bytes in use
  };
  // Guarded by its class's lock.  A run of a chunk being evacuated stays
  // on its class's list; allocate() passes over it.
  struct Run {
    uint16_t cls = 0;
    uint16_t used = 0;
    uint16_t hint = 0;   // a word of the bitmap that may have a free slot
    bool linked = false; // on its class's list of runs with free slots
    int64_t prev = -1, next = -1;
  };
  struct Class {
    mutable std::mutex mu;
    int64_t head = -1; // runs with a free slot
    uint32_t runs = 0;
    uint64_t used = 0;
  };

  uint32_t chunk_of(uint32_t run) const { return run / runs_per_chunk_; }
  std::span<uint64_t> bits(uint32_t run)
  {
    return std::span(slot_bits_).subspan(size_t{run} * words_per_run, words_per_run);
  }
  static constexpr size_t words_per_run = run_bytes / granule / 64;
  void link(Class &c, uint32_t run);
  void unlink(Class &c, uint32_t run);
  // With the class's lock held: a run for class `cls`, in the lowest
  // chunk in use with one free, else a spare or a newly mapped chunk.
  std::optional<uint32_t> take_run(uint16_t cls, void *ctx, bool may_map);
  // With its class's lock held: the run is empty; its chunk may go.
  void give_back_run(uint32_t run, void *ctx);
  uint32_t take_slot(uint32_t run);
  // pool_mu_ held: a chunk in use has a free run again, or none.
  void note_free_runs(uint32_t chunk);

  uint64_t chunk_bytes_;
  uint32_t runs_per_chunk_;
  size_t run_words_per_chunk_; // words of run_bits_ per chunk
  uint32_t spares_wanted_;
  MapChunk map_;
  ReleaseChunk release_;
  std::vector<Chunk> chunks_;
  std::vector<Run> runs_;
  std::vector<uint64_t> slot_bits_; // per run: which slots are in use
  std::array<Class, class_count> classes_;

  mutable std::mutex pool_mu_;
  std::vector<uint64_t> run_bits_;    // per chunk: which runs are in use
  std::vector<uint64_t> open_chunks_; // chunks in use with a free run
  std::vector<uint64_t> absent_bits_; // chunks with no VRAM
  std::vector<uint64_t> stuck_bits_;  // chunks an evacuation could not empty
  std::vector<uint32_t> spare_;       // empty chunks with VRAM
  uint32_t in_use_ = 0;               // chunks in_use or evacuating
  uint32_t mapped_ = 0;               // chunks with VRAM
  uint64_t runs_in_use_ = 0;
  std::atomic<uint64_t> slot_bytes_{0};
};

} // namespace vram::compress
