// What each 4 KiB page of a compressed export holds: nothing (it reads as
// zeroes), one 8-byte value repeated (same-filled: no VRAM at all), or a
// slot of VRAM with the page compressed, or whole where it would not
// compress.  Sixteen bytes a page (as zram's table), allocated at start.
//
// Entries are changed only with the page's request lock held (the
// caller's); they are atomic words so that compaction can scan the table
// for a chunk's pages without taking every lock, and checks each page
// again under its lock before it moves it.
#pragma once

#include "compress/slot_allocator.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace vram::compress {

struct PageEntry {
  enum class Kind : uint8_t { zero, same, stored };
  Kind kind = Kind::zero;
  uint64_t value = 0;       // same: the 8 bytes repeated
  SlotAllocator::Slot slot; // stored: where
  uint16_t length = 0;      // stored: bytes in the slot (4096 when whole)
  bool whole() const { return kind == Kind::stored && length == SlotAllocator::page_bytes; }
  bool operator==(const PageEntry &) const = default;
};

// The value a page is filled with, if every 8 bytes of it are the same.
std::optional<uint64_t> same_filled(std::span<const std::byte> page);

class PageTable {
public:
  explicit PageTable(uint64_t pages);

  uint64_t pages() const { return pages_; }
  uint64_t host_bytes() const { return pages_ * sizeof(Entry); }
  PageEntry get(uint64_t page) const;
  // Replaces the entry (the caller has given back the old slot, or will).
  void set(uint64_t page, const PageEntry &entry);

  // zram's mm_stat, more or less.
  struct Stats {
    uint64_t same_pages = 0;       // same-filled, zero pages written included
    uint64_t stored_pages = 0;     // in VRAM, compressed or whole
    uint64_t whole_pages = 0;      // of those, stored whole (incompressible)
    uint64_t compressed_bytes = 0; // bytes stored in VRAM (lengths, not slots)
    uint64_t original_bytes() const { return (same_pages + stored_pages) * 4096; }
  };
  Stats stats() const;

  // fn(page, entry) for each stored page whose slot is in `chunk`; the
  // entries may change meanwhile: check each again under its lock.
  template <typename Fn> void for_each_in_chunk(uint32_t chunk, Fn fn) const
  {
    for (uint64_t p = 0; p < pages_; ++p) {
      const uint64_t w0 = entries_[p].w0.load(std::memory_order_relaxed);
      if (kind_of(w0) == PageEntry::Kind::stored &&
          static_cast<uint32_t>(entries_[p].w1.load(std::memory_order_relaxed) >> 32) == chunk)
        fn(p, get(p));
    }
  }

private:
  struct Entry {
    std::atomic<uint64_t> w0{0}; // kind | length | class
    std::atomic<uint64_t> w1{0}; // the value, or chunk << 32 | slot index
  };
  static PageEntry::Kind kind_of(uint64_t w0) { return static_cast<PageEntry::Kind>(w0 & 3); }

  uint64_t pages_;
  std::unique_ptr<Entry[]> entries_;
  std::atomic<uint64_t> same_{0}, stored_{0}, whole_{0}, compressed_bytes_{0};
};

} // namespace vram::compress
