#include "device_queries.hpp"

#include "driver.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace fakecuda {
namespace {

// Copies a NUL-terminated string into a caller buffer of `len` bytes,
// truncating like the real driver does for short buffers.
CUresult copy_out(const char *text, char *out, int len)
{
  if (out == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  const std::size_t n = std::min(std::strlen(text), static_cast<std::size_t>(len) - 1);
  std::memcpy(out, text, n);
  out[n] = '\0';
  return CUDA_SUCCESS;
}

} // namespace

CUresult device_get_count(const Driver &d, int *count)
{
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = d.device_count();
  return CUDA_SUCCESS;
}

CUresult device_get(const Driver &d, CUdevice *device, int ordinal)
{
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (d.device(ordinal) == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult device_get_name(const Driver &d, char *name, int len, CUdevice dev)
{
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  const Device *g = d.device(dev);
  if (g == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  return copy_out(g->cfg.name.c_str(), name, len);
}

CUresult device_get_uuid(const Driver &d, CUuuid *uuid, CUdevice dev)
{
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Device *g = d.device(dev);
  if (g == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  static_assert(sizeof uuid->bytes == 16);
  std::memcpy(uuid->bytes, g->cfg.uuid.data(), 16);
  return CUDA_SUCCESS;
}

CUresult device_total_mem(const Driver &d, size_t *bytes, CUdevice dev)
{
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Device *g = d.device(dev);
  if (g == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  *bytes = g->cfg.total;
  return CUDA_SUCCESS;
}

CUresult device_get_attribute(const Driver &d, int *value, CUdevice_attribute attrib, CUdevice dev)
{
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Device *g = d.device(dev);
  if (g == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  const int a = static_cast<int>(attrib);
  // A driver rejects an attribute past the last one it knows (its
  // CU_DEVICE_ATTRIBUTE_MAX: about 130-150 for 12.x and 13.x drivers).
  constexpr int kAttributeLimit = 160;
  if (a < 1 || a >= kAttributeLimit) return CUDA_ERROR_INVALID_VALUE;
  // Roughly an H100; anything not listed reads as 0 (unsupported).
  switch (attrib) {
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = 9; break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = 0; break;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = 132; break;
  case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: *value = 2; break;
  case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *value = 1; break;
  case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: *value = 1; break;
  case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: *value = g->cfg.vmm ? 1 : 0; break;
  case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: *value = 0; break;
  case CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT: *value = g->cfg.display ? 1 : 0; break;
  case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *value = static_cast<int>(g->cfg.pci.bus); break;
  case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *value = static_cast<int>(g->cfg.pci.device); break;
  case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *value = static_cast<int>(g->cfg.pci.domain); break;
  default: *value = 0; break;
  }
  return CUDA_SUCCESS;
}

CUresult device_get_pci_bus_id(const Driver &d, char *out, int len, CUdevice dev)
{
  if (out == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  const Device *g = d.device(dev);
  if (g == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  // Upper-case hex, as the real driver prints it (unlike sysfs, which is
  // lower-case: code under test that builds /sys paths must convert).
  char text[32];
  std::snprintf(text, sizeof text, "%04X:%02X:%02X.%X", g->cfg.pci.domain, g->cfg.pci.bus,
                g->cfg.pci.device, g->cfg.pci.function);
  return copy_out(text, out, len);
}

CUresult device_get_by_pci_bus_id(const Driver &d, CUdevice *dev, const char *bus_id)
{
  if (dev == nullptr || bus_id == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const std::string_view text(bus_id);
  const auto want = parse_pci(text); // hex parsing is case-insensitive
  if (!want) return CUDA_ERROR_INVALID_VALUE;
  const bool with_function = text.find('.') != std::string_view::npos;
  for (int i = 0; i < d.device_count(); ++i) {
    const PciAddress &have = d.device(i)->cfg.pci;
    if (have.domain == want->domain && have.bus == want->bus && have.device == want->device &&
        (!with_function || have.function == want->function)) {
      *dev = i;
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_DEVICE;
}

} // namespace fakecuda
