#include "cuda/gpu_inventory.hpp"

#include "byte_size.hpp"
#include "cuda/cuda_handles.hpp"

#include <cstring>
#include <sstream>

namespace vram {
namespace {

std::string cuda_failure(const CudaDriver &driver, const char *what, CUresult r)
{
  return std::string(what) + " failed: " + driver.describe(r);
}

bool probe_one(const CudaDriver &driver, int ordinal, GpuInfo &gpu, std::string &error)
{
  const CudaApi &cu = driver.api();
  CUdevice dev = 0;
  CUresult r = cu.DeviceGet(&dev, ordinal);
  if (r != CUDA_SUCCESS) {
    error = cuda_failure(driver, "cuDeviceGet", r);
    return false;
  }
  gpu.index = static_cast<unsigned>(ordinal);

  char name[256] = {};
  if ((r = cu.DeviceGetName(name, sizeof name - 1, dev)) != CUDA_SUCCESS) {
    error = cuda_failure(driver, "cuDeviceGetName", r);
    return false;
  }
  gpu.name = name;

  CUuuid uuid{};
  if ((r = cu.DeviceGetUuid(&uuid, dev)) != CUDA_SUCCESS) {
    error = cuda_failure(driver, "cuDeviceGetUuid", r);
    return false;
  }
  std::memcpy(gpu.uuid.data(), uuid.bytes, gpu.uuid.size());

  size_t total = 0;
  if ((r = cu.DeviceTotalMem(&total, dev)) != CUDA_SUCCESS) {
    error = cuda_failure(driver, "cuDeviceTotalMem", r);
    return false;
  }
  gpu.total = total;

  int domain = 0, bus = 0, device = 0, timeout = 0;
  if ((r = cu.DeviceGetAttribute(&domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, dev)) !=
        CUDA_SUCCESS ||
      (r = cu.DeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, dev)) != CUDA_SUCCESS ||
      (r = cu.DeviceGetAttribute(&device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, dev)) !=
        CUDA_SUCCESS) {
    error = cuda_failure(driver, "cuDeviceGetAttribute(PCI)", r);
    return false;
  }
  gpu.pci = PciAddress{static_cast<uint32_t>(domain), static_cast<uint32_t>(bus),
                       static_cast<uint32_t>(device), 0};
  // The run-time watchdog is on exactly when a display is attached: the
  // driver's own signal that the GPU serves a desktop.
  if (cu.DeviceGetAttribute(&timeout, CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, dev) == CUDA_SUCCESS)
    gpu.display = timeout != 0;

  return true;
}

bool measure_free(const CudaDriver &driver, GpuInfo &gpu, std::string &error)
{
  const CudaApi &cu = driver.api();
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUresult r = cu.DeviceGet(&dev, static_cast<int>(gpu.index));
  if (r == CUDA_SUCCESS) r = cu.DevicePrimaryCtxRetain(&ctx, dev);
  if (r != CUDA_SUCCESS) {
    error = gpu.label() + ": cannot create a CUDA context (" + driver.describe(r) + ")";
    return false;
  }
  PrimaryContext context(&cu, dev, ctx);
  size_t free = 0, total = 0;
  if ((r = cu.CtxSetCurrent(ctx)) != CUDA_SUCCESS ||
      (r = cu.MemGetInfo(&free, &total)) != CUDA_SUCCESS) {
    error = cuda_failure(driver, "cuMemGetInfo", r) + " on " + gpu.label();
    return false;
  }
  gpu.free = free;
  (void)cu.CtxSetCurrent(nullptr);
  return true;
}

} // namespace

std::string GpuInfo::label() const
{
  return "GPU " + std::to_string(index) + " (" + name + ", " + format_pci_address(pci) + ")";
}

