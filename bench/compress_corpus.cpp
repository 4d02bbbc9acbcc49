// compress-corpus: a corpus of 4 KiB pages (bench/corpus/make_corpus.py)
// stored through the compressed export's core (CompressedExport, its slot
// allocator and page table) over memory standing in for VRAM, as
// compress= would store it.  Prints one JSON line per codec: pages,
// same-filled and whole pages, bytes original, compressed, in slots, and
// VRAM held in chunks, with the ratios; zram's mm_stat for the same pages
// comes from bench/corpus/zram_ratio.sh.
//
//   compress-corpus CORPUS [--codec lz4|zstd|zstd:N ...] [--chunk BYTES]
//                          [--from PAGE --pages N] [--label TEXT]
//                          [--churn OPS --vram BYTES]
//
// --churn: instead of storing the corpus once, OPS random requests over
// an export of its size, starting empty: a page written with a random
// page of the corpus (9 in 10), or a run of 1 to 16 pages trimmed, which
// keeps about half the pages stored; VRAM capped at --vram; the
// compactor's policy applied every 1000 requests (the plugin's thread
// applies it once a second).  Prints VRAM held against the compressed
// bytes after it, and how many writes found no VRAM.
#include "compress/compressed_export.hpp"
#include "store/compactor.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace vram::compress;

namespace {

[[noreturn]] void die(const std::string &what)
{
  std::fprintf(stderr, "compress-corpus: %s\n", what.c_str());
  std::exit(2);
}

// Chunks of host memory, made as the allocator maps them.
class MemoryChunks final : public ChunkDevice {
public:
  MemoryChunks(uint64_t chunk_bytes, uint32_t chunks) : chunk_(chunk_bytes), mem_(chunks) {}
  bool map(uint32_t c, void *) override
  {
    mem_[c] = std::make_unique<std::byte[]>(chunk_);
    return true;
  }
  bool release(uint32_t c, void *) override
  {
    mem_[c].reset();
    return true;
  }
  int write(uint64_t offset, std::span<const std::byte> data, void *) override
  {
    std::memcpy(at(offset), data.data(), data.size());
    return 0;
  }
  int read(uint64_t offset, std::span<std::byte> data, void *) override
  {
    std::memcpy(data.data(), at(offset), data.size());
    return 0;
  }

private:
  std::byte *at(uint64_t offset) { return mem_[offset / chunk_].get() + offset % chunk_; }
  uint64_t chunk_;
  std::vector<std::unique_ptr<std::byte[]>> mem_;
};

} // namespace

