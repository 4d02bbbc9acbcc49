#include "compress/compressed_export.hpp"

#include "byte_size.hpp"
#include "logging.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vram::compress {

namespace {

constexpr uint64_t page_bytes = SlotAllocator::page_bytes;

std::string where(uint64_t page)
{
  return "page " + std::to_string(page) + " (offset " + std::to_string(page * page_bytes) + ")";
}

} // namespace

Worker::Worker(const CodecSetting &setting, uint64_t max_request)
  : codec(setting), page(page_bytes), packed(page_bytes), batch(batch_pages * page_bytes),
    entries(batch_pages)
{
  pending.reserve(max_request / page_bytes + 2);
  copies.reserve(batch_pages);
}

CompressedExport::CompressedExport(const Settings &settings, ChunkDevice &device)
  : settings_(settings), device_(device),
    slots_(
      settings.chunk_bytes, settings.chunks, settings.spare_chunks,
      [this](uint32_t chunk, void *lane) { return device_.map(chunk, lane); },
      [this](uint32_t chunk, void *lane) { return device_.release(chunk, lane); }),
    table_(settings.size / page_bytes), locks_(4096)
{
}

int CompressedExport::encode(Worker &w, std::span<const std::byte> page, PageEntry &entry,
                             std::string &message)
{
  if (const auto value = same_filled(page)) {
    entry = PageEntry{PageEntry::Kind::same, *value, {}, 0};
    return 0;
  }
  if (w.copies.size() == Worker::batch_pages || w.batch_used + page_bytes > w.batch.size())
    if (const int r = flush(w, message); r != 0) return r;
  const auto out = std::span(w.batch).subspan(w.batch_used, page_bytes);
  size_t n = w.codec.compress(page, out, settings_.whole_above);
  if (n == 0) {
    std::memcpy(out.data(), page.data(), page_bytes);
    n = page_bytes;
  }
  const auto got = slots_.allocate(static_cast<uint32_t>(n), w.lane);
  if (!got) {
    return no_room(message);
  }
  w.copies.push_back({slots_.offset(*got), out.data(), static_cast<uint32_t>(n)});
  w.batch_used += n;
  entry = PageEntry{PageEntry::Kind::stored, 0, *got, static_cast<uint16_t>(n)};
  return 0;
}

int CompressedExport::no_room(std::string &message) const
{
  message = "no VRAM left for another page: " + format_byte_size(slots_.stats().vram_bytes) +
            " of VRAM hold " + format_byte_size(table_.stats().original_bytes()) + " of pages";
  return ENOSPC;
}

int CompressedExport::flush(Worker &w, std::string &message)
{
  int r = 0;
  if (!w.copies.empty() && (r = device_.write_many(w.copies, w.lane)) != 0)
    message = "writing pages to VRAM: " + errno_text(r);
  w.copies.clear();
  w.batch_used = 0;
  return r;
}

int CompressedExport::store(Worker &w, std::span<const std::byte> bytes, SlotAllocator::Slot &slot,
                            std::string &message, bool may_map)
{
  const auto got = slots_.allocate(static_cast<uint32_t>(bytes.size()), w.lane, may_map);
  if (!got) {
    return no_room(message);
  }
  if (const int r = device_.write(slots_.offset(*got), bytes, w.lane); r != 0) {
    slots_.free(*got, w.lane);
    message = "writing a page to VRAM: " + errno_text(r);
    return r;
  }
  slot = *got;
  return 0;
}

int CompressedExport::decode(Worker &w, uint64_t page, const PageEntry &e, std::span<std::byte> out,
                             std::string &message)
{
  const auto packed = std::span(w.packed).first(e.kind == PageEntry::Kind::stored ? e.length : 0);
  if (!packed.empty())
    if (const int r = device_.read(slots_.offset(e.slot), packed, w.lane); r != 0) {
      message = "reading " + where(page) + " from VRAM: " + errno_text(r);
      return r;
    }
  return expand(w, page, e, packed, out, message);
}

