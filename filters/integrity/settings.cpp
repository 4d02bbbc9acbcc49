#include "settings.hpp"

#include <bit>
#include <charconv>

namespace integrity {

const char *const settings_help =
  "integrity-block-size=SIZE   Bytes per checksum: a power of two from 512 to 1M\n"
  "                            (default 4096).\n"
  "integrity-mlock=attempt|require|off\n"
  "                            Lock the checksum table in RAM (default attempt:\n"
  "                            warn if it cannot be locked).";

namespace {

constexpr std::string_view prefix = "integrity-";

std::string quoted(std::string_view key, std::string_view value)
{
  return std::string(key) + "=" + std::string(value);
}

// "4096", "4K", "64k", "1M": a size in bytes with an optional binary suffix.
bool parse_block_size(std::string_view text, uint64_t &out)
{
  uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
    case 'k':
    case 'K': multiplier = 1024; break;
    case 'm':
    case 'M': multiplier = 1024 * 1024; break;
    default: break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  uint64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return false;
  if (number > UINT64_MAX / multiplier) return false;
  out = number * multiplier;
  return true;
}

} // namespace

bool is_filter_key(std::string_view key) { return key.starts_with(prefix); }

void apply_setting(Settings &settings, std::string_view key, std::string_view value)
{
  if (key == "integrity-block-size") {
    uint64_t size = 0;
    if (!parse_block_size(value, size) || !std::has_single_bit(size) || size < min_block_size ||
        size > max_block_size)
      throw SettingsError(quoted(key, value) +
                          ": expected a power of two from 512 to 1M bytes (e.g. 4096, 4K, 64K)");
    settings.block_size = static_cast<uint32_t>(size);
  } else if (key == "integrity-mlock") {
    if (value == "attempt") settings.mlock = MlockPolicy::attempt;
    else if (value == "require") settings.mlock = MlockPolicy::require;
    else if (value == "off") settings.mlock = MlockPolicy::off;
    else throw SettingsError(quoted(key, value) + ": expected 'attempt', 'require' or 'off'");
  } else {
    throw SettingsError("unknown integrity filter parameter '" + std::string(key) +
                        "': accepted parameters are integrity-block-size, integrity-mlock");
  }
}

std::string_view to_string(MlockPolicy policy)
{
  switch (policy) {
  case MlockPolicy::attempt: return "attempt";
  case MlockPolicy::require: return "require";
  case MlockPolicy::off: return "off";
  }
  return "?";
}

} // namespace integrity
