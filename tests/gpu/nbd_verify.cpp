// nbd-verify: an NBD integrity checker in C++ over libnbd, for machines
// where Python's libnbd bindings are not available (the GPU machine).
//
//   nbd-verify random URI [--connections N] [--ops N] [--seed S] [--span BYTES]
//                         [--zero-pct P]
//       Random writes of many sizes and alignments (and with --zero-pct, P%
//       zeroes and trims) through N connections at once, each in its own
//       slice of the span, then every byte read back through a different
//       connection and compared with a host-side shadow copy.
//
//   nbd-verify semantics URI
//       Zero, trim, FUA and flush: zeroed and trimmed ranges read back as
//       zeroes, their neighbours keep their data.
//
//   nbd-verify soak URI --bytes BYTES [--connections N] [--block BYTES] [--seed S]
//       Writes BYTES of a position-dependent pattern over the export in
//       shuffled blocks from N connections in parallel, then reads it all
//       back through other connections and checks every byte.
//
//   nbd-verify trim URI --bytes BYTES [--block BYTES]
//       Trims [0, BYTES) in requests of --block bytes, then reads it back
//       and checks that it is all zeroes.
//
//   --mixed (random and soak): the data is 4 KiB pages of four kinds, as
//   swapped memory is for compress=: random, same-filled, a 128-byte motif
//   repeated, half random and half zero (by default every byte is random).
//
// Exit status 0 when every byte matched; 1 on a mismatch or an NBD error.
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

struct NbdDeleter {
  void operator()(nbd_handle *h) const { nbd_close(h); }
};
using Nbd = std::unique_ptr<nbd_handle, NbdDeleter>;

[[noreturn]] void die(const std::string &what)
{
  std::fprintf(stderr, "nbd-verify: %s\n", what.c_str());
  std::exit(1);
}

Nbd connect(const std::string &uri)
{
  Nbd h(nbd_create());
  if (!h) die(std::string("nbd_create: ") + nbd_get_error());
  if (nbd_connect_uri(h.get(), uri.c_str()) == -1) die("connect " + uri + ": " + nbd_get_error());
  return h;
}

std::vector<Nbd> connect_all(const std::string &uri, unsigned n)
{
  std::vector<Nbd> v;
  for (unsigned i = 0; i < n; ++i)
    v.push_back(connect(uri));
  return v;
}

uint64_t arg_u64(int &i, int argc, char **argv)
{
  if (i + 1 >= argc) die(std::string(argv[i]) + " needs a value");
  char *end = nullptr;
  uint64_t v = std::strtoull(argv[++i], &end, 0);
  switch (*end) {
  case 'K':
  case 'k': v <<= 10; break;
  case 'M':
  case 'm': v <<= 20; break;
  case 'G':
  case 'g': v <<= 30; break;
  case 0: break;
  default: die(std::string("bad number: ") + argv[i]);
  }
  return v;
}

// The pattern for the soak: every 8-byte word depends on its position and
// the seed, so a block written to the wrong place is caught too.
uint64_t pattern_word(uint64_t seed, uint64_t byte_offset)
{
  uint64_t x = (byte_offset / 8) * 0x9e3779b97f4a7c15ULL ^ seed;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  return x;
}

bool mixed = false; // --mixed

// --mixed: the word at an 8-aligned byte offset, its page's kind chosen by
// the page's position.
uint64_t mixed_word(uint64_t seed, uint64_t byte_offset)
{
  const uint64_t page = byte_offset / 4096 * 4096, in_page = byte_offset % 4096;
  switch (pattern_word(seed ^ 0x5bd1e995, page) % 4) {
  case 0: return pattern_word(seed, byte_offset);
  case 1: return pattern_word(seed, page);
  case 2: return pattern_word(seed, page + in_page % 128);
  default: return in_page < 2048 ? pattern_word(seed, byte_offset) : 0;
  }
}