std::string format_driver_version(int v)
{
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

Inventory probe_gpus(const CudaDriver &driver, unsigned init_timeout_s, const WantFree &want_free)
{
  Inventory inv;
  const CudaApi &cu = driver.api();
  int version = 0;
  if (cu.DriverGetVersion(&version) == CUDA_SUCCESS) inv.driver_version = version;

  CUresult r = driver.init(init_timeout_s);
  if (r == CUDA_ERROR_NO_DEVICE) {
    inv.error = "no NVIDIA GPU found: the driver is loaded but reports no CUDA device "
                "(cuInit: " +
                driver.describe(r) + ")";
    return inv;
  }
  if (r != CUDA_SUCCESS) {
    inv.error = "the NVIDIA driver failed to initialise (cuInit: " + driver.describe(r) +
                "). Check that nvidia-smi works; after a driver update, reboot";
    return inv;
  }
  int count = 0;
  if ((r = cu.DeviceGetCount(&count)) != CUDA_SUCCESS) {
    inv.error = cuda_failure(driver, "cuDeviceGetCount", r);
    return inv;
  }
  for (int i = 0; i < count; ++i) {
    GpuInfo gpu;
    if (!probe_one(driver, i, gpu, inv.error)) return inv;
    if (want_free && want_free(gpu) && !measure_free(driver, gpu, inv.error)) return inv;
    inv.gpus.push_back(std::move(gpu));
  }
  if (inv.gpus.empty()) inv.error = "no NVIDIA GPU found (the driver reports 0 devices)";
  return inv;
}

Inventory probe_gpus(unsigned init_timeout_s, const WantFree &want_free)
{
  std::string error;
  auto driver = CudaDriver::load(error);
  if (!driver) {
    Inventory inv;
    inv.error = error;
    return inv;
  }
  return probe_gpus(*driver, init_timeout_s, want_free);
}

bool matches(const GpuInfo &gpu, const DeviceSelector &sel)
{
  switch (sel.kind) {
  case DeviceSelector::Kind::index: return gpu.index == sel.index;
  case DeviceSelector::Kind::uuid: return gpu.uuid == sel.uuid;
  case DeviceSelector::Kind::pci: return gpu.pci == sel.pci;
  }
  return false;
}

const GpuInfo *select_gpu(const Inventory &inv, const DeviceSelector &sel, std::string &error)
{
  for (const GpuInfo &gpu : inv.gpus)
    if (matches(gpu, sel)) return &gpu;
  std::string list;
  for (const GpuInfo &gpu : inv.gpus)
    list += "\n  " + std::to_string(gpu.index) + ": " + gpu.name + ", " +
            format_gpu_uuid(gpu.uuid) + ", " + format_pci_address(gpu.pci);
  const std::string count =
    std::to_string(inv.gpus.size()) + (inv.gpus.size() == 1 ? " GPU" : " GPUs");
  if (sel.kind == DeviceSelector::Kind::index)
    error = "device=" + sel.text + ": no such GPU, this machine has " + count + " (device=0" +
            (inv.gpus.size() > 1 ? " to " + std::to_string(inv.gpus.size() - 1) : "") + "):" + list;
  else
    error = "device=" + sel.text + ": no GPU has this " +
            (sel.kind == DeviceSelector::Kind::uuid ? "UUID" : "PCI bus id") +
            "; this machine has " + count + ":" + list;
  return nullptr;
}

namespace {

// Text fields (the error, a GPU's name) with backslash, newline and tab
// written as \\, \n and \t, so a record stays one line of tab-separated
// fields whatever the driver or the system put in them.
std::string escape_field(const std::string &s)
{
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out;
}

std::optional<std::string> unescape_field(const std::string &s)
{
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return std::nullopt;
    if (s[i] == '\\') out += '\\';
    else if (s[i] == 'n') out += '\n';
    else if (s[i] == 't') out += '\t';
    else return std::nullopt;
  }
  return out;
}

} // namespace

// Format: one record per line, fields separated by tabs, text fields
// escaped (escape_field).
//   driver <version>
//   error <message>
//   gpu <index> <total> <free|-> <display> <pci> <uuid> <name>
std::string serialize(const Inventory &inv)
{
  std::ostringstream out;
  out << "driver\t" << inv.driver_version << "\n";
  for (const GpuInfo &g : inv.gpus) {
    out << "gpu\t" << g.index << "\t" << g.total << "\t";
    if (g.free) out << *g.free;
    else out << "-";
    out << "\t" << (g.display ? 1 : 0) << "\t" << format_pci_address(g.pci) << "\t"
        << format_gpu_uuid(g.uuid) << "\t" << escape_field(g.name) << "\n";
  }
  if (!inv.error.empty()) out << "error\t" << escape_field(inv.error) << "\n";
  return out.str();
}

std::optional<Inventory> deserialize(const std::string &text)
{
  Inventory inv;
  std::istringstream in(text);
  std::string line;
  bool saw_driver = false;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::string field;
    std::istringstream fields(line);
    while (std::getline(fields, field, '\t'))
      f.push_back(field);
    if (f.empty()) continue;
    try {
      if (f[0] == "driver" && f.size() == 2) {
        inv.driver_version = std::stoi(f[1]);
        saw_driver = true;
      } else if (f[0] == "error" && f.size() == 2) {
        auto e = unescape_field(f[1]);
        if (!e) return std::nullopt;
        inv.error = *e;
      } else if (f[0] == "gpu" && f.size() == 8) {
        GpuInfo g;
        g.index = static_cast<unsigned>(std::stoul(f[1]));
        g.total = std::stoull(f[2]);
        if (f[3] != "-") g.free = std::stoull(f[3]);
        g.display = f[4] == "1";
        auto pci = parse_pci_address(f[5]);
        auto uuid = parse_gpu_uuid(f[6]);
        if (!pci || !uuid) return std::nullopt;
        g.pci = *pci;
        g.uuid = *uuid;
        auto name = unescape_field(f[7]);
        if (!name) return std::nullopt;
        g.name = *name;
        inv.gpus.push_back(std::move(g));
      } else {
        return std::nullopt;
      }
    } catch (const std::exception &) {
      return std::nullopt;
    }
  }
  if (!saw_driver) return std::nullopt;
  return inv;
}

} // namespace vram
