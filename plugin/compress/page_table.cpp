#include "compress/page_table.hpp"

#include <cstring>

namespace vram::compress {

std::optional<uint64_t> same_filled(std::span<const std::byte> page)
{
  if (page.size() < 8 || page.size() % 8 != 0) return std::nullopt;
  uint64_t first;
  std::memcpy(&first, page.data(), 8);
  for (size_t i = 8; i < page.size(); i += 8) {
    uint64_t v;
    std::memcpy(&v, page.data() + i, 8);
    if (v != first) return std::nullopt;
  }
  return first;
}

PageTable::PageTable(uint64_t pages) : pages_(pages), entries_(std::make_unique<Entry[]>(pages)) {}

PageEntry PageTable::get(uint64_t page) const
{
  const uint64_t w0 = entries_[page].w0.load(std::memory_order_relaxed);
  const uint64_t w1 = entries_[page].w1.load(std::memory_order_relaxed);
  PageEntry e;
  e.kind = kind_of(w0);
  if (e.kind == PageEntry::Kind::same) {
    e.value = w1;
  } else if (e.kind == PageEntry::Kind::stored) {
    e.length = static_cast<uint16_t>((w0 >> 8) & 0x1fff);
    e.slot.cls = static_cast<uint16_t>((w0 >> 24) & 0xff);
    e.slot.chunk = static_cast<uint32_t>(w1 >> 32);
    e.slot.index = static_cast<uint32_t>(w1);
  }
  return e;
}

void PageTable::set(uint64_t page, const PageEntry &e)
{
  const PageEntry old = get(page);
  auto count = [&](const PageEntry &x, int64_t sign) {
    const auto d = static_cast<uint64_t>(sign);
    if (x.kind == PageEntry::Kind::same) same_.fetch_add(d, std::memory_order_relaxed);
    if (x.kind == PageEntry::Kind::stored) {
      stored_.fetch_add(d, std::memory_order_relaxed);
      if (x.whole()) whole_.fetch_add(d, std::memory_order_relaxed);
      compressed_bytes_.fetch_add(d * x.length, std::memory_order_relaxed);
    }
  };
  count(old, -1);
  count(e, +1);
  uint64_t w0 = static_cast<uint64_t>(e.kind), w1 = 0;
  if (e.kind == PageEntry::Kind::same) {
    w1 = e.value;
  } else if (e.kind == PageEntry::Kind::stored) {
    w0 |= uint64_t{e.length} << 8 | uint64_t{e.slot.cls} << 24;
    w1 = uint64_t{e.slot.chunk} << 32 | e.slot.index;
  }
  entries_[page].w1.store(w1, std::memory_order_relaxed);
  entries_[page].w0.store(w0, std::memory_order_relaxed);
}

PageTable::Stats PageTable::stats() const
{
  Stats s;
  s.same_pages = same_.load(std::memory_order_relaxed);
  s.stored_pages = stored_.load(std::memory_order_relaxed);
  s.whole_pages = whole_.load(std::memory_order_relaxed);
  s.compressed_bytes = compressed_bytes_.load(std::memory_order_relaxed);
  return s;
}

} // namespace vram::compress
