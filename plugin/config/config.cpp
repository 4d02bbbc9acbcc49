#include "config/config.hpp"

#include "byte_size.hpp"
#include "logging.hpp"

#include <charconv>
#include <cstdint>
#include <string>

namespace vram {

const char *const config_help =
  "size=<SIZE>|auto|max      Export size: bytes (7G, 512M), 'auto' (free VRAM\n"
  "                          minus reserve=) or 'max' (all free VRAM). Required.\n"
  "reserve=<SIZE>            VRAM left free with size=auto (default 1G, or 3G\n"
  "                          when the GPU drives a display).\n"
  "step=<SIZE>               Back-off step when an allocation fails (512M).\n"
  "min-size=<SIZE>           Smallest acceptable size when backing off (default:\n"
  "                          size= itself for a number, 256M for auto/max).\n"
  "device=<N>|<UUID>|<PCI>   GPU by CUDA index, UUID (GPU-...) or PCI bus id (0).\n"
  "lanes=<N>                 Parallel I/O lanes (default: 2 per CPU, 4 to 64).\n"
  "piece-size=<SIZE>         Requests larger than this are pipelined in pieces\n"
  "                          of this size through a lane (256K).\n"
  "swap-safety=attempt|require|off\n"
  "                          Swap deadlock protections (default attempt).\n"
  "init-timeout=<SECONDS>    How long to wait for a driver that is not ready (10).\n"
  "wait=auto|spin|yield|block How threads wait for the GPU (auto).\n"
  "allocation=eager|lazy     Hold all VRAM from the start (eager, default), or\n"
  "                          only chunks that hold data (lazy).\n"
  "lazy-chunk=<SIZE>         allocation=lazy: unit of VRAM mapped and released (2M).\n"
  "lazy-spare=<N>            allocation=lazy: chunks of VRAM created ahead of need\n"
  "                          (default: 8M worth, 1 to 4; 0: none).\n"
  "status-file=<PATH>        Keep the size and VRAM held in this file (KEY=VALUE).\n"
  "requests-file=<PATH>      Keep each thread's request in flight in this file.\n"
  "share-gpu=auto|yes|no     Keep swap fast beside other programs' GPU work: auto\n"
  "                          (once one is seen, default), yes (always), no.\n"
  "compress=none|lz4|zstd[:LEVEL]\n"
  "                          Keep each 4K page compressed in VRAM held as pages\n"
  "                          need it; size= is then the uncompressed size (none).\n"
  "idle-release=off|<TIME>   Give the GPU's CUDA context back after this long\n"
  "                          without a request, keeping the VRAM (30s, 5m) (off).\n";

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text)
{
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr == text.data()) return std::nullopt;
  const std::string_view unit(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  uint64_t ms_per = 0;
  if (unit.empty() || unit == "s") ms_per = 1000;
  else if (unit == "ms") ms_per = 1;
  else if (unit == "m" || unit == "min") ms_per = 60 * 1000;
  else if (unit == "h") ms_per = 3600 * 1000;
  else return std::nullopt;
  // Up to a week: longer is a typo, and the arithmetic stays far from overflow.
  constexpr uint64_t week_ms = uint64_t{7} * 24 * 3600 * 1000;
  if (v == 0 || v > week_ms / ms_per) return std::nullopt;
  return std::chrono::milliseconds(v * ms_per);
}

namespace {

constexpr const char *size_forms =
  "expected a size in bytes with an optional suffix (e.g. 7G, 512M, 4096)";

uint64_t parse_size_param(std::string_view key, std::string_view value)
{
  if (auto v = parse_byte_size(value)) return *v;
  throw ConfigError(std::string(key) + "=" + std::string(value) + ": " + size_forms);
}

unsigned parse_unsigned_param(std::string_view key, std::string_view value, unsigned min,
                              unsigned max)
{
  unsigned v = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc{} || ptr != value.data() + value.size() || v < min || v > max)
    throw ConfigError(std::string(key) + "=" + std::string(value) +
                      ": expected a whole number from " + std::to_string(min) + " to " +
                      std::to_string(max));
  return v;
}

} // namespace

unsigned default_lanes(long online_cpus)
{
  const long lanes = 2 * (online_cpus > 0 ? online_cpus : 1);
  return static_cast<unsigned>(lanes < 4 ? 4 : lanes > 64 ? 64 : lanes);
}

std::string_view to_string(WaitMode w)
{
  switch (w) {
  case WaitMode::automatic: return "auto";
  case WaitMode::spin: return "spin";
  case WaitMode::yield: return "yield";
  case WaitMode::block: return "block";
  }
  return "?";
}

