// The filter's parameters, as users write them on nbdkit's command line.
// Every key starting with "integrity-" belongs to the filter, so that a
// mistyped one is reported here rather than passed to the plugin.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace integrity {

enum class MlockPolicy { attempt, require, off };

struct Settings {
  uint32_t block_size = 4096;
  MlockPolicy mlock = MlockPolicy::attempt;
};

constexpr uint32_t min_block_size = 512;
constexpr uint32_t max_block_size = 1u << 20;

class SettingsError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// True for keys the filter owns (and must not pass on to the plugin).
bool is_filter_key(std::string_view key);

// Applies key=value to `settings`; throws SettingsError with a message
// that names the parameter and the accepted forms.
void apply_setting(Settings &settings, std::string_view key, std::string_view value);

std::string_view to_string(MlockPolicy policy);

// For nbdkit --help.
extern const char *const settings_help;

} // namespace integrity
