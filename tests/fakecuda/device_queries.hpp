// Device properties: everything answered from the configuration alone.
#pragma once

#include "cuda_abi.hpp"

namespace fakecuda {

class Driver;

CUresult device_get_count(const Driver &d, int *count);
CUresult device_get(const Driver &d, CUdevice *device, int ordinal);
CUresult device_get_name(const Driver &d, char *name, int len, CUdevice dev);
CUresult device_get_uuid(const Driver &d, CUuuid *uuid, CUdevice dev);
CUresult device_total_mem(const Driver &d, size_t *bytes, CUdevice dev);
CUresult device_get_attribute(const Driver &d, int *value, CUdevice_attribute attrib, CUdevice dev);
CUresult device_get_pci_bus_id(const Driver &d, char *out, int len, CUdevice dev);
CUresult device_get_by_pci_bus_id(const Driver &d, CUdevice *dev, const char *bus_id);

} // namespace fakecuda
