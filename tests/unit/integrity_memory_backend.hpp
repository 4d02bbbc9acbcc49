// An in-memory disk for the integrity filter's core: the "plugin" behind
// it, which tests can corrupt, slow down, or make fail.
#pragma once

#include "backend.hpp"
#include "logging.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace integrity_test {

using integrity::Backend;
using integrity::WriteFlags;

class MemoryBackend final : public Backend {
public:
  explicit MemoryBackend(size_t size) : data_(size) {}

  // Behind the filter's back.
  void flip_bit(uint64_t offset, int bit) { data_[offset] ^= std::byte(1u << bit); }
  void poke(uint64_t offset, std::span<const std::byte> bytes)
  {
    std::memcpy(data_.data() + offset, bytes.data(), bytes.size());
  }
  std::span<const std::byte> contents() const { return data_; }

  int read(std::span<std::byte> b, uint64_t off) override
  {
    ++reads;
    if (fail_reads) return EIO;
    copy(b.data(), data_.data() + off, b.size());
    return 0;
  }

  int write(std::span<const std::byte> d, uint64_t off, WriteFlags f) override
  {
    ++writes;
    set_last_flags(f);
    if (fail_writes_after >= 0) {
      // Writes this many bytes, then fails: a partial write.
      copy(data_.data() + off, d.data(), std::min<size_t>(d.size(), fail_writes_after));
      return EIO;
    }
    copy(data_.data() + off, d.data(), d.size());
    return 0;
  }

  int zero(uint64_t len, uint64_t off, WriteFlags f) override
  {
    ++zeroes;
    set_last_flags(f);
    if (refuse_fast_zero && f.fast_zero) return ENOTSUP;
    if (fail_zeroes) return EIO;
    std::memset(data_.data() + off, 0, len);
    return 0;
  }

  // Copies in small pieces with yields, so that a request racing another
  // on the same bytes would see a mix, as with a real device.
  bool slow = false;
  bool fail_reads = false;
  bool fail_zeroes = false;
  bool refuse_fast_zero = false;
  long fail_writes_after = -1;
  // Counted and kept atomically: the concurrency test's threads all call in.
  std::atomic<int> reads{0}, writes{0}, zeroes{0};
  WriteFlags last_flags() const
  {
    const std::lock_guard lock(flags_mutex_);
    return last_flags_;
  }

private:
  void copy(std::byte *dst, const std::byte *src, size_t n)
  {
    if (!slow) {
      std::memcpy(dst, src, n);
      return;
    }
    for (size_t i = 0; i < n; i += 512) {
      // Byte by byte through relaxed atomics: racing copies are then
      // well-defined (and visible to ThreadSanitizer as intended races
      // only if the filter's locking is wrong).
      for (size_t j = i; j < std::min(n, i + 512); ++j)
        std::atomic_ref<std::byte>(dst[j]).store(
          std::atomic_ref<std::byte>(const_cast<std::byte &>(src[j]))
            .load(std::memory_order_relaxed),
          std::memory_order_relaxed);
      std::this_thread::yield();
    }
  }

  std::vector<std::byte> data_;
  void set_last_flags(WriteFlags f)
  {
    const std::lock_guard lock(flags_mutex_);
    last_flags_ = f;
  }
  mutable std::mutex flags_mutex_;
  WriteFlags last_flags_{};
};

// Collects what the core logs while it exists (one at a time).
class CapturedLog {
public:
  CapturedLog()
  {
    clear();
    vram::set_log_sink(sink);
  }
  ~CapturedLog() { vram::set_log_sink(nullptr); }
  CapturedLog(const CapturedLog &) = delete;
  CapturedLog &operator=(const CapturedLog &) = delete;

  std::vector<std::string> errors() const { return of(vram::LogLevel::error); }
  std::vector<std::string> infos() const { return of(vram::LogLevel::info); }
  std::vector<std::string> warnings() const { return of(vram::LogLevel::warning); }
  void clear()
  {
    const std::lock_guard lock(mutex());
    lines().clear();
  }

private:
  using Line = std::pair<vram::LogLevel, std::string>;
  static std::mutex &mutex()
  {
    static std::mutex m;
    return m;
  }
  static std::vector<Line> &lines()
  {
    static std::vector<Line> l;
    return l;
  }
  static void sink(vram::LogLevel level, const std::string &message)
  {
    const std::lock_guard lock(mutex());
    lines().emplace_back(level, message);
  }
  std::vector<std::string> of(vram::LogLevel level) const
  {
    const std::lock_guard lock(mutex());
    std::vector<std::string> out;
    for (const auto &[l, m] : lines())
      if (l == level) out.push_back(m);
    return out;
  }
};

} // namespace integrity_test
