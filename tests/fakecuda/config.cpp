#include "config.hpp"

#include "errors.hpp"
#include "layout.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace fakecuda {
namespace {

std::string_view trim(std::string_view s)
{
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep)
{
  std::vector<std::string_view> parts;
  for (;;) {
    const auto pos = s.find(sep);
    parts.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return parts;
    s.remove_prefix(pos + 1);
  }
}

bool iequals(std::string_view a, std::string_view b)
{
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::optional<std::uint64_t> parse_uint(std::string_view s, int base = 10)
{
  std::uint64_t v = 0;
  const char *end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v, base);
  if (s.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

// Hex field of at most max_digits digits (PCI address parts).
std::optional<std::uint32_t> parse_hex_field(std::string_view s, std::size_t max_digits,
                                             std::uint32_t max_value)
{
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  auto v = parse_uint(s, 16);
  if (!v || *v > max_value) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

std::optional<std::array<unsigned char, 16>> parse_uuid(std::string_view s)
{
  // nvidia-smi prints "GPU-<uuid>"; accept both that and the bare form.
  if (s.size() > 4 && iequals(s.substr(0, 4), "GPU-")) s.remove_prefix(4);
  if (s.size() != 36) return std::nullopt;
  std::array<unsigned char, 16> out{};
  std::size_t byte = 0;
  for (std::size_t i = 0; i < s.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    auto v = parse_uint(s.substr(i, 2), 16);
    if (!v || !std::isxdigit(static_cast<unsigned char>(s[i])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 1])))
      return std::nullopt;
    out[byte++] = static_cast<unsigned char>(*v);
    i += 2;
  }
  return out;
}

std::optional<bool> parse_bool01(std::string_view s)
{
  if (s == "0") return false;
  if (s == "1") return true;
  return std::nullopt;
}

// Unset and empty are the same for every variable except FAKECUDA_GPUS,
// so "FAKECUDA_FAIL_COPY= cmd" in a shell script switches a fault off.
std::optional<std::string_view> env(const char *name)
{
  const char *v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string_view(v);
}

[[noreturn]] void bad(const std::string &what) { throw ConfigError(what); }

std::uint64_t env_uint(const char *name, std::uint64_t fallback, std::uint64_t min_value = 0)
{
  auto s = env(name);
  if (!s) return fallback;
  auto v = parse_uint(trim(*s));
  if (!v || *v < min_value)
    bad(std::string(name) + "='" + std::string(*s) +
        "': expected an integer >= " + std::to_string(min_value));
  return *v;
}

std::optional<std::uint64_t> env_size(const char *name)
{
  auto s = env(name);
  if (!s) return std::nullopt;
  auto v = parse_size(trim(*s));
  if (!v)
    bad(std::string(name) + "='" + std::string(*s) +
        "': expected a size in bytes with an optional K, M, G or T suffix");
  return v;
}

std::optional<CUresult> env_error(const char *name)
{
  auto s = env(name);
  if (!s) return std::nullopt;
  auto v = parse_error_code(trim(*s));
  if (!v)
    bad(std::string(name) + "='" + std::string(*s) +
        "': expected a CUresult number (0-999) or name such as CUDA_ERROR_UNKNOWN");
  return v;
}

GpuConfig default_gpu(std::size_t index)
{
  GpuConfig g;
  g.name = "Fake GPU " + std::to_string(index);
  g.total = std::uint64_t{1} << 30;
  g.free = g.total;
  // Derived from index + 1 (not the index) so that no GPU gets the all-zero
  // UUID, which code under test might treat as "no UUID".
  const std::uint64_t tag = index + 1;
  for (int i = 0; i < 6; ++i)
    g.uuid[15 - i] = static_cast<unsigned char>(tag >> (8 * i));
  g.pci.bus = static_cast<std::uint32_t>(index + 1);
  return g;
}

GpuConfig parse_gpu(std::string_view spec, std::size_t index)
{
  GpuConfig g = default_gpu(index);
  const std::string where = "FAKECUDA_GPUS: GPU " + std::to_string(index) + ": ";
  bool free_given = false;
  std::vector<std::string_view> seen;
  if (trim(spec).empty()) return g; // an empty entry is a GPU with defaults
  for (std::string_view item : split(spec, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string_view::npos)
      bad(where + "'" + std::string(trim(item)) + "' is not key=value");
    const std::string_view key = trim(item.substr(0, eq));
    const std::string_view value = trim(item.substr(eq + 1));
    for (std::string_view k : seen)
      if (k == key) bad(where + "key '" + std::string(key) + "' given twice");
    seen.push_back(key);
    const std::string bad_value =
      where + "bad value for key '" + std::string(key) + "': '" + std::string(value) + "'";
    if (key == "name") {
      if (value.empty() || value.size() > 255) bad(bad_value + " (1 to 255 characters)");
      g.name = std::string(value);
    } else if (key == "total") {
      auto v = parse_size(value);
      if (!v || *v == 0 || *v > kDeviceWindow)
        bad(bad_value + " (a size from 1 byte to 1T, with optional K/M/G/T suffix)");
      g.total = *v;
    } else if (key == "free") {
      auto v = parse_size(value);
      if (!v) bad(bad_value + " (a size with optional K/M/G/T suffix)");
      g.free = *v;
      free_given = true;
    } else if (key == "uuid") {
      auto v = parse_uuid(value);
      if (!v) bad(bad_value + " (expected [GPU-]xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
      g.uuid = *v;
    } else if (key == "pci") {
      auto v = parse_pci(value);
      if (!v) bad(bad_value + " (expected domain:bus:device.function such as 0000:01:00.0)");
      g.pci = *v;
    } else if (key == "display") {
      auto v = parse_bool01(value);
      if (!v) bad(bad_value + " (expected 0 or 1)");
      g.display = *v;
    } else if (key == "vmm") {
      auto v = parse_bool01(value);
      if (!v) bad(bad_value + " (expected 0 or 1)");
      g.vmm = *v;
    } else {
      bad(where + "unknown key '" + std::string(key) +
          "' (known: name, total, free, uuid, pci, display, vmm)");
    }
  }
  if (!free_given) g.free = g.total;
  return g;
}

std::vector<GpuConfig> parse_gpus()
{
  const char *raw = std::getenv("FAKECUDA_GPUS");
  if (raw == nullptr) return {default_gpu(0)};
  const std::string_view all(raw);
  if (trim(all).empty()) return {}; // explicitly no GPU at all
  std::vector<GpuConfig> gpus;
  for (std::string_view spec : split(all, ';')) {
    if (gpus.size() == kMaxGpus)
      bad("FAKECUDA_GPUS: more than " + std::to_string(kMaxGpus) + " GPUs");
    gpus.push_back(parse_gpu(spec, gpus.size()));
  }
  for (std::size_t i = 0; i < gpus.size(); ++i)
    for (std::size_t j = 0; j < i; ++j) {
      if (gpus[i].pci == gpus[j].pci)
        bad("FAKECUDA_GPUS: GPU " + std::to_string(i) + " and GPU " + std::to_string(j) +
            " have the same pci address");
      if (gpus[i].uuid == gpus[j].uuid)
        bad("FAKECUDA_GPUS: GPU " + std::to_string(i) + " and GPU " + std::to_string(j) +
            " have the same uuid");
    }
  return gpus;
}

FaultConfig parse_faults()
{
  FaultConfig f;
  f.fail_copy = env_uint("FAKECUDA_FAIL_COPY", 0);
  f.fail_every = env_uint("FAKECUDA_FAIL_EVERY", 0);
  if (auto mode = env("FAKECUDA_FAIL_MODE")) {
    if (trim(*mode) == "sticky") f.fail_sticky = true;
    else if (trim(*mode) != "transient")
      bad("FAKECUDA_FAIL_MODE='" + std::string(*mode) + "': expected transient or sticky");
  }
  f.fail_code = env_error("FAKECUDA_FAIL_CODE");
  if (f.fail_code == CUDA_SUCCESS) bad("FAKECUDA_FAIL_CODE: 0 (CUDA_SUCCESS) is not a failure");
  if (auto t = env("FAKECUDA_TRIGGER_FILE")) f.trigger_file = std::string(*t);
  if (auto calls = env("FAKECUDA_FAIL_CALL")) {
    std::string_view rest = *calls;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      const size_t colon = item.find(':');
      const std::string name(item.substr(0, colon));
      std::uint64_t n = 0;
      const std::string_view count =
        colon == std::string_view::npos ? std::string_view{} : item.substr(colon + 1);
      const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
      bool known = false;
      for (const char *c : kFailableCalls)
        known = known || name == c;
      if (!known || ec != std::errc{} || end != count.data() + count.size() || n == 0)
        bad("FAKECUDA_FAIL_CALL='" + std::string(*calls) +
            "': expected NAME:N[,NAME:N...] with N >= 1 "
            "and NAME one of cuMemCreate, cuMemRelease, cuMemMap, cuMemUnmap, cuMemSetAccess");
      f.fail_calls.emplace_back(name, n);
    }
  }
  return f;
}

} // namespace

std::optional<std::uint64_t> parse_size(std::string_view s)
{
  unsigned shift = 0;
  if (!s.empty()) {
    switch (std::toupper(static_cast<unsigned char>(s.back()))) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: break;
    }
    if (shift != 0) s.remove_suffix(1);
  }
  auto v = parse_uint(s);
  if (!v || (shift != 0 && *v > (UINT64_MAX >> shift))) return std::nullopt;
  return *v << shift;
}

