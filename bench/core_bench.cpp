// core-bench: the plugin's C++ core (VramStore: lane pool, staging,
// streams) driven directly by N threads doing 4 KiB random copies, beside
// the raw driver-API floor measured by the same program: one stream and
// one pinned buffer per thread, copy + stream synchronize.  No nbdkit, no
// socket: this shows whether the plugin could become the limit as NBD
// transports get faster.
//
//   core-bench [--threads 1,2,4,8,16,32] [--duration S] [--bs BYTES]
//              [--size BYTES] [--read-pct P] [--device N] [--wait MODE]
//              [--allocation eager|lazy] [--lazy-chunk BYTES] [--lazy-spare N]
//
// Prints one JSON line per (mode, threads).  With --allocation lazy it
// first times the mapping of every chunk (one 4 KiB write into each) and
// their release (a trim of each), prints them as "lazy-map" and
// "lazy-release", maps them all again ("lazy-remap"), and then measures
// the steady state.  With spares (lazy-spare=, default 8 MiB worth), each
// mapping write waits, untimed, until the spares are all ready, as they
// are when swap writes come at a pace the spares' thread keeps up with;
// --lazy-spare 0 times the driver's whole cuMemCreate in the write.
#include "byte_size.hpp"
#include "config/config.hpp"
#include "cuda/cuda_driver.hpp"
#include "cuda/cuda_handles.hpp"
#include "store/vram_store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace vram;
using clock_type = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string &m)
{
  std::fprintf(stderr, "core-bench: %s\n", m.c_str());
  std::exit(1);
}

struct Options {
  std::vector<unsigned> threads{1, 2, 4, 8, 16, 32};
  double duration = 2;
  uint64_t bs = 4096;
  uint64_t size = 1 * GiB;
  unsigned read_pct = 50;
  unsigned device = 0;
  std::string wait = "auto";
  std::string allocation = "eager";
  std::string lazy_chunk = "64M";
  std::string lazy_spare; // empty: the plugin's default
};

struct Result {
  uint64_t ops = 0;
  std::vector<uint32_t> lat_ns;
};

double percentile(std::vector<uint32_t> &v, double p)
{
  if (v.empty()) return 0;
  const size_t k =
    std::min(v.size() - 1, static_cast<size_t>(p / 100 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k] / 1000.0;
}

// Runs `op(thread, rng)` on n threads for the duration; returns ops/s and
// latency percentiles as a JSON fragment.
template <typename Op> std::string run(unsigned n, const Options &o, Op op)
{
  std::vector<Result> results(n);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(77 + t);
      Result &r = results[t];
      r.lat_ns.reserve(1 << 20);
      while (!go.load())
        std::this_thread::yield();
      const auto end = clock_type::now() + std::chrono::duration<double>(o.duration);
      for (;;) {
        const auto t0 = clock_type::now();
        if (t0 >= end) break;
        op(t, rng);
        r.lat_ns.push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count()));
        ++r.ops;
      }
    });
  const auto t0 = clock_type::now();
  go = true;
  for (auto &th : threads)
    th.join();
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::vector<uint32_t> all;
  uint64_t ops = 0;
  for (auto &r : results) {
    ops += r.ops;
    all.insert(all.end(), r.lat_ns.begin(), r.lat_ns.end());
  }
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"threads\": %u, \"ops_per_s\": %.0f, \"lat_us_p50\": %.2f, \"lat_us_p99\": %.2f",
                n, static_cast<double>(ops) / secs, percentile(all, 50), percentile(all, 99));
  return buf;
}

std::vector<unsigned> parse_list(const char *s)
{
  std::vector<unsigned> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    v.push_back(static_cast<unsigned>(std::stoul(item)));
  return v;
}

} // namespace

