#include "lazy/chunk_residency.hpp"

#include <bit>
#include <stdexcept>

namespace vram {
namespace {

constexpr uint64_t bits_per_word = 64;

// Calls fn(word, mask) for the bits [first, last) of a bitmap.
template <typename Fn> void for_each_word(uint64_t first, uint64_t last, Fn fn)
{
  while (first < last) {
    const uint64_t word = first / bits_per_word;
    const uint64_t lo = first % bits_per_word;
    const uint64_t hi = std::min<uint64_t>(bits_per_word, lo + (last - first));
    const uint64_t mask =
      (hi - lo == bits_per_word) ? ~uint64_t{0} : ((uint64_t{1} << (hi - lo)) - 1) << lo;
    fn(word, mask);
    first += hi - lo;
  }
}

} // namespace

ChunkResidency::ChunkResidency(uint64_t export_size, uint64_t chunk_size)
  : chunk_size_(chunk_size), chunks_(chunk_size ? (export_size + chunk_size - 1) / chunk_size : 0)
{
  if (chunk_size == 0 || chunk_size % (bits_per_word * block_size) != 0)
    throw std::invalid_argument("chunk size must be a multiple of 256 KiB");
  // Whole chunks' worth of bits, so no word is shared by two chunks.
  const uint64_t words = chunks_.size() * (chunk_size / block_size / bits_per_word);
  bits_.reset(new std::atomic<uint64_t>[words]);
  for (uint64_t i = 0; i < words; ++i)
    bits_[i].store(0, std::memory_order_relaxed);
}

void ChunkResidency::mark(size_t chunk, uint64_t offset, uint64_t length)
{
  const uint64_t first = offset / block_size;
  const uint64_t last = (offset + length + block_size - 1) / block_size;
  uint64_t added = 0;
  for_each_word(first, last, [&](uint64_t word, uint64_t mask) {
    const uint64_t old = bits_[word].fetch_or(mask, std::memory_order_relaxed);
    added += std::popcount(mask & ~old);
  });
  if (added) chunks_[chunk].live.fetch_add(added, std::memory_order_relaxed);
}

uint64_t ChunkResidency::unmark(size_t chunk, uint64_t offset, uint64_t length)
{
  // Only blocks the range covers entirely.
  const uint64_t first = (offset + block_size - 1) / block_size;
  const uint64_t last = (offset + length) / block_size;
  uint64_t removed = 0;
  if (first < last)
    for_each_word(first, last, [&](uint64_t word, uint64_t mask) {
      const uint64_t old = bits_[word].fetch_and(~mask, std::memory_order_relaxed);
      removed += std::popcount(mask & old);
    });
  Chunk &c = chunks_[chunk];
  if (removed == 0) return c.live.load(std::memory_order_relaxed);
  return c.live.fetch_sub(removed, std::memory_order_relaxed) - removed;
}

void ChunkResidency::set_mapped(Chunk &c, bool mapped)
{
  c.mapped = mapped;
  if (mapped) mapped_.fetch_add(1, std::memory_order_relaxed);
  else mapped_.fetch_sub(1, std::memory_order_relaxed);
}

} // namespace vram
