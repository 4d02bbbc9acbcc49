// Configuration of the fake driver, read from FAKECUDA_* environment
// variables at cuInit (not at load time, so a test can setenv() and then
// cuInit, and fakecuda_reset() + cuInit again with different settings).
// README.md documents every variable.
#pragma once

#include "cuda_abi.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fakecuda {

// A bad setting. cuInit turns it into CUDA_ERROR_INVALID_VALUE after
// printing what() to stderr, so the text must name the variable and key.
class ConfigError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct PciAddress {
  std::uint32_t domain = 0;
  std::uint32_t bus = 0;
  std::uint32_t device = 0;
  std::uint32_t function = 0;

  bool operator==(const PciAddress &) const = default;
};

struct GpuConfig {
  std::string name;
  std::uint64_t total = 0;
  std::uint64_t free = 0; // before our own allocations; may exceed total
  std::array<unsigned char, 16> uuid{};
  PciAddress pci;
  bool display = false;
  bool vmm = true; // CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED
};

struct FaultConfig {
  std::uint64_t fail_copy = 0; // 0: off; else the Nth copy fails
  bool fail_sticky = false;    // FAKECUDA_FAIL_MODE=sticky
  std::optional<CUresult> fail_code;
  std::uint64_t fail_every = 0; // 0: off; else every Nth copy (transient)
  std::string trigger_file;     // empty: off
  // FAKECUDA_FAIL_CALL=NAME:N,...: the Nth call of entry point NAME fails
  // (one of kFailableCalls), without doing its work.
  std::vector<std::pair<std::string, std::uint64_t>> fail_calls;
};

// The entry points FAKECUDA_FAIL_CALL can fail: the virtual memory
// management calls, whose failures the code under test must survive
// without losing track of its VRAM.
inline constexpr const char *kFailableCalls[] = {"cuMemCreate", "cuMemRelease", "cuMemMap",
                                                 "cuMemUnmap", "cuMemSetAccess"};

struct Config {
  std::vector<GpuConfig> gpus;
  int driver_version = 13000;
  std::optional<std::string> memory_file; // nullopt: anonymous memfd
  std::string map_file;                   // empty: off
  std::string free_file;                  // FAKECUDA_FREE_FILE; empty: off
  std::uint64_t latency_us = 0;
  std::uint64_t timeslice_us = 0; // FAKECUDA_TIMESLICE_US
  // A primary context: how long the retain that creates it takes, and the
  // host memory it holds while it lives (FAKECUDA_CTX_CREATE_US,
  // FAKECUDA_CTX_HOST_BYTES).
  std::uint64_t ctx_create_us = 0;
  std::uint64_t ctx_host_bytes = 0;
  std::string timeslice_file; // FAKECUDA_TIMESLICE_FILE; empty: off
  std::optional<std::uint64_t> alloc_fail_above;
  bool log = false;
  FaultConfig faults;
};

// Everything except FAKECUDA_INIT_ERROR. Throws ConfigError.
Config load_config_from_env();

// FAKECUDA_INIT_ERROR (CUDA_SUCCESS when unset). Throws ConfigError.
CUresult init_error_from_env();

// FAKECUDA_DRIVER_VERSION; cuDriverGetVersion works before cuInit, so this
// is also read on its own. Throws ConfigError.
int driver_version_from_env();

// FAKECUDA_LOG, read first thing in cuInit so cuInit itself is traced.
bool log_enabled_from_env();

// Parsers, exposed for the PCI lookup in cuDeviceGetByPCIBusId.
// "[domain:]bus:device[.function]", hex, case-insensitive.
std::optional<PciAddress> parse_pci(std::string_view text);
// "<digits>[K|M|G|T]" (binary multiples, case-insensitive).
std::optional<std::uint64_t> parse_size(std::string_view text);

// Canonical "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" form of 16 bytes.
std::string format_uuid(const std::array<unsigned char, 16> &uuid);

} // namespace fakecuda
