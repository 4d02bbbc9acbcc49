// Reader-writer locks for blocks, striped: block b is guarded by stripe
// b mod N.  Reads of a block share its stripe; anything that changes a
// block holds the stripe exclusively (the integrity filter: its data and
// its CRC together; the compressed store: its page and its table entry),
// so a read never sees one changed without the other.
//
// A request locks the stripes of all its blocks, in ascending stripe
// order and each once, so two requests can never wait on each other in a
// cycle.  Consecutive blocks use consecutive stripes: requests on nearby
// blocks (a swap cluster written by several connections) do not collide.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>

namespace vram {

class StripeLocks {
public:
  enum class Mode { shared, exclusive };

  // `stripes` is rounded up to a power of two.
  explicit StripeLocks(size_t stripes = 4096);

  // Holds the stripes of blocks first..last until destroyed.
  class Guard {
  public:
    Guard(const Guard &) = delete;
    Guard &operator=(const Guard &) = delete;
    ~Guard();

  private:
    friend class StripeLocks;
    Guard(const StripeLocks &locks, Mode mode, uint64_t first, uint64_t last);
    void for_each(auto &&f) const;
    const StripeLocks &locks_;
    Mode mode_;
    // Up to two ascending runs of stripe indexes (two when the span wraps).
    size_t run1_begin_ = 0, run1_end_ = 0, run2_begin_ = 0, run2_end_ = 0;
  };

  [[nodiscard]] Guard shared(uint64_t first, uint64_t last) const
  {
    return Guard(*this, Mode::shared, first, last);
  }
  [[nodiscard]] Guard exclusive(uint64_t first, uint64_t last) const
  {
    return Guard(*this, Mode::exclusive, first, last);
  }

  size_t stripes() const { return mask_ + 1; }

private:
  struct alignas(64) Stripe {
    std::shared_mutex mutex;
  };
  size_t mask_;
  std::unique_ptr<Stripe[]> stripes_;
};

} // namespace vram
