// Compressing one 4 KiB page, with LZ4 or Zstandard (Debian's liblz4 and
// libzstd).  A PageCodec holds all the state its codec needs, made when it
// is constructed: one per I/O lane, so compressing and decompressing on
// the I/O path allocate nothing.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vram::compress {

enum class Algorithm { none, lz4, zstd };

struct CodecSetting {
  Algorithm algorithm = Algorithm::none;
  int level = 0; // zstd only
  bool operator==(const CodecSetting &) const = default;
};

// compress= : "none", "lz4", "zstd" (level 1) or "zstd:LEVEL".  On a bad
// value, nothing, with `error` saying what is wrong and what is accepted.
std::optional<CodecSetting> parse_codec(std::string_view text, std::string &error);
std::string format_codec(const CodecSetting &setting);

class PageCodec {
public:
  static constexpr size_t page_bytes = 4096;

  // Throws std::runtime_error if the library cannot work in the memory
  // set aside for it (a bug, or a libzstd unlike the one we built with).
  explicit PageCodec(const CodecSetting &setting);
  ~PageCodec();
  PageCodec(const PageCodec &) = delete;
  PageCodec &operator=(const PageCodec &) = delete;

  // Compresses a page into `out` (at least page_bytes).  Returns the
  // length, or 0 when the result would be longer than `limit` bytes: store
  // the page whole.
  size_t compress(std::span<const std::byte> page, std::span<std::byte> out, size_t limit);

  // Decompresses what compress() made back into exactly one page; false
  // when the data does not decode to exactly one page.  (Damage that still
  // decodes to a page is not caught here: the integrity filter's job.)
  bool decompress(std::span<const std::byte> in, std::span<std::byte> page);

  // Host memory this codec holds (for the start-up log).
  size_t state_bytes() const { return state_bytes_; }

private:
  CodecSetting setting_;
  size_t state_bytes_ = 0;
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace vram::compress
