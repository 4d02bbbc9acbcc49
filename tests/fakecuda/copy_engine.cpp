#include "copy_engine.hpp"

#include <cstring>

#if defined(__SANITIZE_THREAD__)
#include <atomic>
#include <cstdint>
#endif

namespace fakecuda {

#if defined(__SANITIZE_THREAD__)

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

// Device bytes [dev, dev + n) in words where aligned, bytes at the ends;
// f(device pointer, host offset, width in bytes).
template <typename F> void each_word(std::byte *dev, std::size_t n, F &&f)
{
  std::size_t i = 0;
  while (i < n && reinterpret_cast<std::uintptr_t>(dev + i) % sizeof(std::uint64_t) != 0)
    f(dev + i, i, 1), ++i;
  for (; i + sizeof(std::uint64_t) <= n; i += sizeof(std::uint64_t))
    f(dev + i, i, sizeof(std::uint64_t));
  for (; i < n; ++i)
    f(dev + i, i, 1);
}

} // namespace

void engine_to_device(std::byte *dev, const std::byte *host, std::size_t n)
{
  each_word(dev, n, [&](std::byte *d, std::size_t i, std::size_t width) {
    if (width == 1) {
      std::atomic_ref(*reinterpret_cast<unsigned char *>(d))
        .store(static_cast<unsigned char>(host[i]), relaxed);
    } else {
      std::uint64_t v;
      std::memcpy(&v, host + i, sizeof v);
      std::atomic_ref(*reinterpret_cast<std::uint64_t *>(d)).store(v, relaxed);
    }
  });
}

void engine_to_host(std::byte *host, const std::byte *dev, std::size_t n)
{
  each_word(const_cast<std::byte *>(dev), n, [&](std::byte *d, std::size_t i, std::size_t width) {
    if (width == 1) {
      host[i] = static_cast<std::byte>(
        std::atomic_ref(*reinterpret_cast<unsigned char *>(d)).load(relaxed));
    } else {
      const std::uint64_t v = std::atomic_ref(*reinterpret_cast<std::uint64_t *>(d)).load(relaxed);
      std::memcpy(host + i, &v, sizeof v);
    }
  });
}

void engine_fill(std::byte *dev, unsigned char value, std::size_t n)
{
  const std::uint64_t word = 0x0101010101010101ull * value;
  each_word(dev, n, [&](std::byte *d, std::size_t, std::size_t width) {
    if (width == 1) std::atomic_ref(*reinterpret_cast<unsigned char *>(d)).store(value, relaxed);
    else std::atomic_ref(*reinterpret_cast<std::uint64_t *>(d)).store(word, relaxed);
  });
}

#else

void engine_to_device(std::byte *dev, const std::byte *host, std::size_t n)
{
  std::memcpy(dev, host, n);
}
void engine_to_host(std::byte *host, const std::byte *dev, std::size_t n)
{
  std::memcpy(host, dev, n);
}
void engine_fill(std::byte *dev, unsigned char value, std::size_t n) { std::memset(dev, value, n); }

#endif

} // namespace fakecuda