std::string_view to_string(Allocation a) { return a == Allocation::lazy ? "lazy" : "eager"; }

std::string_view to_string(ShareGpu s)
{
  return s == ShareGpu::yes ? "yes" : s == ShareGpu::no ? "no" : "auto";
}

std::string_view to_string(SwapSafety s)
{
  switch (s) {
  case SwapSafety::require: return "require";
  case SwapSafety::attempt: return "attempt";
  case SwapSafety::off: return "off";
  }
  return "?";
}

ConfigBuilder::ConfigBuilder()
{
  config_.step = 512 * MiB;
  config_.piece_size = 256 * KiB;
  config_.lazy_chunk = 2 * MiB;
  config_.device = *parse_device_selector("0");
}

void ConfigBuilder::set(std::string_view key, std::string_view value)
{
  if (key == "size") {
    if (value == "auto") {
      config_.size = {SizeRequest::Kind::automatic, 0};
    } else if (value == "max") {
      config_.size = {SizeRequest::Kind::max, 0};
    } else {
      auto v = parse_byte_size(value);
      if (!v)
        throw ConfigError("size=" + std::string(value) + ": " + size_forms + ", 'auto' or 'max'");
      if (*v == 0 || *v % 4096 != 0)
        throw ConfigError("size=" + std::string(value) +
                          ": the size must be a non-zero multiple of 4096 bytes "
                          "(the swap page size), e.g. 7G");
      // nbdkit's sizes are int64_t; the sizing arithmetic relies on this bound.
      if (*v > static_cast<uint64_t>(INT64_MAX))
        throw ConfigError("size=" + std::string(value) +
                          ": larger than any export nbdkit can serve (8 EiB); "
                          "give the size of the swap device wanted, e.g. 7G");
      config_.size = {SizeRequest::Kind::bytes, *v};
    }
    have_size_ = true;
  } else if (key == "reserve") {
    config_.reserve = parse_size_param(key, value);
  } else if (key == "step") {
    const uint64_t v = parse_size_param(key, value);
    if (v < MiB || v % MiB != 0)
      throw ConfigError("step=" + std::string(value) +
                        ": the back-off step must be a whole number of MiB, at least 1M");
    config_.step = v;
  } else if (key == "min-size") {
    const uint64_t v = parse_size_param(key, value);
    if (v == 0 || v % 4096 != 0)
      throw ConfigError("min-size=" + std::string(value) +
                        ": must be a non-zero multiple of 4096 bytes, e.g. 1G");
    config_.min_size = v;
  } else if (key == "device") {
    auto sel = parse_device_selector(value);
    if (!sel)
      throw ConfigError("device=" + std::string(value) +
                        ": expected a CUDA device index (0, 1, ...), a GPU UUID "
                        "(GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, see nvidia-smi -L) "
                        "or a PCI bus id (0000:01:00.0)");
    config_.device = *sel;
  } else if (key == "lanes") {
    config_.lanes = parse_unsigned_param(key, value, 1, 1024);
  } else if (key == "piece-size" || key == "chunk-size") {
    const uint64_t v = parse_size_param(key, value);
    if (v < 4 * KiB || v > 64 * MiB || v % (4 * KiB) != 0)
      throw ConfigError(std::string(key) + "=" + std::string(value) +
                        ": must be a multiple of 4K from 4K to 64M, e.g. 256K");
    config_.piece_size = v;
    if (key == "chunk-size")
      log_warning("chunk-size= is the old name of piece-size= (\"chunk\" is the unit of "
                  "allocation=lazy, lazy-chunk=); it still works");
  } else if (key == "swap-safety") {
    if (value == "attempt") config_.swap_safety = SwapSafety::attempt;
    else if (value == "require") config_.swap_safety = SwapSafety::require;
    else if (value == "off") config_.swap_safety = SwapSafety::off;
    else
      throw ConfigError("swap-safety=" + std::string(value) +
                        ": expected 'attempt' (default: apply the protections, warn "
                        "if one cannot be), 'require' (refuse to start without them) "
                        "or 'off'");
  } else if (key == "init-timeout") {
    config_.init_timeout_s = parse_unsigned_param(key, value, 0, 3600);
  } else if (key == "wait") {
    if (value == "auto") config_.wait = WaitMode::automatic;
    else if (value == "spin") config_.wait = WaitMode::spin;
    else if (value == "yield") config_.wait = WaitMode::yield;
    else if (value == "block") config_.wait = WaitMode::block;
    else
      throw ConfigError("wait=" + std::string(value) +
                        ": expected 'auto' (the driver's choice), 'spin' (lowest latency, "
                        "a busy core per waiting request), 'yield' or 'block' (least CPU "
                        "and power, more latency)");
  } else if (key == "compress") {
    std::string error;
    const auto codec = compress::parse_codec(value, error);
    if (!codec) throw ConfigError(error);
    config_.compress = *codec;
  } else if (key == "allocation") {
    have_allocation_ = true;
    if (value == "eager") config_.allocation = Allocation::eager;
    else if (value == "lazy") config_.allocation = Allocation::lazy;
    else
      throw ConfigError("allocation=" + std::string(value) +
                        ": expected 'eager' (default: allocate the whole size at start) "
                        "or 'lazy' (hold VRAM only for chunks that hold data)");
  } else if (key == "lazy-chunk") {
    const uint64_t v = parse_size_param(key, value);
    if (v < 2 * MiB || v > GiB || v % (2 * MiB) != 0)
      throw ConfigError("lazy-chunk=" + std::string(value) +
                        ": must be a multiple of 2M from 2M to 1G, e.g. 2M or 64M");
    config_.lazy_chunk = v;
  } else if (key == "lazy-spare") {
    config_.lazy_spare = parse_unsigned_param(key, value, 0, 64);
  } else if (key == "share-gpu") {
    if (value == "auto") config_.share_gpu = ShareGpu::automatic;
    else if (value == "yes") config_.share_gpu = ShareGpu::yes;
    else if (value == "no") config_.share_gpu = ShareGpu::no;
    else
      throw ConfigError("share-gpu=" + std::string(value) +
                        ": expected 'auto' (default: the fastest copies until another "
                        "program is seen computing on the GPU), 'yes' (always the copies "
                        "other programs' GPU work cannot delay) or 'no'");
  } else if (key == "status-file") {
    if (value.empty() || value.front() != '/')
      throw ConfigError("status-file=" + std::string(value) +
                        ": expected an absolute path, e.g. /run/vram-swap/vram0.status");
    config_.status_file = value;
  } else if (key == "idle-release") {
    if (value == "off") {
      config_.idle_release.reset();
    } else if (auto d = parse_duration(value)) {
      config_.idle_release = *d;
    } else {
      throw ConfigError("idle-release=" + std::string(value) +
                        ": expected 'off' (default) or a time such as 30s, 5m or 1h "
                        "(a bare number is seconds; more than zero)");
    }
  } else if (key == "requests-file") {
    if (value.empty() || value.front() != '/')
      throw ConfigError("requests-file=" + std::string(value) +
                        ": expected an absolute path, e.g. /run/vram-swap/vram0.requests");
    config_.requests_file = value;
  } else {
    throw ConfigError("unknown parameter '" + std::string(key) +
                      "': accepted parameters are size, reserve, step, min-size, "
                      "device, lanes, piece-size, swap-safety, init-timeout, wait, "
                      "allocation, lazy-chunk, lazy-spare, status-file, requests-file, share-gpu, "
                      "compress, idle-release (see nbdkit-vram-plugin(1))");
  }
}

