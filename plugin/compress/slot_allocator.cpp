#include "compress/slot_allocator.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace vram::compress {
namespace {

void set_bit(std::vector<uint64_t> &bits, uint32_t i) { bits[i / 64] |= uint64_t{1} << (i % 64); }
void clear_bit(std::vector<uint64_t> &bits, uint32_t i)
{
  bits[i / 64] &= ~(uint64_t{1} << (i % 64));
}

// The lowest set bit's index.
std::optional<uint32_t> lowest(const std::vector<uint64_t> &bits)
{
  for (size_t w = 0; w < bits.size(); ++w)
    if (bits[w])
      return static_cast<uint32_t>(w * 64 + static_cast<size_t>(std::countr_zero(bits[w])));
  return std::nullopt;
}

} // namespace

SlotAllocator::SlotAllocator(uint64_t chunk_bytes, uint32_t chunks, uint32_t spares, MapChunk map,
                             ReleaseChunk release)
  : chunk_bytes_(chunk_bytes), runs_per_chunk_(static_cast<uint32_t>(chunk_bytes / run_bytes)),
    run_words_per_chunk_((runs_per_chunk_ + 63) / 64), spares_wanted_(spares), map_(std::move(map)),
    release_(std::move(release)), chunks_(chunks), runs_(size_t{chunks} * runs_per_chunk_),
    slot_bits_(runs_.size() * words_per_run), run_bits_(size_t{chunks} * run_words_per_chunk_),
    open_chunks_((chunks + 63) / 64), absent_bits_((chunks + 63) / 64),
    stuck_bits_((chunks + 63) / 64)
{
  if (chunk_bytes == 0 || chunk_bytes % run_bytes != 0 || chunk_bytes / run_bytes > 0x10000)
    throw std::invalid_argument("slot allocator: chunk size must be a multiple of 64 KiB, "
                                "at most 4 GiB");
  for (uint32_t i = 0; i < chunks; ++i)
    set_bit(absent_bits_, i);
  spare_.reserve(chunks);
}

void SlotAllocator::link(Class &c, uint32_t run)
{
  Run &r = runs_[run];
  r.prev = -1;
  r.next = c.head;
  if (c.head >= 0) runs_[static_cast<size_t>(c.head)].prev = run;
  c.head = run;
  r.linked = true;
}

void SlotAllocator::unlink(Class &c, uint32_t run)
{
  Run &r = runs_[run];
  if (r.prev >= 0) runs_[static_cast<size_t>(r.prev)].next = r.next;
  else c.head = r.next;
  if (r.next >= 0) runs_[static_cast<size_t>(r.next)].prev = r.prev;
  r.prev = r.next = -1;
  r.linked = false;
}

void SlotAllocator::note_free_runs(uint32_t chunk)
{
  if (chunks_[chunk].state.load(std::memory_order_relaxed) == State::in_use &&
      chunks_[chunk].used_runs < runs_per_chunk_)
    set_bit(open_chunks_, chunk);
  else clear_bit(open_chunks_, chunk);
}

std::optional<uint32_t> SlotAllocator::take_run(uint16_t cls, void *ctx, bool may_map)
{
  std::unique_lock lock(pool_mu_);
  uint32_t chunk = 0;
  if (const auto open = lowest(open_chunks_)) {
    chunk = *open;
  } else {
    if (!may_map) return std::nullopt;
    if (!spare_.empty()) {
      chunk = spare_.back();
      spare_.pop_back();
    } else if (const auto absent = lowest(absent_bits_)) {
      chunk = *absent;
      clear_bit(absent_bits_, chunk);
      chunks_[chunk].state.store(State::mapping, std::memory_order_relaxed);
      // Outside the chunks' lock (other classes go on), inside this class's.
      lock.unlock();
      const bool mapped = map_(chunk, ctx);
      lock.lock();
      if (!mapped) {
        chunks_[chunk].state.store(State::absent, std::memory_order_relaxed);
        set_bit(absent_bits_, chunk);
        return std::nullopt;
      }
      ++mapped_;
      std::fill(stuck_bits_.begin(), stuck_bits_.end(), 0); // room has changed
    } else {
      return std::nullopt;
    }
    Chunk &k = chunks_[chunk];
    k.state.store(State::in_use, std::memory_order_release);
    k.used_runs = 0;
    ++in_use_;
  }
  Chunk &k = chunks_[chunk];
  const auto rb =
    std::span(run_bits_).subspan(size_t{chunk} * run_words_per_chunk_, run_words_per_chunk_);
  uint32_t i = 0;
  while (i < runs_per_chunk_ && (rb[i / 64] >> (i % 64) & 1))
    ++i;
  if (i == runs_per_chunk_) throw std::logic_error("slot allocator: an open chunk has no free run");
  rb[i / 64] |= uint64_t{1} << (i % 64);
  ++k.used_runs;
  ++runs_in_use_;
  note_free_runs(chunk);
  lock.unlock();

  const uint32_t run = chunk * runs_per_chunk_ + i;
  Run &r = runs_[run];
  r.cls = cls;
  r.used = 0;
  r.hint = 0;
  // Slots past the class's last one are marked used, so a search never
  // finds them.
  auto b = bits(run);
  const uint32_t slots = slots_per_run(cls);
  for (size_t w = 0; w < b.size(); ++w) {
    const uint64_t first = w * 64;
    if (first + 64 <= slots) b[w] = 0;
    else if (first >= slots) b[w] = ~uint64_t{0};
    else b[w] = ~uint64_t{0} << (slots - first);
  }
  return run;
}