int CompressedExport::expand(Worker &w, uint64_t page, const PageEntry &e,
                             std::span<const std::byte> bytes, std::span<std::byte> out,
                             std::string &message)
{
  switch (e.kind) {
  case PageEntry::Kind::zero: std::memset(out.data(), 0, page_bytes); return 0;
  case PageEntry::Kind::same:
    for (size_t i = 0; i < page_bytes; i += 8)
      std::memcpy(out.data() + i, &e.value, 8);
    return 0;
  case PageEntry::Kind::stored: break;
  }
  if (e.whole()) {
    std::memcpy(out.data(), bytes.data(), page_bytes);
    return 0;
  }
  if (!w.codec.decompress(bytes, out.first(page_bytes))) {
    message = where(page) + " does not decompress: its copy in VRAM is damaged";
    return EIO;
  }
  return 0;
}

int CompressedExport::read(Worker &w, std::span<std::byte> buf, uint64_t offset,
                           std::string &message)
{
  if (offset > settings_.size || buf.size() > settings_.size - offset) {
    message = "read beyond the end of the export";
    return EINVAL;
  }
  if (buf.empty()) return 0;
  const uint64_t end = offset + buf.size();
  const uint64_t first = offset / page_bytes, last = (end - 1) / page_bytes;
  const auto guard = locks_.shared(first, last);
  // A batch of pages at a time: their stored bytes copied from VRAM at
  // once, then each page expanded.
  for (uint64_t group = first; group <= last; group += Worker::batch_pages) {
    const uint64_t group_last = std::min(last, group + Worker::batch_pages - 1);
    w.copies.clear();
    size_t used = 0;
    for (uint64_t p = group; p <= group_last; ++p) {
      const PageEntry e = w.entries[p - group] = table_.get(p);
      if (e.kind != PageEntry::Kind::stored) continue;
      w.copies.push_back({slots_.offset(e.slot), w.batch.data() + used, e.length});
      used += e.length;
    }
    if (!w.copies.empty())
      if (const int r = device_.read_many(w.copies, w.lane); r != 0) {
        message = "reading pages " + std::to_string(group) + " to " + std::to_string(group_last) +
                  " from VRAM: " + errno_text(r);
        w.copies.clear();
        return r;
      }
    w.copies.clear();
    used = 0;
    for (uint64_t p = group; p <= group_last; ++p) {
      const PageEntry &e = w.entries[p - group];
      const auto bytes =
        std::span(w.batch).subspan(used, e.kind == PageEntry::Kind::stored ? e.length : 0);
      used += bytes.size();
      const uint64_t a = std::max(offset, p * page_bytes), b = std::min(end, (p + 1) * page_bytes);
      const auto dst = buf.subspan(a - offset, b - a);
      if (b - a == page_bytes) {
        if (const int r = expand(w, p, e, bytes, dst, message); r != 0) return r;
      } else {
        if (const int r = expand(w, p, e, bytes, w.page, message); r != 0) return r;
        std::memcpy(dst.data(), w.page.data() + (a - p * page_bytes), b - a);
      }
    }
  }
  return 0;
}

void CompressedExport::forget(Worker &w)
{
  w.copies.clear(); // not copied yet: their slots go back below
  w.batch_used = 0;
  for (const auto &pending : w.pending)
    if (pending.entry.kind == PageEntry::Kind::stored) slots_.free(pending.entry.slot, w.lane);
  w.pending.clear();
}

