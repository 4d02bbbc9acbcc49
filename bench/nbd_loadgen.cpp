// nbd-loadgen: an NBD load generator over libnbd, one connection per
// thread, with a chosen number of requests in flight per connection.  It
// runs where fio cannot be installed (the GPU machine) and prints JSON.
//
//   nbd-loadgen URI [--connections N] [--qd N] [--bs BYTES]
//                   [--pattern rand|seq] [--read-pct P] [--duration S]
//                   [--sporadic-ms MS] [--span BYTES] [--prefill]
//                   [--verify] [--write-as write|zero|trim] [--label TEXT]
//                   [--data fixed|random|mixed]
//
// --qd 1 (the default) uses libnbd's synchronous calls; deeper queues use
//   its asynchronous API.
// --sporadic-ms issues one request every MS milliseconds per connection
//   (like ioping), to measure the latency of an otherwise idle device.
// --prefill writes the whole span once before measuring, so servers that
//   keep unwritten blocks sparse (nbdkit-memory-plugin) are measured on
//   data, as the vram plugin always is.
// --write-as zero|trim sends zero or trim requests where the mix has a
//   write (with --read-pct 0: only zeroes or trims); not with --verify.
// --data: what writes (and --prefill) carry.  fixed (the default): one
//   byte value repeated, whatever the buffer last held; random: a new
//   pattern per write, which no compressor shrinks; mixed: 4 KiB pages of
//   four kinds in equal parts, like swapped memory for compress= (random,
//   same-filled, a 128-byte motif repeated, half random and half zero).
// --verify implies --prefill: every block carries a pattern derived from
//   its offset and a per-block generation; writes bump the generation,
//   reads check it.  Mismatches are counted and make the exit status 1.
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
  case 'K':
  case 'k': v <<= 10; break;
  case 'M':
  case 'm': v <<= 20; break;
  case 'G':
  case 'g': v <<= 30; break;
  case 0: break;
  default: die(std::string("bad number: ") + s);
  }
  return v;
}

struct Options {
  std::string uri;
  unsigned connections = 1;
  unsigned qd = 1;
  uint64_t bs = 4096;
  bool random = true;
  unsigned read_pct = 50;
  double duration = 5;
  double sporadic_ms = 0;
  uint64_t span = 0;
  std::string label;
  bool prefill = false;
  bool verify = false;
  enum class WriteAs { write, zero, trim } write_as = WriteAs::write;
  enum class Data { fixed, random, mixed } data = Data::fixed;
};

// The request a mix's write becomes.
int sync_write(const Options &o, nbd_handle *h, const void *buf, uint64_t offset)
{
  switch (o.write_as) {
  case Options::WriteAs::zero: return nbd_zero(h, o.bs, offset, 0);
  case Options::WriteAs::trim: return nbd_trim(h, o.bs, offset, 0);
  case Options::WriteAs::write: break;
  }
  return nbd_pwrite(h, buf, o.bs, offset, 0);
}

int64_t async_write(const Options &o, nbd_handle *h, const void *buf, uint64_t offset,
                    nbd_completion_callback cb)
{
  switch (o.write_as) {
  case Options::WriteAs::zero: return nbd_aio_zero(h, o.bs, offset, cb, 0);
  case Options::WriteAs::trim: return nbd_aio_trim(h, o.bs, offset, cb, 0);
  case Options::WriteAs::write: break;
  }
  return nbd_aio_pwrite(h, buf, o.bs, offset, cb, 0);
}

// Every 8-byte word of a block depends on the block and its generation.
void fill(uint64_t *words, size_t n, uint64_t slot, uint32_t gen)
{
  uint64_t x = slot * 0x9e3779b97f4a7c15ULL ^ (uint64_t{gen} << 32 | 0x5bd1e995);
  for (size_t i = 0; i < n; ++i) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 29;
    words[i] = x + i;
  }
}

// A block's contents for --data (and --verify): fill()'s words, or with
// mixed, each 4 KiB page one of four kinds chosen by the words.
void fill_block(const Options &o, uint64_t *words, size_t n, uint64_t slot, uint32_t gen)
{
  fill(words, n, slot, gen);
  if (o.data != Options::Data::mixed) return;
  constexpr size_t page_words = 4096 / 8;
  for (size_t p = 0; p < n; p += page_words) {
    uint64_t *w = words + p;
    const size_t m = std::min(page_words, n - p);
    switch (w[0] % 4) {
    case 0: break; // random
    case 1: std::fill(w, w + m, w[0]); break;
    case 2:
      for (size_t i = 16; i < m; ++i)
        w[i] = w[i % 16];
      break;
    default: std::fill(w + std::min(m, page_words / 2), w + m, 0); break;
    }
  }
}

struct ThreadResult {
  std::vector<uint32_t> latency_ns;
  uint64_t reads = 0, writes = 0, mismatches = 0;
};

// One request slot of a connection's queue.
struct Request {
  std::vector<uint64_t> buf;
  clock_type::time_point issued;
  uint64_t slot = 0;
  bool read = false;
  bool busy = false;
  int error = 0;
};