void fill_pattern(std::vector<uint64_t> &buf, uint64_t seed, uint64_t offset)
{
  for (size_t w = 0; w < buf.size(); ++w)
    buf[w] = mixed ? mixed_word(seed, offset + w * 8) : pattern_word(seed, offset + w * 8);
}

// --mixed bytes for [offset, offset + n), whatever their alignment.
void fill_mixed_bytes(uint8_t *dst, uint64_t n, uint64_t seed, uint64_t offset)
{
  for (uint64_t i = 0; i < n;) {
    const uint64_t at = offset + i, word = mixed_word(seed, at & ~uint64_t{7});
    for (uint64_t b = at % 8; b < 8 && i < n; ++b, ++i)
      dst[i] = static_cast<uint8_t>(word >> (8 * b));
  }
}

// Each connection works in its own slice of the span, all at once, so
// requests really are concurrent and no two race on one byte.
int run_random(const std::string &uri, unsigned conns, uint64_t ops, uint64_t seed, uint64_t span,
               unsigned zero_pct)
{
  auto writers = connect_all(uri, conns);
  Nbd reader = connect(uri);
  const int64_t size = nbd_get_size(reader.get());
  if (size <= 0) die(std::string("get_size: ") + nbd_get_error());
  span = std::min<uint64_t>(span ? span : static_cast<uint64_t>(size), static_cast<uint64_t>(size));
  std::vector<uint8_t> shadow(span, 0);
  // Start from a known state: the export's current contents.
  for (uint64_t off = 0; off < span; off += 32 << 20) {
    const uint64_t n = std::min<uint64_t>(32 << 20, span - off);
    if (nbd_pread(reader.get(), shadow.data() + off, n, off, 0) == -1)
      die(std::string("initial read: ") + nbd_get_error());
  }

  const uint64_t slice = span / conns;
  std::atomic<uint64_t> zeroes{0}, trims{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < conns; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed * 1000 + t);
      static const uint64_t sizes[] = {1,
                                       2,
                                       3,
                                       7,
                                       512,
                                       4096,
                                       4097,
                                       28 << 10,
                                       (32 << 10) - 1,
                                       65536,
                                       131072 + 3,
                                       1 << 20,
                                       (1 << 20) + 1,
                                       4 << 20};
      const uint64_t base = t * slice;
      std::vector<uint8_t> buf;
      nbd_handle *h = writers[t].get();
      for (uint64_t i = t; i < ops; i += conns) {
        uint64_t len = sizes[rng() % (sizeof sizes / sizeof *sizes)];
        if (rng() % 4 == 0) len = 1 + rng() % (256 << 10);
        len = std::min(len, slice);
        uint64_t off = rng() % (slice - len + 1);
        if (rng() % 2) off &= ~uint64_t{4095};
        if (off + len > slice) off = slice - len;
        off += base;
        const bool clear = rng() % 100 < zero_pct;
        if (clear) {
          const bool trim = rng() % 2;
          const int rc = trim ? nbd_trim(h, len, off, 0) : nbd_zero(h, len, off, 0);
          if (rc == -1)
            die(std::string(trim ? "trim " : "zero ") + std::to_string(len) + "@" +
                std::to_string(off) + ": " + nbd_get_error());
          std::memset(shadow.data() + off, 0, len);
          ++(trim ? trims : zeroes);
          continue;
        }
        buf.resize(len);
        if (mixed) {
          fill_mixed_bytes(buf.data(), len, rng(), off);
        } else {
          for (auto &b : buf)
            b = static_cast<uint8_t>(rng() | 1); // no zero bytes
        }
        if (nbd_pwrite(h, buf.data(), len, off, 0) == -1)
          die("write " + std::to_string(len) + "@" + std::to_string(off) + ": " + nbd_get_error());
        std::memcpy(shadow.data() + off, buf.data(), len);
      }
    });
  for (auto &th : threads)
    th.join();
  for (auto &w : writers)
    if (nbd_flush(w.get(), 0) == -1) die(std::string("flush: ") + nbd_get_error());

  std::vector<uint8_t> back(32 << 20);
  for (uint64_t off = 0; off < span; off += back.size()) {
    const uint64_t n = std::min<uint64_t>(back.size(), span - off);
    if (nbd_pread(reader.get(), back.data(), n, off, 0) == -1)
      die(std::string("read back: ") + nbd_get_error());
    if (std::memcmp(back.data(), shadow.data() + off, n) != 0) {
      uint64_t j = 0;
      while (back[j] == shadow[off + j])
        ++j;
      std::fprintf(stderr, "nbd-verify: MISMATCH at byte %" PRIu64 "\n", off + j);
      return 1;
    }
  }
  std::printf("random: %" PRIu64 " requests (%" PRIu64 " zeroes, %" PRIu64 " trims) over %" PRIu64
              " bytes through %u connections at once, read back through another: "
              "all bytes match\n",
              ops, zeroes.load(), trims.load(), span, conns);
  return 0;
}