std::optional<PciAddress> parse_pci(std::string_view s)
{
  // Forms accepted by the real cuDeviceGetByPCIBusId: domain:bus:device.function,
  // domain:bus:device and bus:device.function. nvidia-smi prints an 8-digit
  // domain, CUDA a 4-digit one; both are fine.
  const auto parts = split(s, ':');
  if (parts.size() != 2 && parts.size() != 3) return std::nullopt;
  PciAddress a;
  std::size_t i = 0;
  if (parts.size() == 3) {
    auto d = parse_hex_field(parts[i++], 8, 0xffffffffu);
    if (!d) return std::nullopt;
    a.domain = *d;
  }
  auto bus = parse_hex_field(parts[i++], 2, 0xff);
  if (!bus) return std::nullopt;
  a.bus = *bus;
  std::string_view devfn = parts[i];
  const auto dot = devfn.find('.');
  auto dev = parse_hex_field(devfn.substr(0, dot), 2, 0x1f);
  if (!dev) return std::nullopt;
  a.device = *dev;
  if (dot != std::string_view::npos) {
    auto fn = parse_hex_field(devfn.substr(dot + 1), 1, 7);
    if (!fn) return std::nullopt;
    a.function = *fn;
  }
  return a;
}

std::string format_uuid(const std::array<unsigned char, 16> &u)
{
  char buf[64];
  std::snprintf(buf, sizeof buf,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                u[14], u[15]);
  return buf;
}

