// What GPUs the driver sees: index, name, UUID, PCI id, memory, whether a
// display hangs off it.  Used by --dump-plugin, by the pre-start check and
// to resolve device= to a CUDA index.
#pragma once

#include "config/device_selector.hpp"
#include "cuda/cuda_driver.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vram {

struct GpuInfo {
  unsigned index = 0;
  std::string name;
  GpuUuid uuid{};
  PciAddress pci{};
  uint64_t total = 0;
  std::optional<uint64_t> free; // needs a context: only probed when asked
  bool display = false;

  // "GPU 0 (NVIDIA H100 80GB HBM3, 0000:01:00.0)"
  std::string label() const;
};

struct Inventory {
  int driver_version = 0; // 12080 for CUDA 12.8; 0 when unknown
  std::vector<GpuInfo> gpus;
  std::string error; // non-empty: the driver could not be used
};

// Which GPUs to measure free memory on: that needs a CUDA context on the
// device, which costs time and VRAM, so only the ones that matter.
using WantFree = std::function<bool(const GpuInfo &)>;

// Enumerates the GPUs.  Never throws; failures land in Inventory::error.
Inventory probe_gpus(unsigned init_timeout_s, const WantFree &want_free);

// Same, with an already loaded driver.
Inventory probe_gpus(const CudaDriver &driver, unsigned init_timeout_s, const WantFree &want_free);

bool matches(const GpuInfo &gpu, const DeviceSelector &sel);

// Resolves device= against the inventory.  Returns nullptr and sets
// `error` (naming the GPUs that exist) when nothing matches.
const GpuInfo *select_gpu(const Inventory &inv, const DeviceSelector &sel, std::string &error);

// A line-oriented text form, to carry an inventory out of a child process.
std::string serialize(const Inventory &inv);
std::optional<Inventory> deserialize(const std::string &text);

// "13.0" from 13000.
std::string format_driver_version(int version);

} // namespace vram
