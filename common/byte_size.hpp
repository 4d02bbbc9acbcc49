// Sizes as users write them: "7G", "512M", "4096".  Suffixes are binary
// (K = 1024), as in nbdkit's own size parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vram {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;

// Parses "<digits>[suffix]" where the suffix is one of b, s (512-byte
// sectors), k, m, g, t, p, e in either case, optionally followed by "iB"
// or "B" after k..e.  Returns nullopt on anything else, including overflow.
std::optional<uint64_t> parse_byte_size(std::string_view text);

// "7.0 GiB", "512.0 MiB", "4096 bytes": for messages.
std::string format_byte_size(uint64_t bytes);

constexpr uint64_t round_down(uint64_t value, uint64_t multiple)
{
  return value - value % multiple;
}

// The caller keeps value + multiple - 1 from overflowing.
constexpr uint64_t round_up(uint64_t value, uint64_t multiple)
{
  return (value + multiple - 1) / multiple * multiple;
}

} // namespace vram