int run_semantics(const std::string &uri)
{
  Nbd h = connect(uri);
  Nbd other = connect(uri);
  const int64_t size = nbd_get_size(h.get());
  if (size < (16 << 20)) die("semantics needs an export of at least 16 MiB");
  for (auto [name, can] : {std::pair{"multi_conn", nbd_can_multi_conn(h.get())},
                           {"fua", nbd_can_fua(h.get())},
                           {"trim", nbd_can_trim(h.get())},
                           {"zero", nbd_can_zero(h.get())},
                           {"fast_zero", nbd_can_fast_zero(h.get())},
                           {"flush", nbd_can_flush(h.get())}})
    if (can != 1) die(std::string("export does not advertise ") + name);
  const uint64_t len = 8 << 20;
  std::vector<uint8_t> ones(len, 0xa5), back(len);
  if (nbd_pwrite(h.get(), ones.data(), len, 0, LIBNBD_CMD_FLAG_FUA) == -1)
    die(std::string("FUA write: ") + nbd_get_error());
  if (nbd_zero(h.get(), 1 << 20, 4096 + 512, LIBNBD_CMD_FLAG_FAST_ZERO) == -1)
    die(std::string("zero: ") + nbd_get_error());
  if (nbd_trim(h.get(), 2 << 20, 4 << 20, 0) == -1) die(std::string("trim: ") + nbd_get_error());
  if (nbd_flush(h.get(), 0) == -1) die(std::string("flush: ") + nbd_get_error());
  if (nbd_pread(other.get(), back.data(), len, 0, 0) == -1)
    die(std::string("read: ") + nbd_get_error());
  for (uint64_t i = 0; i < len; ++i) {
    const bool zeroed =
      (i >= 4096 + 512 && i < 4096 + 512 + (1 << 20)) || (i >= (4 << 20) && i < (6 << 20));
    if (back[i] != (zeroed ? 0 : 0xa5)) {
      std::fprintf(stderr, "nbd-verify: byte %" PRIu64 " is %u, expected %u\n", i, back[i],
                   zeroed ? 0u : 0xa5u);
      return 1;
    }
  }
  std::printf("semantics: FUA write, zero, trim and flush behave; all bytes as expected\n");
  return 0;
}

