// The plugin's parameters, parsed and checked before anything touches a
// GPU.  Every error names the parameter and the forms it accepts.
#pragma once

#include "compress/page_codec.hpp"
#include "config/device_selector.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vram {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SizeRequest {
  enum class Kind { bytes, automatic, max } kind = Kind::automatic;
  uint64_t bytes = 0; // when kind == bytes
};

enum class SwapSafety {
  require, // refuse to start without every protection
  attempt, // apply what can be applied, warn about the rest (default)
  off,     // apply nothing (for tests of the protections themselves)
};

// How a thread waits for the GPU: spin (lowest latency, burns a core while
// waiting), yield, or block (sleeps, costs latency, saves power).
enum class WaitMode { automatic, spin, yield, block };

// When VRAM is held: all of it from the start (eager), or per chunk while
// the chunk holds data (lazy, CUDA virtual memory management).
enum class Allocation { eager, lazy };

// Whether requests use only copy-engine shapes, which other programs'
// kernels on the GPU cannot delay (yes, the default), the fastest shapes
// on a GPU nobody else uses (no), or the fastest until another program is
// seen computing (auto; see shared_gpu.hpp).
enum class ShareGpu { automatic, yes, no };

struct Config {
  SizeRequest size;
  std::optional<uint64_t> reserve; // default depends on the GPU (display)
  uint64_t step;
  std::optional<uint64_t> min_size; // default depends on size=
  DeviceSelector device;
  unsigned lanes = 0; // 0: one per online CPU
  uint64_t piece_size;
  SwapSafety swap_safety = SwapSafety::attempt;
  unsigned init_timeout_s = 10;
  WaitMode wait = WaitMode::automatic;
  Allocation allocation = Allocation::eager;
  uint64_t lazy_chunk;                // allocation=lazy: VRAM is mapped in these units
  std::optional<unsigned> lazy_spare; // allocation=lazy: chunks created ahead; default by chunk
  std::string status_file;            // empty: none
  std::string requests_file;          // empty: none (request_board.hpp)
  ShareGpu share_gpu = ShareGpu::automatic;
  // compress=: none keeps the export's bytes as they are; otherwise each
  // 4 KiB page is kept compressed in VRAM held as pages need it, and
  // size= is the logical size (sizing.hpp).
  compress::CodecSetting compress;
  bool compressed() const { return compress.algorithm != compress::Algorithm::none; }
  // idle-release=: after this long with no request (and memory calm) the
  // CUDA context is given back, VRAM kept (rest/idle_rest.hpp); nullopt:
  // off.  Implies allocation=lazy.
  std::optional<std::chrono::milliseconds> idle_release;
};

// "30s", "5m", "1h", "500ms", or a bare number of seconds; nullopt for
// anything else (zero included).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// lanes= when not given: nbdkit runs up to 16 requests per connection at
// once, and a request waiting for a free lane costs more than the GPU copy
// itself, so more lanes than CPUs; capped because each pins host memory.
// (On the H100 machine, 16, 32 and 64 lanes on 16 CPUs were within the
// run-to-run noise at 16 connections; 32 pins half the memory of 64.)
unsigned default_lanes(long online_cpus);

// Text for --help: one line per parameter.
extern const char *const config_help;

class ConfigBuilder {
public:
  ConfigBuilder();
  // Throws ConfigError for an unknown key or a malformed value.
  void set(std::string_view key, std::string_view value);
  // Throws ConfigError if a required parameter is missing or the
  // combination makes no sense.
  Config finish() const;

private:
  Config config_;
  bool have_size_ = false;
  bool have_allocation_ = false;
};

std::string_view to_string(SwapSafety s);
std::string_view to_string(WaitMode w);
std::string_view to_string(Allocation a);
std::string_view to_string(ShareGpu s);

} // namespace vram
