#include "checked_export.hpp"

#include "byte_size.hpp"
#include "crc32c.hpp"
#include "logging.hpp"

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

namespace integrity {
namespace {

// For fast zero: the backend refused and changed nothing.
bool refused_fast_zero(int err, WriteFlags flags)
{
  return flags.fast_zero && (err == ENOTSUP || err == EOPNOTSUPP);
}

} // namespace

CheckedExport::CheckedExport(std::string name, uint64_t size, const Settings &settings,
                             size_t lock_stripes)
  : name_(std::move(name)), geometry_(size, settings.block_size),
    table_(geometry_, settings.mlock, "the checksum table of export \"" + name_ + "\""),
    locks_(lock_stripes)
{
}

bool CheckedExport::verify(uint64_t block, std::span<const std::byte> data, Findings &findings)
{
  if (crc32c(data) == table_.get(block)) return true;
  findings.bad = true;
  // Unknown contents (a failed write the read could not settle first):
  // the request fails, but nothing is known to be corrupt.
  if (!unsettled_.contains(block) && table_.note_mismatch(block)) findings.to_log.push_back(block);
  return false;
}

int CheckedExport::read_block(Backend &backend, uint64_t block, std::vector<std::byte> &out)
{
  const ByteRange b = geometry_.block(block);
  out.resize(b.length);
  return backend.read(out, b.offset);
}

void CheckedExport::report(const Findings &findings) const
{
  for (const uint64_t block : findings.to_log) {
    const ByteRange b = geometry_.block(block);
    char where[128];
    std::snprintf(where, sizeof where,
                  "offset %" PRIu64 " (0x%" PRIx64 "), block %" PRIu64 " of %s", b.offset, b.offset,
                  block, vram::format_byte_size(b.length).c_str());
    vram::log_error("data corruption in export \"" + name_ + "\" at " + where +
                    ": the data read back does not match the checksum of what was written. "
                    "Reads of this block, and writes to part of it, fail with EIO until it is "
                    "written whole, zeroed or trimmed");
  }
}

int CheckedExport::read(Backend &backend, std::span<std::byte> buffer, uint64_t offset)
{
  if (buffer.empty()) return backend.read(buffer, offset);
  const BlockSpan span = geometry_.span(offset, buffer.size());
  Findings findings;
  int err = unsettled_.any_in(span.first, span.last) ? settle(backend, span.first, span.last) : 0;
  if (err) {
    std::memset(buffer.data(), 0, buffer.size());
    return err;
  }
  {
    const auto guard = locks_.shared(span.first, span.last);
    err = read_locked(backend, buffer, offset, span, findings);
  }
  report(findings);
  if (err || findings.bad) {
    std::memset(buffer.data(), 0, buffer.size());
    return err ? err : EIO;
  }
  return 0;
}

int CheckedExport::read_locked(Backend &backend, std::span<std::byte> buffer, uint64_t offset,
                               const BlockSpan &span, Findings &findings)
{
  const ByteRange request{offset, buffer.size()};
  std::vector<std::byte> whole;
  // A partly covered block is read whole, checked, and the part asked for
  // copied out.
  auto read_partial = [&](uint64_t block) {
    if (const int err = read_block(backend, block, whole)) return err;
    if (verify(block, whole, findings)) {
      const ByteRange b = geometry_.block(block);
      const ByteRange part = overlap_within(b, request);
      std::memcpy(buffer.data() + (b.offset + part.offset - offset), whole.data() + part.offset,
                  part.length);
    }
    return 0;
  };
  if (span.first_partial)
    if (const int err = read_partial(span.first)) return err;
  if (span.separate_last_partial())
    if (const int err = read_partial(span.last)) return err;
  if (span.full_count() == 0) return 0;

  // Whole blocks go straight into the client's buffer.
  const uint64_t start = geometry_.block(span.full_begin()).offset;
  const uint64_t end = geometry_.block(span.full_end() - 1).end();
  const std::span<std::byte> direct = buffer.subspan(start - offset, end - start);
  if (const int err = backend.read(direct, start)) return err;
  for (uint64_t block = span.full_begin(); block < span.full_end(); ++block) {
    const ByteRange b = geometry_.block(block);
    verify(block, direct.subspan(b.offset - start, b.length), findings);
  }
  return 0;
}

int CheckedExport::rewrite_partial(Backend &backend, uint64_t block, const ByteRange &request,
                                   const std::byte *request_data, uint32_t &crc, Findings &findings)
{
  std::vector<std::byte> whole;
  if (const int err = read_block(backend, block, whole)) return err;
  // The bytes the request leaves alone keep their old value: they must
  // be right, or the new checksum would vouch for corrupt data.  Those of
  // a block whose contents are unknown are taken as they are, as a read
  // would take them.
  if (!unsettled_.contains(block) && !verify(block, whole, findings)) return 0;
  const ByteRange b = geometry_.block(block);
  const ByteRange part = overlap_within(b, request);
  if (request_data)
    std::memcpy(whole.data() + part.offset,
                request_data + (b.offset + part.offset - request.offset), part.length);
  else std::memset(whole.data() + part.offset, 0, part.length);
  crc = crc32c(whole);
  return 0;
}

int CheckedExport::write(Backend &backend, std::span<const std::byte> data, uint64_t offset,
                         WriteFlags flags)
{
  if (data.empty()) return backend.write(data, offset, flags);
  const ByteRange request{offset, data.size()};
  const BlockSpan span = geometry_.span(offset, data.size());

  // Checksums of the whole blocks need no lock: the data is the client's.
  // Most requests are a page or a few: no allocation for those.
  std::array<uint32_t, 32> small;
  std::vector<uint32_t> large;
  std::span<uint32_t> full_crcs;
  if (span.full_count() <= small.size()) {
    full_crcs = std::span(small).first(span.full_count());
  } else {
    large.resize(span.full_count());
    full_crcs = large;
  }
  for (uint64_t i = 0; i < full_crcs.size(); ++i) {
    const ByteRange b = geometry_.block(span.full_begin() + i);
    full_crcs[i] = crc32c(data.subspan(b.offset - offset, b.length));
  }

  Findings findings;
  int err = 0;
  {
    const auto guard = locks_.exclusive(span.first, span.last);
    uint32_t first_crc = 0, last_crc = 0;
    if (span.first_partial)
      err = rewrite_partial(backend, span.first, request, data.data(), first_crc, findings);
    if (!err && !findings.bad && span.separate_last_partial())
      err = rewrite_partial(backend, span.last, request, data.data(), last_crc, findings);
    if (!err && !findings.bad) {
      // Only the bytes asked for are written: the rest of a partial block
      // was just checked and is unchanged.
      err = backend.write(data, offset, flags);
      if (err) {
        resync(backend, span.first, span.last);
      } else {
        if (span.first_partial) table_.set(span.first, first_crc);
        if (span.separate_last_partial()) table_.set(span.last, last_crc);
        for (uint64_t i = 0; i < full_crcs.size(); ++i)
          table_.set(span.full_begin() + i, full_crcs[i]);
        written(span.first, span.last);
      }
    }
  }
  report(findings);
  return err ? err : findings.bad ? EIO : 0;
}

int CheckedExport::zero(Backend &backend, uint64_t length, uint64_t offset, WriteFlags flags)
{
  if (length == 0) return backend.zero(length, offset, flags);
  const ByteRange request{offset, length};
  const BlockSpan span = geometry_.span(offset, length);
  Findings findings;
  int err = 0;
  {
    const auto guard = locks_.exclusive(span.first, span.last);
    uint32_t first_crc = 0, last_crc = 0;
    if (span.first_partial)
      err = rewrite_partial(backend, span.first, request, nullptr, first_crc, findings);
    if (!err && !findings.bad && span.separate_last_partial())
      err = rewrite_partial(backend, span.last, request, nullptr, last_crc, findings);
    if (!err && !findings.bad) {
      err = backend.zero(length, offset, flags);
      if (err) {
        if (!refused_fast_zero(err, flags)) resync(backend, span.first, span.last);
      } else {
        if (span.first_partial) table_.set(span.first, first_crc);
        if (span.separate_last_partial()) table_.set(span.last, last_crc);
        for (uint64_t block = span.full_begin(); block < span.full_end(); ++block)
          table_.set(block, table_.zero_crc(block));
        written(span.first, span.last);
      }
    }
  }
  report(findings);
  return err ? err : findings.bad ? EIO : 0;
}

int CheckedExport::trim(Backend &backend, uint64_t length, uint64_t offset, bool fua)
{
  return zero(backend, length, offset,
              WriteFlags{.fua = fua, .may_trim = true, .fast_zero = false});
}

void CheckedExport::written(uint64_t first, uint64_t last)
{
  for (uint64_t block = first; block <= last; ++block) {
    table_.forget_mismatch(block);
    unsettled_.remove(block);
  }
}

// After a failed write or zero the range may hold old data, new data or a
// mix (NBD leaves it unspecified): take whatever the backend now returns
// as the truth for these blocks.  The bytes of partial blocks outside the
// request were verified just before, under the same lock.  A block that
// cannot be read back now (the GPU error that failed the write may not be
// over) is unsettled: the next read settles it.
void CheckedExport::resync(Backend &backend, uint64_t first, uint64_t last)
{
  std::vector<std::byte> whole;
  for (uint64_t block = first; block <= last; ++block) {
    if (read_block(backend, block, whole) != 0) {
      if (!unsettled_.add(block) && !unsettled_full_logged_.exchange(true))
        vram::log_error("export \"" + name_ + "\": more than " +
                        std::to_string(UnsettledBlocks::capacity) +
                        " blocks could not be read back after failed writes; further ones keep "
                        "their old checksum and read as corrupt until written whole, zeroed or "
                        "trimmed");
      continue;
    }
    table_.set(block, crc32c(whole));
    written(block, block);
  }
}

int CheckedExport::settle(Backend &backend, uint64_t first, uint64_t last)
{
  const auto guard = locks_.exclusive(first, last);
  std::vector<std::byte> whole;
  for (uint64_t block = first; block <= last; ++block) {
    if (!unsettled_.contains(block)) continue;
    if (const int err = read_block(backend, block, whole)) return err;
    table_.set(block, crc32c(whole));
    written(block, block);
  }
  return 0;
}

} // namespace integrity