Config load_config_from_env()
{
  Config c;
  c.gpus = parse_gpus();
  c.driver_version = driver_version_from_env();
  if (auto f = env("FAKECUDA_MEMORY_FILE")) c.memory_file = std::string(*f);
  if (auto f = env("FAKECUDA_MAP_FILE")) c.map_file = std::string(*f);
  if (auto f = env("FAKECUDA_FREE_FILE")) c.free_file = std::string(*f);
  c.latency_us = env_uint("FAKECUDA_LATENCY_US", 0);
  c.timeslice_us = env_uint("FAKECUDA_TIMESLICE_US", 0);
  c.ctx_create_us = env_uint("FAKECUDA_CTX_CREATE_US", 0);
  c.ctx_host_bytes = env_size("FAKECUDA_CTX_HOST_BYTES").value_or(0);
  if (auto f = env("FAKECUDA_TIMESLICE_FILE")) c.timeslice_file = std::string(*f);
  c.alloc_fail_above = env_size("FAKECUDA_ALLOC_FAIL_ABOVE");
  c.log = log_enabled_from_env();
  c.faults = parse_faults();
  return c;
}

CUresult init_error_from_env() { return env_error("FAKECUDA_INIT_ERROR").value_or(CUDA_SUCCESS); }

int driver_version_from_env()
{
  const std::uint64_t v = env_uint("FAKECUDA_DRIVER_VERSION", 13000, 1);
  if (v > 1000000) bad("FAKECUDA_DRIVER_VERSION: " + std::to_string(v) + " is implausibly large");
  return static_cast<int>(v);
}

bool log_enabled_from_env()
{
  auto s = env("FAKECUDA_LOG");
  return s && *s != "0";
}

} // namespace fakecuda