int run_soak(const std::string &uri, unsigned conns, uint64_t bytes, uint64_t block, uint64_t seed)
{
  Nbd probe = connect(uri);
  const int64_t size = nbd_get_size(probe.get());
  if (size <= 0) die(std::string("get_size: ") + nbd_get_error());
  if (bytes > static_cast<uint64_t>(size)) die("--bytes is larger than the export");
  const uint64_t blocks = bytes / block;
  std::vector<uint64_t> order(blocks);
  for (uint64_t i = 0; i < blocks; ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));

  auto phase = [&](bool writing, unsigned shift) {
    auto handles = connect_all(uri, conns);
    std::atomic<uint64_t> next{0}, bad{0};
    std::vector<std::thread> threads;
    const auto t0 = std::chrono::steady_clock::now();
    for (unsigned t = 0; t < conns; ++t)
      threads.emplace_back([&, t] {
        nbd_handle *h = handles[(t + shift) % conns].get();
        std::vector<uint64_t> want(block / 8), got(block / 8);
        for (uint64_t i; (i = next.fetch_add(1)) < blocks;) {
          const uint64_t off = order[i] * block;
          fill_pattern(want, seed, off);
          if (writing) {
            if (nbd_pwrite(h, want.data(), block, off, 0) == -1)
              die("soak write: " + std::string(nbd_get_error()));
          } else {
            if (nbd_pread(h, got.data(), block, off, 0) == -1)
              die("soak read: " + std::string(nbd_get_error()));
            if (want != got && bad.fetch_add(1) == 0)
              std::fprintf(stderr, "nbd-verify: MISMATCH in block at %" PRIu64 "\n", off);
          }
        }
      });
    for (auto &th : threads)
      th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("soak %s: %" PRIu64 " bytes in %.2f s (%.2f GB/s) through %u connections\n",
                writing ? "write" : "verify", blocks * block, s, blocks * block / s / 1e9, conns);
    return bad.load();
  };
  phase(true, 0);
  const uint64_t bad = phase(false, 1);
  if (bad) {
    std::fprintf(stderr, "nbd-verify: %" PRIu64 " blocks did not match\n", bad);
    return 1;
  }
  std::printf("soak: %" PRIu64 " bytes written and verified: all bytes match\n", blocks * block);
  return 0;
}

int run_trim(const std::string &uri, uint64_t bytes, uint64_t block)
{
  Nbd h = connect(uri);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t off = 0; off < bytes; off += block)
    if (nbd_trim(h.get(), std::min(block, bytes - off), off, 0) == -1)
      die("trim: " + std::string(nbd_get_error()));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<char> got(block);
  for (uint64_t off = 0; off < bytes; off += block) {
    const uint64_t n = std::min(block, bytes - off);
    if (nbd_pread(h.get(), got.data(), n, off, 0) == -1)
      die("read after trim: " + std::string(nbd_get_error()));
    if (std::any_of(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(n),
                    [](char c) { return c != 0; })) {
      std::fprintf(stderr, "nbd-verify: non-zero data after trim near %" PRIu64 "\n", off);
      return 1;
    }
  }
  std::printf("trim: %" PRIu64 " bytes trimmed in %.2f s and read back as zeroes\n", bytes, s);
  return 0;
}

} // namespace

int main(int argc, char **argv)
{
  if (argc < 3) {
    std::fprintf(stderr, "usage: nbd-verify random|semantics|soak|trim URI [options]\n");
    return 2;
  }
  const std::string mode = argv[1], uri = argv[2];
  uint64_t conns = 4, ops = 2000, seed = 1, span = 0, bytes = 0, block = 1 << 20, zero_pct = 0;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--connections") conns = arg_u64(i, argc, argv);
    else if (a == "--ops") ops = arg_u64(i, argc, argv);
    else if (a == "--seed") seed = arg_u64(i, argc, argv);
    else if (a == "--span") span = arg_u64(i, argc, argv);
    else if (a == "--bytes") bytes = arg_u64(i, argc, argv);
    else if (a == "--block") block = arg_u64(i, argc, argv);
    else if (a == "--zero-pct") zero_pct = arg_u64(i, argc, argv);
    else if (a == "--mixed") mixed = true;
    else die("unknown option " + a);
  }
  if (conns == 0 || block == 0 || block % 8 || zero_pct > 100)
    die("bad --connections, --block or --zero-pct");
  if (mode == "semantics") return run_semantics(uri);
  if (mode == "random")
    return run_random(uri, static_cast<unsigned>(conns), ops, seed, span,
                      static_cast<unsigned>(zero_pct));
  if (mode == "soak") {
    if (!bytes) die("soak needs --bytes");
    return run_soak(uri, static_cast<unsigned>(conns), bytes, block, seed);
  }
  if (mode == "trim") {
    if (!bytes) die("trim needs --bytes");
    return run_trim(uri, bytes, block);
  }
  die("unknown mode " + mode);
}
