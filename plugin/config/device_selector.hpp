// Which GPU the user asked for: "device=0", "device=GPU-8a3c...",
// "device=0000:01:00.0".  Parsing is pure; matching happens against the
// inventory that the GPU probe returns.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vram {

using GpuUuid = std::array<uint8_t, 16>;

struct PciAddress {
  uint32_t domain = 0;
  uint32_t bus = 0;
  uint32_t device = 0;
  uint32_t function = 0;
  bool operator==(const PciAddress &) const = default;
};

struct DeviceSelector {
  enum class Kind { index, uuid, pci } kind = Kind::index;
  unsigned index = 0;
  GpuUuid uuid{};
  PciAddress pci{};
  std::string text; // as the user wrote it, for messages
};

// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (the prefix is optional,
// case-insensitive), as nvidia-smi -L prints it.
std::optional<GpuUuid> parse_gpu_uuid(std::string_view text);
std::string format_gpu_uuid(const GpuUuid &uuid);

// "[domain:]bus:device.function" in hex, as nvidia-smi (8-digit domain) and
// lspci / the CUDA driver (4-digit domain) print it.
std::optional<PciAddress> parse_pci_address(std::string_view text);
std::string format_pci_address(const PciAddress &pci);

std::optional<DeviceSelector> parse_device_selector(std::string_view text);

} // namespace vram