Config ConfigBuilder::finish() const
{
  if (!have_size_)
    throw ConfigError("size= is required: give a size (e.g. size=7G), "
                      "size=auto (free VRAM minus reserve=) or size=max");
  if (config_.min_size && config_.size.kind == SizeRequest::Kind::bytes &&
      *config_.min_size > config_.size.bytes)
    throw ConfigError("min-size= (" + format_byte_size(*config_.min_size) +
                      ") is larger than size= (" + format_byte_size(config_.size.bytes) +
                      "): min-size= is the smallest size to fall back to");
  Config c = config_;
  if (config_.compressed()) {
    if (have_allocation_ && config_.allocation == Allocation::eager)
      throw ConfigError("compress=" + compress::format_codec(config_.compress) +
                        " with allocation=eager: a compressed export holds VRAM as its pages "
                        "need it (as allocation=lazy does); drop allocation=eager");
    c.allocation = Allocation::lazy;
  }
  if (config_.idle_release) {
    if (have_allocation_ && config_.allocation == Allocation::eager)
      throw ConfigError("idle-release= with allocation=eager: eager VRAM belongs to the CUDA "
                        "context that idle-release= gives back, so it would be lost; use "
                        "allocation=lazy (what idle-release= implies), or idle-release=off");
    c.allocation = Allocation::lazy;
  }
  return c;
}

} // namespace vram
