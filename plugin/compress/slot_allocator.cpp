#include "compress/slot_allocator.hpp"

#include <bit>
#include <stdexcept>

namespace vram::compress {

SlotAllocator::SlotAllocator(uint64_t chunk_bytes, uint32_t chunks, uint32_t spares, MapChunk map,
                             ReleaseChunk release)
  : chunk_bytes_(chunk_bytes), spares_wanted_(spares),
    words_per_chunk_((chunk_bytes / granule + 63) / 64), map_(std::move(map)),
    release_(std::move(release)), chunks_(chunks), bitmap_(words_per_chunk_ * chunks)
{
  if (chunk_bytes == 0 || chunk_bytes % page_bytes != 0)
    throw std::invalid_argument("slot allocator: chunk size must be a multiple of 4 KiB");
  absent_.reserve(chunks);
  spare_.reserve(chunks);
  for (uint32_t i = chunks; i-- > 0;)
    absent_.push_back(i);
}

void SlotAllocator::link(Class &c, uint32_t chunk)
{
  Chunk &k = chunks_[chunk];
  k.prev = -1;
  k.next = c.head;
  if (c.head >= 0) chunks_[static_cast<size_t>(c.head)].prev = chunk;
  c.head = chunk;
}

void SlotAllocator::unlink(Class &c, uint32_t chunk)
{
  Chunk &k = chunks_[chunk];
  if (k.prev >= 0) chunks_[static_cast<size_t>(k.prev)].next = k.next;
  else c.head = k.next;
  if (k.next >= 0) chunks_[static_cast<size_t>(k.next)].prev = k.prev;
  k.prev = k.next = -1;
}

std::optional<uint32_t> SlotAllocator::take_chunk(uint16_t cls, void *ctx)
{
  uint32_t chunk = 0;
  bool needs_vram = false;
  {
    const std::lock_guard lock(pool_mu_);
    if (!spare_.empty()) {
      chunk = spare_.back();
      spare_.pop_back();
    } else if (!absent_.empty()) {
      chunk = absent_.back();
      absent_.pop_back();
      needs_vram = true;
    } else {
      return std::nullopt;
    }
    ++in_classes_;
  }
  // Outside the pool's lock (other classes go on), inside this class's.
  if (needs_vram && !map_(chunk, ctx)) {
    const std::lock_guard lock(pool_mu_);
    --in_classes_;
    absent_.push_back(chunk);
    return std::nullopt;
  }
  Chunk &k = chunks_[chunk];
  k.state = State::in_class;
  k.cls = cls;
  k.used = 0;
  k.hint = 0;
  // Slots past the class's last one are marked used, so a search never
  // finds them.
  auto b = bits(chunk);
  const uint32_t slots = slots_per_chunk(cls);
  for (size_t w = 0; w < b.size(); ++w) {
    const uint64_t first = w * 64;
    if (first + 64 <= slots) b[w] = 0;
    else if (first >= slots) b[w] = ~uint64_t{0};
    else b[w] = ~uint64_t{0} << (slots - first);
  }
  return chunk;
}

void SlotAllocator::give_back_chunk(uint32_t chunk, void *ctx)
{
  Chunk &k = chunks_[chunk];
  bool keep = false;
  {
    const std::lock_guard lock(pool_mu_);
    keep = spare_.size() < spares_wanted_;
    --in_classes_;
  }
  k.state = State::absent;
  k.used = 0;
  if (!keep && !release_(chunk, ctx)) keep = true; // still holds VRAM: a spare after all
  const std::lock_guard lock(pool_mu_);
  if (keep) {
    k.state = State::spare;
    spare_.push_back(chunk);
  } else {
    absent_.push_back(chunk);
  }
}

uint32_t SlotAllocator::take_slot(uint32_t chunk)
{
  Chunk &k = chunks_[chunk];
  auto b = bits(chunk);
  for (size_t n = 0; n < b.size(); ++n) {
    const size_t w = (k.hint + n) % b.size();
    if (b[w] != ~uint64_t{0}) {
      const int bit = std::countr_one(b[w]);
      b[w] |= uint64_t{1} << bit;
      k.hint = static_cast<uint32_t>(w);
      ++k.used;
      return static_cast<uint32_t>(w * 64 + static_cast<size_t>(bit));
    }
  }
  throw std::logic_error("slot allocator: a chunk on the free list has no free slot");
}

std::optional<SlotAllocator::Slot> SlotAllocator::allocate(uint32_t bytes, void *ctx)
{
  if (bytes == 0 || bytes > page_bytes) return std::nullopt;
  const uint16_t cls = class_of(bytes);
  Class &c = classes_[cls];
  const std::lock_guard lock(c.mu);
  if (c.head < 0) {
    const auto chunk = take_chunk(cls, ctx);
    if (!chunk) return std::nullopt;
    ++c.chunks;
    link(c, *chunk);
  }
  const auto chunk = static_cast<uint32_t>(c.head);
  const uint32_t index = take_slot(chunk);
  ++c.used;
  if (chunks_[chunk].used == slots_per_chunk(cls)) unlink(c, chunk);
  return Slot{chunk, index, cls};
}

void SlotAllocator::free(const Slot &slot, void *ctx)
{
  Class &c = classes_[slot.cls];
  const std::lock_guard lock(c.mu);
  Chunk &k = chunks_[slot.chunk];
  if ((k.state != State::in_class && k.state != State::evacuating) || k.cls != slot.cls)
    throw std::logic_error("slot allocator: freeing a slot of a chunk not in its class");
  uint64_t &word = bits(slot.chunk)[slot.index / 64];
  const uint64_t mask = uint64_t{1} << (slot.index % 64);
  if (!(word & mask)) throw std::logic_error("slot allocator: freeing a free slot");
  word &= ~mask;
  const bool was_full = k.used == slots_per_chunk(slot.cls);
  --k.used;
  --c.used;
  k.hint = slot.index / 64;
  if (k.used == 0) {
    if (k.state == State::in_class && !was_full) unlink(c, slot.chunk);
    --c.chunks;
    give_back_chunk(slot.chunk, ctx);
  } else if (was_full && k.state == State::in_class) {
    link(c, slot.chunk);
  }
}

std::optional<SlotAllocator::Evacuation>
SlotAllocator::start_evacuation(uint16_t cls, std::span<uint32_t> used, uint32_t slack)
{
  Class &c = classes_[cls];
  const std::lock_guard lock(c.mu);
  // The emptiest chunk has a free slot, so it is on the list.
  int64_t best = -1;
  for (int64_t i = c.head; i >= 0; i = chunks_[static_cast<size_t>(i)].next)
    if (best < 0 || chunks_[static_cast<size_t>(i)].used < chunks_[static_cast<size_t>(best)].used)
      best = i;
  if (best < 0) return std::nullopt;
  const auto chunk = static_cast<uint32_t>(best);
  Chunk &k = chunks_[chunk];
  const uint64_t capacity = uint64_t{c.chunks} * slots_per_chunk(cls);
  const uint64_t free_elsewhere = capacity - c.used - (slots_per_chunk(cls) - k.used);
  if (free_elsewhere < uint64_t{k.used} + slack) return std::nullopt;
  if (used.size() < k.used)
    throw std::invalid_argument("slot allocator: evacuation list too short");
  unlink(c, chunk);
  k.state = State::evacuating;
  uint32_t n = 0;
  const auto b = bits(chunk);
  const uint32_t slots = slots_per_chunk(cls);
  for (uint32_t i = 0; i < slots; ++i)
    if ((b[i / 64] >> (i % 64)) & 1u) used[n++] = i;
  return Evacuation{chunk, cls, n};
}

bool SlotAllocator::finish_evacuation(const Evacuation &e)
{
  Class &c = classes_[e.cls];
  const std::lock_guard lock(c.mu);
  Chunk &k = chunks_[e.chunk];
  // Emptied and given back (and perhaps taken again since): nothing to do.
  if (k.state != State::evacuating || k.cls != e.cls) return true;
  k.state = State::in_class;
  if (k.used < slots_per_chunk(e.cls)) link(c, e.chunk);
  return false;
}

SlotAllocator::ClassStats SlotAllocator::class_stats(uint16_t cls) const
{
  const Class &c = classes_[cls];
  const std::lock_guard lock(c.mu);
  return {c.chunks, c.used, uint64_t{c.chunks} * slots_per_chunk(cls) - c.used};
}

SlotAllocator::Stats SlotAllocator::stats() const
{
  Stats s;
  for (uint16_t cls = 0; cls < class_count; ++cls)
    s.slot_bytes += class_stats(cls).used_slots * class_bytes(cls);
  const std::lock_guard lock(pool_mu_);
  s.chunks_in_classes = in_classes_;
  s.spare_chunks = static_cast<uint32_t>(spare_.size());
  s.vram_bytes = (uint64_t{s.chunks_in_classes} + s.spare_chunks) * chunk_bytes_;
  return s;
}

} // namespace vram::compress