int main(int argc, char **argv)
{
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) die(a + " needs a value");
    const char *v = argv[++i];
    if (a == "--threads") o.threads = parse_list(v);
    else if (a == "--duration") o.duration = std::atof(v);
    else if (a == "--bs") o.bs = *parse_byte_size(v);
    else if (a == "--size") o.size = *parse_byte_size(v);
    else if (a == "--read-pct") o.read_pct = static_cast<unsigned>(std::atoi(v));
    else if (a == "--device") o.device = static_cast<unsigned>(std::atoi(v));
    else if (a == "--wait") o.wait = v;
    else if (a == "--allocation") o.allocation = v;
    else if (a == "--lazy-chunk") o.lazy_chunk = v;
    else if (a == "--lazy-spare") o.lazy_spare = v;
    else die("unknown option " + a);
  }
  const unsigned max_threads = *std::max_element(o.threads.begin(), o.threads.end());
  const uint64_t slots = o.size / o.bs;

  std::string error;
  auto driver = CudaDriver::load(error);
  if (!driver) die(error);
  if (CUresult r = driver->init(10); r != CUDA_SUCCESS) die("cuInit: " + driver->describe(r));
  const CudaApi &cu = driver->api();

  // The core, configured as the plugin would be with lanes = threads.
  ConfigBuilder b;
  b.set("size", std::to_string(o.size));
  b.set("device", std::to_string(o.device));
  b.set("wait", o.wait);
  b.set("allocation", o.allocation);
  b.set("lazy-chunk", o.lazy_chunk);
  if (!o.lazy_spare.empty()) b.set("lazy-spare", o.lazy_spare);
  const Config config = b.finish();
  VramStore::Layout layout;
  layout.device_index = o.device;
  layout.gpu_label = "GPU " + std::to_string(o.device);
  layout.lanes = max_threads;
  std::unique_ptr<VramStore> store;
  try {
    store = VramStore::open(*driver, config, layout);
  } catch (const std::exception &e) {
    die(e.what());
  }

  if (store->allocation() == Allocation::lazy) {
    const uint64_t chunk = store->lazy_chunk();
    const std::vector<std::byte> page(4096, std::byte{1});
    const uint64_t spares_ready = store->spare_target() * chunk;
    const auto wait_for_spares = [&] {
      const auto give_up = clock_type::now() + std::chrono::milliseconds(100);
      while (store->spare() < spares_ready && clock_type::now() < give_up)
        std::this_thread::sleep_for(std::chrono::microseconds(20));
    };
    const auto timed = [&](const char *what, auto op) {
      std::vector<uint32_t> ns;
      const bool maps = std::strcmp(what, "lazy-release") != 0;
      for (uint64_t at = 0; at < store->size(); at += chunk) {
        if (maps) wait_for_spares();
        const auto t0 = clock_type::now();
        const IoStatus st = op(at);
        ns.push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count()));
        if (!st) die(std::string(what) + ": " + st.message);
      }
      const double max = *std::max_element(ns.begin(), ns.end()) / 1e3;
      std::printf("{\"mode\": \"%s\", \"chunk\": %llu, \"chunks\": %zu, \"spares\": %zu, "
                  "\"us_p50\": %.1f, \"us_p99\": %.1f, \"us_max\": %.1f, \"held\": %llu}\n",
                  what, static_cast<unsigned long long>(chunk), ns.size(), store->spare_target(),
                  percentile(ns, 50), percentile(ns, 99), max,
                  static_cast<unsigned long long>(store->held()));
    };
    timed("lazy-map", [&](uint64_t at) { return store->write(page.data(), page.size(), at); });
    timed("lazy-release", [&](uint64_t at) { return store->zero(chunk, at); });
    timed("lazy-remap", [&](uint64_t at) { return store->write(page.data(), page.size(), at); });
    std::fflush(stdout);
  }

  // The floor: a second allocation, a stream and a pinned buffer per thread.
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  cu.DeviceGet(&dev, static_cast<int>(o.device));
  cu.DevicePrimaryCtxRetain(&ctx, dev);
  PrimaryContext context(&cu, dev, ctx);
  cu.CtxSetCurrent(ctx);
  CUdeviceptr raw = 0;
  if (CUresult r = cu.MemAlloc(&raw, o.size); r != CUDA_SUCCESS)
    die("cuMemAlloc: " + driver->describe(r));
  DeviceMemory raw_memory(&cu, raw);
  std::vector<Stream> streams;
  std::vector<PinnedMemory> pinned;
  for (unsigned t = 0; t < max_threads; ++t) {
    CUstream s = nullptr;
    void *p = nullptr;
    if (cu.StreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS ||
        cu.MemHostAlloc(&p, o.bs, 0) != CUDA_SUCCESS)
      die("cannot create streams / pinned buffers");
    streams.emplace_back(&cu, s);
    pinned.emplace_back(&cu, p);
  }
  std::vector<std::vector<std::byte>> host(max_threads,
                                           std::vector<std::byte>(o.bs, std::byte{0x5a}));

  for (unsigned n : o.threads) {
    const std::string floor = run(n, o, [&](unsigned t, std::mt19937_64 &rng) {
      thread_local bool bound = false;
      if (!bound) {
        cu.CtxSetCurrent(ctx);
        bound = true;
      }
      const CUdeviceptr at = raw + (rng() % slots) * o.bs;
      const bool read = rng() % 100 < o.read_pct;
      CUresult r = read ? cu.MemcpyDtoHAsync(pinned[t].get(), at, o.bs, streams[t].get())
                        : cu.MemcpyHtoDAsync(at, pinned[t].get(), o.bs, streams[t].get());
      if (r == CUDA_SUCCESS) r = cu.StreamSynchronize(streams[t].get());
      if (r != CUDA_SUCCESS) die("floor copy: " + driver->describe(r));
    });
    std::printf("{\"mode\": \"floor\", \"wait\": \"%s\", \"bs\": %llu, %s}\n", o.wait.c_str(),
                static_cast<unsigned long long>(o.bs), floor.c_str());
    const std::string core = run(n, o, [&](unsigned t, std::mt19937_64 &rng) {
      const uint64_t at = (rng() % slots) * o.bs;
      const bool read = rng() % 100 < o.read_pct;
      const IoStatus s =
        read ? store->read(host[t].data(), o.bs, at) : store->write(host[t].data(), o.bs, at);
      if (!s) die("core: " + s.message);
    });
    std::printf("{\"mode\": \"core\", \"wait\": \"%s\", \"bs\": %llu, %s}\n", o.wait.c_str(),
                static_cast<unsigned long long>(o.bs), core.c_str());
    std::fflush(stdout);
  }
  return 0;
}
