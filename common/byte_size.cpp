#include "byte_size.hpp"

#include <cctype>
#include <cstdio>
#include <limits>

namespace vram {

std::optional<uint64_t> parse_byte_size(std::string_view text)
{
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) return std::nullopt;

  std::string_view suffix = text.substr(i);
  if (suffix.empty()) return value;

  uint64_t scale = 0;
  bool binary_prefix = true;
  switch (std::tolower(static_cast<unsigned char>(suffix[0]))) {
  case 'b':
    scale = 1;
    binary_prefix = false;
    break;
  case 's':
    scale = 512;
    binary_prefix = false;
    break;
  case 'k': scale = KiB; break;
  case 'm': scale = MiB; break;
  case 'g': scale = GiB; break;
  case 't': scale = GiB * KiB; break;
  case 'p': scale = GiB * MiB; break;
  case 'e': scale = GiB * GiB; break;
  default: return std::nullopt;
  }
  suffix.remove_prefix(1);
  if (binary_prefix && (suffix == "iB" || suffix == "B" || suffix == "b")) suffix = {};
  if (!suffix.empty()) return std::nullopt;
  if (value > std::numeric_limits<uint64_t>::max() / scale) return std::nullopt;
  return value * scale;
}

std::string format_byte_size(uint64_t bytes)
{
  static constexpr const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < KiB) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

} // namespace vram