int CompressedExport::change(Worker &w, const std::byte *data, uint64_t length, uint64_t offset,
                             std::string &message)
{
  if (offset > settings_.size || length > settings_.size - offset) {
    message = "write beyond the end of the export";
    return EINVAL;
  }
  if (length == 0) return 0;
  if (data && length > settings_.max_request) {
    message = "request of " + std::to_string(length) + " bytes, larger than the " +
              std::to_string(settings_.max_request) + " the export was made for";
    return EINVAL;
  }
  const uint64_t end = offset + length;
  const uint64_t first = offset / page_bytes, last = (end - 1) / page_bytes;
  const auto guard = locks_.exclusive(first, last);
  // Every new page goes to `pending` first (for a zero, only the partial
  // pages at its ends: whole ones become empty and need nothing), its
  // bytes to VRAM a batch at a time.
  w.pending.clear();
  w.copies.clear();
  w.batch_used = 0;
  for (uint64_t p = first; p <= last; ++p) {
    const uint64_t page_at = p * page_bytes;
    const uint64_t a = std::max(offset, page_at), b = std::min(end, page_at + page_bytes);
    const bool whole = b - a == page_bytes;
    if (whole && !data) {
      if (p < last) p = last - 1; // straight to the last page
      continue;
    }
    std::span<const std::byte> contents;
    if (whole) {
      contents = std::span(data + (a - offset), page_bytes);
    } else {
      // Part of a page: the rest of it as it is now.
      if (const int r = decode(w, p, table_.get(p), w.page, message); r != 0) {
        forget(w);
        return r;
      }
      if (data) std::memcpy(w.page.data() + (a - page_at), data + (a - offset), b - a);
      else std::memset(w.page.data() + (a - page_at), 0, b - a);
      contents = w.page;
    }
    PageEntry entry;
    if (const int r = encode(w, contents, entry, message); r != 0) {
      forget(w);
      return r;
    }
    w.pending.push_back({p, entry});
  }
  if (const int r = flush(w, message); r != 0) {
    forget(w);
    return r;
  }
  // Every page is in place: now the table points at them.
  auto replace = [&](uint64_t p, const PageEntry &entry) {
    const PageEntry old = table_.get(p);
    table_.set(p, entry);
    if (old.kind == PageEntry::Kind::stored) slots_.free(old.slot, w.lane);
  };
  if (data) {
    for (const auto &pending : w.pending)
      replace(pending.page, pending.entry);
  } else {
    size_t next = 0;
    for (uint64_t p = first; p <= last; ++p) {
      if (next < w.pending.size() && w.pending[next].page == p) replace(p, w.pending[next++].entry);
      else if (table_.get(p).kind != PageEntry::Kind::zero) replace(p, PageEntry{});
    }
  }
  w.pending.clear();
  return 0;
}

int CompressedExport::write(Worker &w, std::span<const std::byte> data, uint64_t offset,
                            std::string &message)
{
  return change(w, data.data(), data.size(), offset, message);
}

int CompressedExport::zero(Worker &w, uint64_t length, uint64_t offset, std::string &message)
{
  return change(w, nullptr, length, offset, message);
}

CompressedExport::Evacuated CompressedExport::evacuate(Worker &w)
{
  const auto chunk = slots_.start_evacuation();
  if (!chunk) return Evacuated::no_candidate;
  bool stuck = false; // a page found no room: the rest stay too
  table_.for_each_in_chunk(*chunk, [&](uint64_t p, const PageEntry &) {
    if (stuck) return;
    const auto guard = locks_.exclusive(p, p);
    const PageEntry e = table_.get(p); // again, under the lock
    if (e.kind != PageEntry::Kind::stored || e.slot.chunk != *chunk) return;
    const auto packed = std::span(w.packed).first(e.length);
    SlotAllocator::Slot to;
    std::string ignored; // a page that cannot be moved now stays where it is
    if (device_.read(slots_.offset(e.slot), packed, w.lane) != 0 ||
        store(w, packed, to, ignored, /*may_map=*/false) != 0) {
      stuck = true;
      return;
    }
    table_.set(p, PageEntry{PageEntry::Kind::stored, 0, to, e.length});
    slots_.free(e.slot, w.lane);
  });
  return slots_.finish_evacuation(*chunk) ? Evacuated::emptied : Evacuated::stuck;
}

size_t CompressedExport::compact(Worker &w)
{
  size_t emptied = 0;
  while (compact_one(w))
    ++emptied;
  return emptied;
}

bool CompressedExport::compact_one(Worker &w)
{
  for (;;) {
    switch (evacuate(w)) {
    case Evacuated::no_candidate: return false;
    case Evacuated::stuck: continue; // not chosen again: try the next
    case Evacuated::emptied: compacted_.fetch_add(1, std::memory_order_relaxed); return true;
    }
  }
}

CompressedExport::Stats CompressedExport::stats() const
{
  return Stats{table_.stats(), slots_.stats(), compacted_.load(std::memory_order_relaxed)};
}

} // namespace vram::compress