struct Worker {
  const Options &o;
  nbd_handle *h;
  uint64_t slots;
  unsigned index;
  std::vector<uint32_t> &generation; // per block, for --verify
  std::vector<uint8_t> &in_flight;   // per block, for --verify with qd > 1
  ThreadResult &r;
  std::mt19937_64 rng;
  uint64_t seq;
  uint64_t writes_made = 0; // --data random|mixed: each write new contents

  uint64_t pick_slot()
  {
    for (;;) {
      uint64_t s = o.random ? rng() % slots : seq++ % slots;
      // With --verify each connection owns the blocks s % connections ==
      // its index, so no two requests race on one block.
      if (o.verify) {
        s = s - s % o.connections + index;
        if (s >= slots || in_flight[s]) continue;
      }
      return s;
    }
  }

  void prepare(Request &q)
  {
    q.slot = pick_slot();
    q.read = rng() % 100 < o.read_pct;
    if (o.verify) {
      in_flight[q.slot] = 1;
      if (!q.read) fill_block(o, q.buf.data(), q.buf.size(), q.slot, ++generation[q.slot]);
    } else if (!q.read && o.data != Options::Data::fixed) {
      fill_block(o, q.buf.data(), q.buf.size(), q.slot, static_cast<uint32_t>(++writes_made));
    }
  }

  void finish(Request &q)
  {
    const auto now = clock_type::now();
    if (q.error) die(std::string(q.read ? "read: " : "write: ") + std::strerror(q.error));
    r.latency_ns.push_back(static_cast<uint32_t>(std::min<int64_t>(
      UINT32_MAX, std::chrono::duration_cast<std::chrono::nanoseconds>(now - q.issued).count())));
    (q.read ? r.reads : r.writes)++;
    if (o.verify) {
      if (q.read) {
        std::vector<uint64_t> want(q.buf.size());
        fill_block(o, want.data(), want.size(), q.slot, generation[q.slot]);
        if (want != q.buf && r.mismatches++ == 0)
          std::fprintf(stderr, "nbd-loadgen: MISMATCH in block at offset %" PRIu64 "\n",
                       q.slot * o.bs);
      }
      in_flight[q.slot] = 0;
    }
  }

  void run_sync(clock_type::time_point end)
  {
    Request q;
    q.buf.resize(o.bs / 8);
    auto next_issue = clock_type::now();
    while (clock_type::now() < end) {
      if (o.sporadic_ms > 0) {
        next_issue += std::chrono::microseconds(static_cast<int64_t>(o.sporadic_ms * 1000));
        std::this_thread::sleep_until(next_issue);
      }
      prepare(q);
      q.issued = clock_type::now();
      const int rc = q.read ? nbd_pread(h, q.buf.data(), o.bs, q.slot * o.bs, 0)
                            : sync_write(o, h, q.buf.data(), q.slot * o.bs);
      q.error = rc == -1 ? (nbd_get_errno() ? nbd_get_errno() : EIO) : 0;
      finish(q);
    }
  }

  static int completed(void *user_data, int *error)
  {
    auto *q = static_cast<Request *>(user_data);
    q->error = *error;
    q->busy = false;
    return 1;
  }

  void run_async(clock_type::time_point end)
  {
    std::vector<Request> queue(o.qd);
    for (auto &q : queue)
      q.buf.resize(o.bs / 8);
    unsigned outstanding = 0;
    bool stopping = false;
    for (;;) {
      stopping = stopping || clock_type::now() >= end;
      for (auto &q : queue) {
        if (q.busy || !q.issued.time_since_epoch().count()) continue;
        finish(q); // completed since the last pass
        q.issued = {};
        --outstanding;
      }
      if (!stopping)
        for (auto &q : queue) {
          if (q.busy || q.issued.time_since_epoch().count()) continue;
          prepare(q);
          q.busy = true;
          q.issued = clock_type::now();
          nbd_completion_callback cb{completed, &q, nullptr};
          const int64_t cookie = q.read ? nbd_aio_pread(h, q.buf.data(), o.bs, q.slot * o.bs, cb, 0)
                                        : async_write(o, h, q.buf.data(), q.slot * o.bs, cb);
          if (cookie == -1) die(std::string("aio: ") + nbd_get_error());
          ++outstanding;
        }
      if (outstanding == 0 && stopping) break;
      if (nbd_poll(h, -1) == -1) die(std::string("poll: ") + nbd_get_error());
    }
  }
};

