#include "compress/page_codec.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <vector>

#include <lz4.h>
#define ZSTD_STATIC_LINKING_ONLY // ZSTD_initStaticCCtx: state in memory of ours
#include <zstd.h>

namespace vram::compress {

std::optional<CodecSetting> parse_codec(std::string_view text, std::string &error)
{
  const std::string accepted = "none, lz4, zstd, or zstd:LEVEL with LEVEL from " +
                               std::to_string(ZSTD_minCLevel()) + " to " +
                               std::to_string(ZSTD_maxCLevel());
  if (text == "none") return CodecSetting{Algorithm::none, 0};
  if (text == "lz4") return CodecSetting{Algorithm::lz4, 0};
  if (text == "zstd") return CodecSetting{Algorithm::zstd, 1};
  if (text.starts_with("zstd:")) {
    const std::string_view digits = text.substr(5);
    int level = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), level);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() &&
        level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel() && level != 0)
      return CodecSetting{Algorithm::zstd, level};
    error = "compress=" + std::string(text) + ": the zstd level must be a whole number from " +
            std::to_string(ZSTD_minCLevel()) + " to " + std::to_string(ZSTD_maxCLevel()) +
            ", not 0 (for example zstd:1)";
    return std::nullopt;
  }
  error = "compress=" + std::string(text) + ": unknown; use " + accepted;
  return std::nullopt;
}

std::string format_codec(const CodecSetting &s)
{
  switch (s.algorithm) {
  case Algorithm::none: return "none";
  case Algorithm::lz4: return "lz4";
  case Algorithm::zstd: return "zstd:" + std::to_string(s.level);
  }
  return "?";
}

struct PageCodec::State {
  std::vector<std::byte> lz4;
  std::vector<std::byte> zstd_c, zstd_d;
  ZSTD_CCtx *cctx = nullptr; // inside zstd_c: nothing to free
  ZSTD_DCtx *dctx = nullptr; // inside zstd_d
};

PageCodec::PageCodec(const CodecSetting &setting)
  : setting_(setting), state_(std::make_unique<State>())
{
  if (setting.algorithm == Algorithm::lz4) {
    state_->lz4.resize(static_cast<size_t>(LZ4_sizeofState()));
    state_bytes_ = state_->lz4.size();
  } else if (setting.algorithm == Algorithm::zstd) {
    const ZSTD_compressionParameters cp = ZSTD_getCParams(setting.level, page_bytes, 0);
    state_->zstd_c.resize(ZSTD_estimateCCtxSize_usingCParams(cp));
    state_->zstd_d.resize(ZSTD_estimateDCtxSize());
    state_->cctx = ZSTD_initStaticCCtx(state_->zstd_c.data(), state_->zstd_c.size());
    state_->dctx = ZSTD_initStaticDCtx(state_->zstd_d.data(), state_->zstd_d.size());
    if (!state_->cctx || !state_->dctx)
      throw std::runtime_error("libzstd refused the memory set aside for its state");
    state_bytes_ = state_->zstd_c.size() + state_->zstd_d.size();
  }
  if (setting.algorithm != Algorithm::none) {
    // One page through both ways now: if the library needed more than it
    // was given, say so at start, not on the first swap-out.
    std::vector<std::byte> page(page_bytes), out(page_bytes), back(page_bytes);
    for (size_t i = 0; i < page.size(); ++i)
      page[i] = static_cast<std::byte>(i % 61 + (i / 1024)); // compresses, not trivially
    const size_t n = compress(page, out, page_bytes);
    if (n == 0 || !decompress(std::span(out).first(n), back) || back != page)
      throw std::runtime_error(format_codec(setting) +
                               ": cannot compress and decompress a page in the memory set aside");
  }
}

PageCodec::~PageCodec() = default;

size_t PageCodec::compress(std::span<const std::byte> page, std::span<std::byte> out, size_t limit)
{
  if (page.size() != page_bytes || out.size() < page_bytes || limit == 0) return 0;
  // A capacity of `limit` lets LZ4 give up early on a page that will not
  // compress enough.  (zstd wants some room beyond its result, so it gets
  // the whole buffer and the limit is applied after.)
  const size_t capacity = std::min(limit, out.size());
  size_t n = 0;
  if (setting_.algorithm == Algorithm::lz4) {
    const int r =
      LZ4_compress_fast_extState(state_->lz4.data(), reinterpret_cast<const char *>(page.data()),
                                 reinterpret_cast<char *>(out.data()),
                                 static_cast<int>(page.size()), static_cast<int>(capacity), 1);
    n = r > 0 ? static_cast<size_t>(r) : 0;
  } else if (setting_.algorithm == Algorithm::zstd) {
    const size_t r = ZSTD_compressCCtx(state_->cctx, out.data(), out.size(), page.data(),
                                       page.size(), setting_.level);
    n = ZSTD_isError(r) ? 0 : r;
  }
  return n > 0 && n <= limit ? n : 0;
}

bool PageCodec::decompress(std::span<const std::byte> in, std::span<std::byte> page)
{
  if (page.size() != page_bytes || in.empty()) return false;
  if (setting_.algorithm == Algorithm::lz4) {
    const int r = LZ4_decompress_safe(reinterpret_cast<const char *>(in.data()),
                                      reinterpret_cast<char *>(page.data()),
                                      static_cast<int>(in.size()), static_cast<int>(page.size()));
    return r == static_cast<int>(page_bytes);
  }
  if (setting_.algorithm == Algorithm::zstd) {
    const size_t r =
      ZSTD_decompressDCtx(state_->dctx, page.data(), page.size(), in.data(), in.size());
    return !ZSTD_isError(r) && r == page_bytes;
  }
  return false;
}

} // namespace vram::compress