int main(int argc, char **argv)
{
  if (argc < 2)
    die("usage: compress-corpus CORPUS [--codec C ...] [--chunk BYTES] "
        "[--from PAGE --pages N] [--label TEXT]");
  std::vector<CodecSetting> codecs;
  uint64_t chunk = 2 << 20, from = 0, count = UINT64_MAX, churn = 0, vram = 0;
  std::string label;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) die(a + " needs a value");
    const std::string v = argv[++i];
    std::string error;
    if (a == "--codec") {
      const auto c = parse_codec(v, error);
      if (!c || c->algorithm == Algorithm::none) die("--codec " + v + ": " + error);
      codecs.push_back(*c);
    } else if (a == "--chunk") chunk = std::strtoull(v.c_str(), nullptr, 0);
    else if (a == "--from") from = std::strtoull(v.c_str(), nullptr, 0);
    else if (a == "--pages") count = std::strtoull(v.c_str(), nullptr, 0);
    else if (a == "--label") label = v;
    else if (a == "--churn") churn = std::strtoull(v.c_str(), nullptr, 0);
    else if (a == "--vram") vram = std::strtoull(v.c_str(), nullptr, 0);
    else die("unknown option " + a);
  }
  if (codecs.empty()) codecs.push_back({Algorithm::lz4, 0});

  std::ifstream in(argv[1], std::ios::binary);
  if (!in) die(std::string("cannot open ") + argv[1]);
  std::vector<char> corpus((std::istreambuf_iterator<char>(in)), {});
  const uint64_t total = corpus.size() / 4096;
  if (from > total) die("--from is past the corpus's end");
  const uint64_t pages = std::min(count, total - from);
  const auto *base = reinterpret_cast<const std::byte *>(corpus.data()) + from * 4096;

  for (const CodecSetting &codec : codecs) {
    CompressedExport::Settings s;
    s.size = pages * 4096;
    s.chunk_bytes = chunk;
    s.chunks = static_cast<uint32_t>(vram ? vram / chunk : (s.size + chunk - 1) / chunk + 64);
    s.max_request = 1 << 20;
    MemoryChunks chunks(chunk, s.chunks);
    CompressedExport exp(s, chunks);
    Worker w(codec, s.max_request);
    std::string message;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t off = 0; !churn && off < s.size; off += s.max_request) {
      const uint64_t n = std::min<uint64_t>(s.max_request, s.size - off);
      if (exp.write(w, std::span(base + off, n), off, message) != 0) die(message);
    }
    uint64_t no_space = 0, compacted = 0;
    std::mt19937_64 rng(1);
    for (uint64_t op = 0; op < churn; ++op) {
      const uint64_t p = rng() % pages;
      if (rng() % 10) {
        const uint64_t from_page = rng() % pages; // another page's contents
        const int r = exp.write(w, std::span(base + from_page * 4096, 4096), p * 4096, message);
        if (r == ENOSPC) ++no_space;
        else if (r != 0) die(message);
      } else {
        const uint64_t n = std::min<uint64_t>(1 + rng() % 16, pages - p);
        if (exp.zero(w, n * 4096, p * 4096, message) != 0) die(message);
      }
      if (op % 1000 == 999)
        while (true) {
          const auto st = exp.stats();
          if (!vram::Compactor::worth_it(st.vram.vram_bytes, st.vram.slot_bytes, 4 * chunk) ||
              !exp.compact_one(w))
            break;
          ++compacted;
        }
    }
    const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Every page back, to be sure the figures are of pages stored right.
    std::vector<std::byte> back(1 << 20);
    for (uint64_t off = 0; !churn && off < s.size; off += back.size()) {
      const uint64_t n = std::min<uint64_t>(back.size(), s.size - off);
      if (exp.read(w, std::span(back).first(n), off, message) != 0) die(message);
      if (std::memcmp(back.data(), base + off, n) != 0) die("a page read back differs");
    }
    const auto st = exp.stats();
    const double orig = static_cast<double>(st.pages.original_bytes());
    std::printf(
      "{\"label\": \"%s\", \"codec\": \"%s\", \"pages\": %llu, \"same_pages\": %llu, "
      "\"whole_pages\": %llu, \"original_bytes\": %llu, \"compressed_bytes\": %llu, "
      "\"slot_bytes\": %llu, \"vram_bytes\": %llu, \"ratio_compressed\": %.3f, "
      "\"ratio_vram\": %.3f, \"write_mb_per_s\": %.0f, \"churn_ops\": %llu, "
      "\"no_space\": %llu, \"compacted_chunks\": %llu, \"vram_over_compressed\": %.3f}\n",
      label.c_str(), format_codec(codec).c_str(), static_cast<unsigned long long>(pages),
      static_cast<unsigned long long>(st.pages.same_pages),
      static_cast<unsigned long long>(st.pages.whole_pages),
      static_cast<unsigned long long>(st.pages.original_bytes()),
      static_cast<unsigned long long>(st.pages.compressed_bytes),
      static_cast<unsigned long long>(st.vram.slot_bytes),
      static_cast<unsigned long long>(st.vram.vram_bytes),
      orig / static_cast<double>(st.pages.compressed_bytes ? st.pages.compressed_bytes : 1),
      orig / static_cast<double>(st.vram.vram_bytes ? st.vram.vram_bytes : 1), orig / secs / 1e6,
      static_cast<unsigned long long>(churn), static_cast<unsigned long long>(no_space),
      static_cast<unsigned long long>(compacted),
      static_cast<double>(st.vram.vram_bytes) /
        static_cast<double>(st.pages.compressed_bytes ? st.pages.compressed_bytes : 1));
  }
  return 0;
}