void SlotAllocator::give_back_run(uint32_t run, void *ctx)
{
  const uint32_t chunk = chunk_of(run), i = run % runs_per_chunk_;
  Chunk &k = chunks_[chunk];
  std::unique_lock lock(pool_mu_);
  run_bits_[size_t{chunk} * run_words_per_chunk_ + i / 64] &= ~(uint64_t{1} << (i % 64));
  --k.used_runs;
  --runs_in_use_;
  const State state = k.state.load(std::memory_order_relaxed);
  if (k.used_runs > 0 || (state != State::in_use && state != State::evacuating)) {
    note_free_runs(chunk);
    return;
  }
  // Its last run: the chunk goes to the spares, or back to the GPU.
  --in_use_;
  clear_bit(open_chunks_, chunk);
  if (spare_.size() < spares_wanted_) {
    k.state.store(State::spare, std::memory_order_relaxed);
    spare_.push_back(chunk);
    return;
  }
  k.state.store(State::releasing, std::memory_order_relaxed);
  lock.unlock();
  const bool released = release_(chunk, ctx);
  lock.lock();
  if (released) {
    k.state.store(State::absent, std::memory_order_relaxed);
    set_bit(absent_bits_, chunk);
    --mapped_;
    std::fill(stuck_bits_.begin(), stuck_bits_.end(), 0); // room has changed
  } else {
    // Still holds VRAM: a spare after all.
    k.state.store(State::spare, std::memory_order_relaxed);
    spare_.push_back(chunk);
  }
}

uint32_t SlotAllocator::take_slot(uint32_t run)
{
  Run &r = runs_[run];
  auto b = bits(run);
  for (size_t n = 0; n < b.size(); ++n) {
    const size_t w = (r.hint + n) % b.size();
    if (b[w] != ~uint64_t{0}) {
      const int bit = std::countr_one(b[w]);
      b[w] |= uint64_t{1} << bit;
      r.hint = static_cast<uint16_t>(w);
      ++r.used;
      return static_cast<uint32_t>(w * 64 + static_cast<size_t>(bit));
    }
  }
  throw std::logic_error("slot allocator: a run on the free list has no free slot");
}

std::optional<SlotAllocator::Slot> SlotAllocator::allocate(uint32_t bytes, void *ctx, bool may_map)
{
  if (bytes == 0 || bytes > page_bytes) return std::nullopt;
  const uint16_t cls = class_of(bytes);
  Class &c = classes_[cls];
  const std::lock_guard lock(c.mu);
  // Runs of a chunk being emptied take nothing new.
  int64_t run = c.head;
  while (run >= 0 && chunks_[chunk_of(static_cast<uint32_t>(run))].state.load(
                       std::memory_order_acquire) == State::evacuating)
    run = runs_[static_cast<size_t>(run)].next;
  if (run < 0) {
    const auto got = take_run(cls, ctx, may_map);
    if (!got) return std::nullopt;
    ++c.runs;
    link(c, *got);
    run = *got;
  }
  const auto r = static_cast<uint32_t>(run);
  const uint32_t index = take_slot(r);
  ++c.used;
  if (runs_[r].used == slots_per_run(cls)) unlink(c, r);
  const uint32_t chunk = chunk_of(r);
  chunks_[chunk].used_bytes.fetch_add(class_bytes(cls), std::memory_order_relaxed);
  slot_bytes_.fetch_add(class_bytes(cls), std::memory_order_relaxed);
  return Slot{chunk, (r % runs_per_chunk_) << 16 | index, cls};
}

