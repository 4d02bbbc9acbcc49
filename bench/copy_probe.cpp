// copy-probe: how long one GPU operation of each candidate kind takes
// (enqueue, then cuStreamSynchronize), and whether another process's work
// on the GPU delays it.  Run it quiet and again beside a compute job
// (bench/gpu_load.py, bench/contention.sh): the operations whose time
// does not move are the ones the plugin's data path may use.
//
//   copy-probe [--iters N] [--device N] [--label TEXT] [--only SUBSTRING]
//
// Prints one JSON line per operation: label, bytes, p50/p90/max in
// microseconds, and "ok" when the data the operation left in VRAM was
// read back and checked.
#include "byte_size.hpp"
#include "cuda/cuda_driver.hpp"
#include "cuda/cuda_handles.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace vram;
using clock_type = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string &m)
{
  std::fprintf(stderr, "copy-probe: %s\n", m.c_str());
  std::exit(1);
}

double percentile(std::vector<double> v, double p)
{
  if (v.empty()) return 0;
  const size_t k =
    std::min(v.size() - 1, static_cast<size_t>(p / 100 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

template <typename F> F resolve(const CudaDriver &d, const char *name)
{
  void *p = d.entry_point(name);
  if (!p) die(std::string("the driver lacks ") + name);
  return reinterpret_cast<F>(p);
}

// `rows` rows of `width` bytes, back to back on both sides.  A source of
// any type but CU_MEMORYTYPE_HOST is given in srcDevice (a device pointer,
// or a host pointer as CU_MEMORYTYPE_UNIFIED).
CUDA_MEMCPY2D rows_copy(CUmemorytype src_type, const void *src, CUmemorytype dst_type,
                        CUdeviceptr dst, uint64_t width, uint64_t rows)
{
  CUDA_MEMCPY2D p{};
  p.srcMemoryType = src_type;
  if (src_type == CU_MEMORYTYPE_HOST) p.srcHost = src;
  else p.srcDevice = reinterpret_cast<CUdeviceptr>(src);
  p.srcPitch = width;
  p.dstMemoryType = dst_type;
  p.dstDevice = dst;
  p.dstPitch = width;
  p.WidthInBytes = width;
  p.Height = rows;
  return p;
}

// What an operation leaves behind, to check after it ran.
enum class Expect { pattern, zeroes, copy_of_source };

struct Case {
  std::string label;
  uint64_t bytes;
  Expect expect;
  std::function<CUresult(CUstream)> enqueue;
};

} // namespace

int main(int argc, char **argv)
{
  unsigned iters = 200, device = 0;
  std::string label = "quiet", only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) die(a + " needs a value");
    const char *v = argv[++i];
    if (a == "--iters") iters = static_cast<unsigned>(std::atoi(v));
    else if (a == "--device") device = static_cast<unsigned>(std::atoi(v));
    else if (a == "--label") label = v;
    else if (a == "--only") only = v;
    else die("unknown option " + a);
  }

  std::string error;
  auto driver = CudaDriver::load(error);
  if (!driver) die(error);
  if (CUresult r = driver->init(10); r != CUDA_SUCCESS) die("cuInit: " + driver->describe(r));
  const CudaApi &cu = driver->api();
  const auto memcpy2d = resolve<PFN_cuMemcpy2DAsync>(*driver, "cuMemcpy2DAsync");
  const auto memset2d = resolve<PFN_cuMemsetD2D8Async>(*driver, "cuMemsetD2D8Async");
  const auto memset32 = resolve<PFN_cuMemsetD32Async>(*driver, "cuMemsetD32Async");
  const auto memcpy_dd = resolve<PFN_cuMemcpyDtoDAsync>(*driver, "cuMemcpyDtoDAsync");

  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  if (cu.DeviceGet(&dev, static_cast<int>(device)) != CUDA_SUCCESS ||
      cu.DevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cu.CtxSetCurrent(ctx) != CUDA_SUCCESS)
    die("cannot open the GPU's primary context");
  PrimaryContext context(&cu, dev, ctx);

  const uint64_t span = 256 * MiB;
  CUdeviceptr d = 0, dsrc = 0, dzero = 0;
  void *h = nullptr, *hzero = nullptr, *hcheck = nullptr;
  if (cu.MemAlloc(&d, span) != CUDA_SUCCESS || cu.MemAlloc(&dsrc, span) != CUDA_SUCCESS ||
      cu.MemAlloc(&dzero, span) != CUDA_SUCCESS || cu.MemHostAlloc(&h, span, 0) != CUDA_SUCCESS ||
      cu.MemHostAlloc(&hzero, span, 0) != CUDA_SUCCESS ||
      cu.MemHostAlloc(&hcheck, span, 0) != CUDA_SUCCESS)
    die("cannot allocate the probe's buffers");
  DeviceMemory dm(&cu, d), dsm(&cu, dsrc), dzm(&cu, dzero);
  PinnedMemory hm(&cu, h), hzm(&cu, hzero), hcm(&cu, hcheck);
  std::memset(hzero, 0, span);
  CUstream s = nullptr;
  if (cu.StreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) die("cuStreamCreate");
  Stream stream(&cu, s);
  auto *hb = static_cast<unsigned char *>(h);
  std::mt19937_64 rng(7);
  for (uint64_t i = 0; i < span; i += 8) {
    const uint64_t x = rng();
    std::memcpy(hb + i, &x, 8);
  }
  // The device source holds the same pattern as the host buffer.
  if (cu.MemcpyHtoDAsync(dsrc, h, span, s) != CUDA_SUCCESS ||
      cu.MemsetD8Async(dzero, 0, span, s) != CUDA_SUCCESS ||
      cu.StreamSynchronize(s) != CUDA_SUCCESS)
    die("cannot fill the probe's buffers");

  // Offsets vary per iteration so that no two runs of one case hit the
  // same bytes (and a check sees this run's data).
  const uint64_t offset = 3 * 4096;

  std::vector<Case> cases;
  const auto h2d_1d = [&](uint64_t n) {
    cases.push_back({"h2d-1d", n, Expect::pattern, [=, &cu](CUstream st) {
                       return cu.MemcpyHtoDAsync(d + offset, hb + offset, n, st);
                     }});
  };
  const auto h2d_2d = [&](uint64_t width, uint64_t height, CUmemorytype src_type) {
    cases.push_back(
      {std::string(src_type == CU_MEMORYTYPE_HOST ? "h2d-2d-host-w" : "h2d-2d-unified-w") +
         std::to_string(width) + "x" + std::to_string(height),
       width * height, Expect::pattern, [=](CUstream st) {
         const CUDA_MEMCPY2D p =
           rows_copy(src_type, hb + offset, CU_MEMORYTYPE_DEVICE, d + offset, width, height);
         return memcpy2d(&p, st);
       }});
  };
  const auto h2d_zero_1d = [&](uint64_t n) {
    cases.push_back({"h2d-1d-from-pinned-zeroes", n, Expect::zeroes, [=, &cu](CUstream st) {
                       return cu.MemcpyHtoDAsync(d + offset, hzero, n, st);
                     }});
  };
  const auto h2d_zero_2d = [&](uint64_t width, uint64_t height) {
    cases.push_back(
      {"h2d-2d-from-pinned-zeroes-w" + std::to_string(width) + "x" + std::to_string(height),
       width * height, Expect::zeroes, [=](CUstream st) {
         const CUDA_MEMCPY2D p =
           rows_copy(CU_MEMORYTYPE_HOST, hzero, CU_MEMORYTYPE_DEVICE, d + offset, width, height);
         return memcpy2d(&p, st);
       }});
  };
  const auto memset_1d = [&](uint64_t n) {
    cases.push_back({"memset-d8", n, Expect::zeroes,
                     [=, &cu](CUstream st) { return cu.MemsetD8Async(d + offset, 0, n, st); }});
  };
  const auto memset_2d = [&](uint64_t width, uint64_t height) {
    cases.push_back({"memset-d2d8-w" + std::to_string(width) + "x" + std::to_string(height),
                     width * height, Expect::zeroes, [=](CUstream st) {
                       return memset2d(d + offset, width, 0, width, height, st);
                     }});
  };
  const auto memset_32 = [&](uint64_t n) {
    cases.push_back({"memset-d32", n, Expect::zeroes,
                     [=](CUstream st) { return memset32(d + offset, 0, n / 4, st); }});
  };
  const auto d2d_zero_1d = [&](uint64_t n) {
    cases.push_back({"d2d-1d-from-vram-zeroes", n, Expect::zeroes,
                     [=](CUstream st) { return memcpy_dd(d + offset, dzero, n, st); }});
  };
  const auto d2d_2d = [&](uint64_t width, uint64_t height) {
    cases.push_back(
      {"d2d-2d-from-vram-zeroes-w" + std::to_string(width) + "x" + std::to_string(height),
       width * height, Expect::zeroes, [=](CUstream st) {
         const CUDA_MEMCPY2D p =
           rows_copy(CU_MEMORYTYPE_DEVICE, reinterpret_cast<const void *>(dzero),
                     CU_MEMORYTYPE_DEVICE, d + offset, width, height);
         return memcpy2d(&p, st);
       }});
  };
  const auto d2h_1d = [&](uint64_t n) {
    cases.push_back({"d2h-1d", n, Expect::copy_of_source, [=, &cu](CUstream st) {
                       return cu.MemcpyDtoHAsync(hcheck, dsrc + offset, n, st);
                     }});
  };

  for (uint64_t n : {512u, 4096u, 16384u, 28672u, 32768u, 65536u})
    h2d_1d(n);
  for (uint64_t w : {4096u, 2048u, 1024u, 512u, 256u, 128u, 64u})
    h2d_2d(w, 4096 / w, CU_MEMORYTYPE_HOST);
  h2d_2d(2048, 2, CU_MEMORYTYPE_UNIFIED);
  h2d_2d(64, 64, CU_MEMORYTYPE_UNIFIED);
  h2d_2d(256, 2, CU_MEMORYTYPE_HOST);
  h2d_2d(64, 8, CU_MEMORYTYPE_HOST);
  h2d_2d(1, 2, CU_MEMORYTYPE_HOST);
  h2d_2d(8192, 2, CU_MEMORYTYPE_HOST);
  h2d_2d(1024, 16, CU_MEMORYTYPE_HOST);
  h2d_2d(14336, 2, CU_MEMORYTYPE_HOST);
  h2d_2d(1024, 28, CU_MEMORYTYPE_HOST);
  h2d_2d(128 * KiB, 2, CU_MEMORYTYPE_HOST);
  for (uint64_t n : {4096u, 65536u, 2u * 1048576u, 64u * 1048576u})
    memset_1d(n);
  memset_32(4096);
  memset_2d(64, 64);
  memset_2d(2048, 2);
  memset_2d(1 * MiB, 2);
  for (uint64_t n : {4096u, 32768u, 262144u, 2u * 1048576u, 64u * 1048576u})
    h2d_zero_1d(n);
  h2d_zero_2d(2048, 2);
  h2d_zero_2d(64, 64);
  for (uint64_t n : {4096u, 2u * 1048576u, 64u * 1048576u})
    d2d_zero_1d(n);
  d2d_2d(64, 64);
  d2d_2d(2048, 2);
  d2d_2d(1 * MiB, 2);
  d2d_2d(64 * KiB, 32);
  d2d_2d(32 * MiB, 2);
  d2d_2d(1 * MiB, 64);
  for (uint64_t n : {4096u, 65536u})
    d2h_1d(n);

  auto *check = static_cast<unsigned char *>(hcheck);
  for (const Case &c : cases) {
    if (!only.empty() && c.label.find(only) == std::string::npos) continue;
    const unsigned n = c.bytes >= 16 * MiB ? std::max(10u, iters / 10) : iters;
    std::vector<double> us;
    us.reserve(n);
    for (unsigned i = 0; i < n + 5; ++i) {
      const auto t0 = clock_type::now();
      CUresult r = c.enqueue(s);
      if (r == CUDA_SUCCESS) r = cu.StreamSynchronize(s);
      const double t = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
      if (r != CUDA_SUCCESS) die(c.label + ": " + driver->describe(r));
      if (i >= 5) us.push_back(t);
    }
    // Check what the last run left: dirty the region first, run once more.
    bool ok = true;
    if (c.expect != Expect::copy_of_source) {
      if (cu.MemsetD8Async(d, 0xa5, offset + c.bytes + 4096, s) != CUDA_SUCCESS ||
          c.enqueue(s) != CUDA_SUCCESS ||
          cu.MemcpyDtoHAsync(hcheck, d, offset + c.bytes + 4096, s) != CUDA_SUCCESS ||
          cu.StreamSynchronize(s) != CUDA_SUCCESS)
        die(c.label + ": check failed to run");
      for (uint64_t i = 0; i < offset + c.bytes + 4096 && ok; ++i) {
        const bool inside = i >= offset && i < offset + c.bytes;
        const unsigned char want = !inside ? 0xa5 : c.expect == Expect::zeroes ? 0 : hb[i];
        ok = check[i] == want;
      }
    } else {
      ok = std::memcmp(check, hb + offset, c.bytes) == 0;
    }
    std::printf("{\"load\": \"%s\", \"op\": \"%s\", \"bytes\": %llu, \"p50_us\": %.1f, "
                "\"p90_us\": %.1f, \"max_us\": %.1f, \"ok\": %s}\n",
                label.c_str(), c.label.c_str(), static_cast<unsigned long long>(c.bytes),
                percentile(us, 50), percentile(us, 90), *std::max_element(us.begin(), us.end()),
                ok ? "true" : "false");
    std::fflush(stdout);
  }
  return 0;
}
