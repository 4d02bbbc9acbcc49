// How fast the filter's pieces are on this machine:
//   integrity-crc-bench [seconds-per-point]
// CRC32C throughput per buffer size (ISA-L's, as the filter calls it),
// and the core's cost per 4 KiB request against an in-memory backend, by
// threads.  Prints one JSON object per line.
#include "checked_export.hpp"
#include "crc32c.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace {

using namespace integrity;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t)
{
  return std::chrono::duration<double>(Clock::now() - t).count();
}

template <typename F> double gbytes_per_s(F &&crc, size_t size, double seconds)
{
  std::vector<std::byte> buf(size);
  std::mt19937_64 rng(1);
  for (auto &b : buf)
    b = static_cast<std::byte>(rng());
  volatile uint32_t sink = 0;
  uint64_t bytes = 0;
  const auto start = Clock::now();
  do {
    for (int i = 0; i < 64; ++i) {
      sink = sink + crc(std::span<const std::byte>(buf), 0u);
      bytes += size;
    }
  } while (seconds_since(start) < seconds);
  return static_cast<double>(bytes) / seconds_since(start) / 1e9;
}

class MemoryBackend final : public Backend {
public:
  explicit MemoryBackend(size_t size) : data_(size) {}
  int read(std::span<std::byte> b, uint64_t off) override
  {
    std::memcpy(b.data(), data_.data() + off, b.size());
    return 0;
  }
  int write(std::span<const std::byte> d, uint64_t off, WriteFlags) override
  {
    std::memcpy(data_.data() + off, d.data(), d.size());
    return 0;
  }
  int zero(uint64_t len, uint64_t off, WriteFlags) override
  {
    std::memset(data_.data() + off, 0, len);
    return 0;
  }

private:
  std::vector<std::byte> data_;
};

// 4 KiB random 50/50 requests: through the core, and straight to the
// backend, to show what the checks cost per request.
double requests_per_s(bool checked, unsigned threads, double seconds)
{
  constexpr size_t size = 256 << 20;
  MemoryBackend backend(size);
  CheckedExport exp("bench", size, Settings{4096, MlockPolicy::off});
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      std::vector<std::byte> buf(4096, std::byte{static_cast<unsigned char>(t)});
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t off = (rng() % (size / 4096)) * 4096;
        if (rng() & 1) {
          if (checked ? exp.write(backend, buf, off, {}) : backend.write(buf, off, {}))
            std::abort();
        } else {
          if (checked ? exp.read(backend, buf, off) : backend.read(buf, off)) std::abort();
        }
        ++n;
      }
      total += n;
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto &w : workers)
    w.join();
  return static_cast<double>(total) / seconds;
}

} // namespace

int main(int argc, char **argv)
{
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  for (size_t size : {512u, 4096u, 65536u, 1u << 20})
    std::printf("{\"crc\": \"isa-l\", \"bytes\": %zu, \"gb_per_s\": %.2f}\n", size,
                gbytes_per_s(crc32c, size, seconds));
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned threads : {1u, cpus}) {
    const double plain = requests_per_s(false, threads, seconds);
    const double checked = requests_per_s(true, threads, seconds);
    std::printf("{\"core\": \"4k-randrw\", \"threads\": %u, \"plain_ops_per_s\": %.0f, "
                "\"checked_ops_per_s\": %.0f, \"ns_per_request_added\": %.0f}\n",
                threads, plain, checked, (threads / checked - threads / plain) * 1e9);
    if (cpus == 1) break;
  }
  return 0;
}