void SlotAllocator::free(const Slot &slot, void *ctx)
{
  if (slot.chunk >= chunks_.size() || (slot.index >> 16) >= runs_per_chunk_ ||
      slot.cls >= class_count || (slot.index & 0xffff) >= slots_per_run(slot.cls))
    throw std::logic_error("slot allocator: freeing a slot outside the allocator");
  Class &c = classes_[slot.cls];
  const std::lock_guard lock(c.mu);
  const uint32_t run = slot.chunk * runs_per_chunk_ + (slot.index >> 16);
  Run &r = runs_[run];
  if (r.used == 0 || r.cls != slot.cls)
    throw std::logic_error("slot allocator: freeing a slot of a run not in its class");
  const uint32_t i = slot.index & 0xffff;
  uint64_t &word = bits(run)[i / 64];
  const uint64_t mask = uint64_t{1} << (i % 64);
  if (!(word & mask)) throw std::logic_error("slot allocator: freeing a free slot");
  word &= ~mask;
  --r.used;
  --c.used;
  r.hint = static_cast<uint16_t>(i / 64);
  chunks_[slot.chunk].used_bytes.fetch_sub(class_bytes(slot.cls), std::memory_order_relaxed);
  slot_bytes_.fetch_sub(class_bytes(slot.cls), std::memory_order_relaxed);
  if (r.used == 0) {
    if (r.linked) unlink(c, run);
    --c.runs;
    give_back_run(run, ctx);
  } else if (!r.linked) {
    link(c, run);
  }
}

std::optional<uint32_t> SlotAllocator::start_evacuation()
{
  const std::lock_guard lock(pool_mu_);
  if (in_use_ < 2) return std::nullopt;
  std::optional<uint32_t> best;
  uint64_t best_used = 0;
  for (uint32_t i = 0; i < chunks_.size(); ++i) {
    if (chunks_[i].state.load(std::memory_order_relaxed) != State::in_use ||
        (stuck_bits_[i / 64] >> (i % 64) & 1))
      continue;
    const uint64_t used = chunks_[i].used_bytes.load(std::memory_order_relaxed);
    if (!best || used <= best_used) best = i, best_used = used; // the highest of equals
  }
  if (!best) return std::nullopt;
  // Room in the other chunks in use (whether it is in the right size
  // classes shows as the pages move).
  const uint64_t others = uint64_t{in_use_ - 1} * chunk_bytes_;
  const uint64_t used_elsewhere = slot_bytes_.load(std::memory_order_relaxed) - best_used;
  if (others < used_elsewhere + best_used) return std::nullopt;
  chunks_[*best].state.store(State::evacuating, std::memory_order_release);
  clear_bit(open_chunks_, *best);
  return best;
}

bool SlotAllocator::finish_evacuation(uint32_t chunk)
{
  const std::lock_guard lock(pool_mu_);
  Chunk &k = chunks_[chunk];
  // Emptied and given back (and perhaps taken again since): nothing to do.
  if (k.state.load(std::memory_order_relaxed) != State::evacuating) return true;
  k.state.store(State::in_use, std::memory_order_release);
  note_free_runs(chunk);
  set_bit(stuck_bits_, chunk);
  return false;
}

SlotAllocator::ClassStats SlotAllocator::class_stats(uint16_t cls) const
{
  const Class &c = classes_[cls];
  const std::lock_guard lock(c.mu);
  return ClassStats{c.runs, c.used, uint64_t{c.runs} * slots_per_run(cls) - c.used};
}

SlotAllocator::Stats SlotAllocator::stats() const
{
  const std::lock_guard lock(pool_mu_);
  return Stats{in_use_, static_cast<uint32_t>(spare_.size()), runs_in_use_,
               slot_bytes_.load(std::memory_order_relaxed), uint64_t{mapped_} * chunk_bytes_};
}

} // namespace vram::compress