double percentile(std::vector<uint32_t> &v, double p)
{
  if (v.empty()) return 0;
  const size_t k =
    std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
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
    else if (a == "--qd") o.qd = static_cast<unsigned>(parse_u64(next()));
    else if (a == "--bs") o.bs = parse_u64(next());
    else if (a == "--pattern") o.random = std::string(next()) == "rand";
    else if (a == "--read-pct") o.read_pct = static_cast<unsigned>(parse_u64(next()));
    else if (a == "--duration") o.duration = std::atof(next());
    else if (a == "--sporadic-ms") o.sporadic_ms = std::atof(next());
    else if (a == "--span") o.span = parse_u64(next());
    else if (a == "--label") o.label = next();
    else if (a == "--prefill") o.prefill = true;
    else if (a == "--data") {
      const std::string v = next();
      if (v == "fixed") o.data = Options::Data::fixed;
      else if (v == "random") o.data = Options::Data::random;
      else if (v == "mixed") o.data = Options::Data::mixed;
      else die("--data takes fixed, random or mixed, not " + v);
    } else if (a == "--verify") o.verify = o.prefill = true;
    else if (a == "--write-as") {
      const std::string v = next();
      if (v == "write") o.write_as = Options::WriteAs::write;
      else if (v == "zero") o.write_as = Options::WriteAs::zero;
      else if (v == "trim") o.write_as = Options::WriteAs::trim;
      else die("--write-as takes write, zero or trim, not " + v);
    } else if (o.uri.empty() && a.rfind("--", 0) != 0) o.uri = a;
    else die("unknown option " + a);
  }
  if (o.uri.empty() || o.connections == 0 || o.qd == 0 || o.bs == 0 || o.bs % 8)
    die("usage: nbd-loadgen URI [options] (bs a multiple of 8)");

  std::vector<Nbd> handles;
  for (unsigned i = 0; i < o.connections; ++i) {
    Nbd h(nbd_create());
    if (!h || nbd_connect_uri(h.get(), o.uri.c_str()) == -1)
      die(std::string("connect: ") + nbd_get_error());
    handles.push_back(std::move(h));
  }
  const int64_t size = nbd_get_size(handles[0].get());
  if (size <= 0) die(std::string("get_size: ") + nbd_get_error());
  const uint64_t span =
    std::min<uint64_t>(o.span ? o.span : static_cast<uint64_t>(size), static_cast<uint64_t>(size));
  const uint64_t slots = span / o.bs;
  if (slots < o.connections * o.qd) die("span too small for connections x qd blocks");

  std::vector<uint32_t> generation(o.verify ? slots : 0);
  std::vector<uint8_t> in_flight(o.verify ? slots : 0);
  if (o.verify && o.write_as != Options::WriteAs::write) die("--verify needs --write-as write");
  if (o.prefill) {
    std::vector<uint64_t> block(o.bs / 8, 0x5a5a5a5a5a5a5a5aULL);
    for (uint64_t s = 0; s < slots; ++s) {
      if (o.verify || o.data != Options::Data::fixed)
        fill_block(o, block.data(), block.size(), s, 0);
      if (nbd_pwrite(handles[0].get(), block.data(), o.bs, s * o.bs, 0) == -1)
        die(std::string("prefill: ") + nbd_get_error());
    }
  }

  std::vector<ThreadResult> results(o.connections);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < o.connections; ++t)
    threads.emplace_back([&, t] {
      Worker w{o,
               handles[t].get(),
               slots,
               t,
               generation,
               in_flight,
               results[t],
               std::mt19937_64(1234 + t),
               (slots / o.connections) * t};
      results[t].latency_ns.reserve(1 << 20);
      while (!go.load())
        std::this_thread::yield();
      const auto end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(o.duration));
      if (o.qd == 1) w.run_sync(end);
      else w.run_async(end);
    });
  const auto t0 = clock_type::now();
  go = true;
  for (auto &th : threads)
    th.join();
  const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();

  std::vector<uint32_t> all;
  uint64_t reads = 0, writes = 0, mismatches = 0;
  for (auto &r : results) {
    all.insert(all.end(), r.latency_ns.begin(), r.latency_ns.end());
    reads += r.reads;
    writes += r.writes;
    mismatches += r.mismatches;
  }
  const double ops = static_cast<double>(reads + writes);
  std::printf(
    "{\"label\": \"%s\", \"connections\": %u, \"qd\": %u, \"bs\": %" PRIu64
    ", \"pattern\": \"%s\", \"read_pct\": %u, \"write_as\": \"%s\", \"sporadic_ms\": %g, "
    "\"duration_s\": %.3f, "
    "\"ops\": %.0f, \"ops_per_s\": %.0f, \"mb_per_s\": %.1f, \"lat_us_p50\": %.1f, "
    "\"lat_us_p99\": %.1f, \"lat_us_p999\": %.1f, \"verified\": %s, \"mismatches\": %" PRIu64 "}\n",
    o.label.c_str(), o.connections, o.qd, o.bs, o.random ? "rand" : "seq", o.read_pct,
    o.write_as == Options::WriteAs::zero   ? "zero"
    : o.write_as == Options::WriteAs::trim ? "trim"
                                           : "write",
    o.sporadic_ms, elapsed, ops, ops / elapsed, ops * static_cast<double>(o.bs) / elapsed / 1e6,
    percentile(all, 50), percentile(all, 99), percentile(all, 99.9), o.verify ? "true" : "false",
    mismatches);
  return mismatches ? 1 : 0;
}
