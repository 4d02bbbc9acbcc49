// nbd-loadgen: a closed-loop NBD load generator over libnbd, one
// connection per thread, one request in flight per connection.  It runs
// where fio cannot be installed (the GPU machine) and prints JSON.
//
//   nbd-loadgen URI [--connections N] [--bs BYTES] [--pattern rand|seq]
//                   [--read-pct P] [--duration S] [--sporadic-ms MS]
//                   [--span BYTES] [--prefill] [--label TEXT]
//
// --prefill writes the whole span once before measuring, so servers that
// keep unwritten blocks sparse (nbdkit-memory-plugin) are measured on
// data, as the plugin under test always is.
//
// --sporadic-ms issues one request every MS milliseconds per connection
// (like ioping), to measure the latency of an idle device.
#include <libnbd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct NbdDeleter {
  void operator()(nbd_handle *h) const { nbd_close(h); }
};
using Nbd = std::unique_ptr<nbd_handle, NbdDeleter>;

[[noreturn]] void die(const std::string &what)
{
  std::fprintf(stderr, "nbd-loadgen: %s\n", what.c_str());
  std::exit(1);
}

uint64_t parse_u64(const char *s)
{
  char *end = nullptr;
  uint64_t v = std::strtoull(s, &end, 0);
  switch (*end) {
  case 'K': case 'k': v <<= 10; break;
  case 'M': case 'm': v <<= 20; break;
  case 'G': case 'g': v <<= 30; break;
  case 0: break;
  default: die(std::string("bad number: ") + s);
  }
  return v;
}

struct Options {
  std::string uri;
  unsigned connections = 1;
  uint64_t bs = 4096;
  bool random = true;
  unsigned read_pct = 50;
  double duration = 5;
  double sporadic_ms = 0;
  uint64_t span = 0;
  std::string label;
  bool prefill = false;
};

struct ThreadResult {
  std::vector<uint32_t> latency_ns;
  uint64_t reads = 0, writes = 0;
};

double percentile(std::vector<uint32_t> &v, double p)
{
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k] / 1000.0;
}

} // namespace

int main(int argc, char **argv)
{
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char * {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--connections") o.connections = static_cast<unsigned>(parse_u64(next()));
    else if (a == "--bs") o.bs = parse_u64(next());
    else if (a == "--pattern") o.random = std::string(next()) == "rand";
    else if (a == "--read-pct") o.read_pct = static_cast<unsigned>(parse_u64(next()));
    else if (a == "--duration") o.duration = std::atof(next());
    else if (a == "--sporadic-ms") o.sporadic_ms = std::atof(next());
    else if (a == "--span") o.span = parse_u64(next());
    else if (a == "--label") o.label = next();
    else if (a == "--prefill") o.prefill = true;
    else if (o.uri.empty() && a.rfind("--", 0) != 0) o.uri = a;
    else die("unknown option " + a);
  }
  if (o.uri.empty() || o.connections == 0 || o.bs == 0) die("usage: nbd-loadgen URI [options]");

  std::vector<Nbd> handles;
  for (unsigned i = 0; i < o.connections; ++i) {
    Nbd h(nbd_create());
    if (!h || nbd_connect_uri(h.get(), o.uri.c_str()) == -1)
      die(std::string("connect: ") + nbd_get_error());
    handles.push_back(std::move(h));
  }
  const int64_t size = nbd_get_size(handles[0].get());
  if (size <= 0) die(std::string("get_size: ") + nbd_get_error());
  const uint64_t span = std::min<uint64_t>(o.span ? o.span : static_cast<uint64_t>(size),
                                           static_cast<uint64_t>(size));
  const uint64_t slots = span / o.bs;
  if (slots == 0) die("export smaller than one block");

  if (o.prefill) {
    std::vector<uint8_t> block(1 << 20, 0x5a);
    for (uint64_t off = 0; off < span; off += block.size()) {
      const uint64_t n = std::min<uint64_t>(block.size(), span - off);
      if (nbd_pwrite(handles[0].get(), block.data(), n, off, 0) == -1)
        die(std::string("prefill: ") + nbd_get_error());
    }
  }

  std::vector<ThreadResult> results(o.connections);
  std::atomic<bool> go{false};
  const auto deadline_after = std::chrono::duration<double>(o.duration);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < o.connections; ++t)
    threads.emplace_back([&, t] {
      nbd_handle *h = handles[t].get();
      ThreadResult &r = results[t];
      r.latency_ns.reserve(1 << 20);
      std::mt19937_64 rng(1234 + t);
      std::vector<uint8_t> buf(o.bs);
      for (auto &b : buf) b = static_cast<uint8_t>(rng());
      uint64_t seq = (slots / o.connections) * t;
      while (!go.load()) std::this_thread::yield();
      const auto start = clock_type::now();
      auto next_issue = start;
      while (clock_type::now() - start < deadline_after) {
        if (o.sporadic_ms > 0) {
          next_issue += std::chrono::microseconds(static_cast<int64_t>(o.sporadic_ms * 1000));
          std::this_thread::sleep_until(next_issue);
        }
        const uint64_t slot = o.random ? rng() % slots : (seq++ % slots);
        const bool read = rng() % 100 < o.read_pct;
        const auto t0 = clock_type::now();
        const int rc = read ? nbd_pread(h, buf.data(), o.bs, slot * o.bs, 0)
                            : nbd_pwrite(h, buf.data(), o.bs, slot * o.bs, 0);
        const auto t1 = clock_type::now();
        if (rc == -1) die(std::string(read ? "read: " : "write: ") + nbd_get_error());
        r.latency_ns.push_back(static_cast<uint32_t>(
          std::min<int64_t>(UINT32_MAX, std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count())));
        (read ? r.reads : r.writes)++;
      }
    });
  const auto t0 = clock_type::now();
  go = true;
  for (auto &th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();

  std::vector<uint32_t> all;
  uint64_t reads = 0, writes = 0;
  for (auto &r : results) {
    all.insert(all.end(), r.latency_ns.begin(), r.latency_ns.end());
    reads += r.reads;
    writes += r.writes;
  }
  const double ops = static_cast<double>(reads + writes);
  std::printf("{\"label\": \"%s\", \"connections\": %u, \"bs\": %" PRIu64 ", \"pattern\": \"%s\", "
              "\"read_pct\": %u, \"sporadic_ms\": %g, \"duration_s\": %.3f, \"ops\": %.0f, "
              "\"ops_per_s\": %.0f, \"mb_per_s\": %.1f, \"lat_us_p50\": %.1f, \"lat_us_p99\": %.1f, "
              "\"lat_us_p999\": %.1f}\n",
              o.label.c_str(), o.connections, o.bs, o.random ? "rand" : "seq", o.read_pct,
              o.sporadic_ms, elapsed, ops, ops / elapsed, ops * static_cast<double>(o.bs) / elapsed / 1e6,
              percentile(all, 50), percentile(all, 99), percentile(all, 99.9));
  return 0;
}
