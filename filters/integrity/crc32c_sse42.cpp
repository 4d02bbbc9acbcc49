// CRC32C with the SSE4.2 crc32 instruction.  One crc32 on 8 bytes takes
// 3 cycles but a new one can start every cycle, so a long buffer is cut
// into three runs checksummed side by side and joined with ZeroShift
// (see crc32c_tables.hpp): about three times the speed of one chain.
#include "crc32c.hpp"

#include "crc32c_tables.hpp"

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace integrity {

#if defined(__x86_64__)

namespace {

// Run lengths: a 4 KiB block is three runs of 1360 bytes and 16 left
// over; a 512-byte block is three runs of 168 and 8 left over.
constexpr size_t long_run = 1360;
constexpr size_t short_run = 168;

const detail::ZeroShift &shift_long()
{
  static const detail::ZeroShift s(long_run);
  return s;
}

const detail::ZeroShift &shift_short()
{
  static const detail::ZeroShift s(short_run);
  return s;
}

[[gnu::target("sse4.2")]] inline uint64_t step(uint64_t r, const std::byte *p)
{
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm_crc32_u64(r, v);
}

// Three runs of `run` bytes from p, starting from register r.
[[gnu::target("sse4.2")]] inline uint32_t three_runs(uint32_t r, const std::byte *p, size_t run,
                                                     const detail::ZeroShift &shift)
{
  uint64_t a = r, b = 0, c = 0;
  for (size_t i = 0; i < run; i += 8) {
    a = step(a, p + i);
    b = step(b, p + run + i);
    c = step(c, p + 2 * run + i);
  }
  return shift(shift(static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^
         static_cast<uint32_t>(c);
}

} // namespace

bool crc32c_hardware_available()
{
  __builtin_cpu_init(); // may run before the constructor that sets it up
  return __builtin_cpu_supports("sse4.2");
}

[[gnu::target("sse4.2")]] uint32_t crc32c_hardware(std::span<const std::byte> data, uint32_t crc)
{
  uint32_t r = ~crc;
  const std::byte *p = data.data();
  size_t n = data.size();
  if (n >= 3 * long_run) {
    const detail::ZeroShift &shift = shift_long();
    do {
      r = three_runs(r, p, long_run, shift);
      p += 3 * long_run;
      n -= 3 * long_run;
    } while (n >= 3 * long_run);
  }
  if (n >= 3 * short_run) {
    const detail::ZeroShift &shift = shift_short();
    do {
      r = three_runs(r, p, short_run, shift);
      p += 3 * short_run;
      n -= 3 * short_run;
    } while (n >= 3 * short_run);
  }
  uint64_t r64 = r;
  for (; n >= 8; n -= 8, p += 8)
    r64 = step(r64, p);
  r = static_cast<uint32_t>(r64);
  for (; n; --n)
    r = _mm_crc32_u8(r, static_cast<uint8_t>(*p++));
  return ~r;
}

#else

bool crc32c_hardware_available() { return false; }

uint32_t crc32c_hardware(std::span<const std::byte> data, uint32_t crc)
{
  return crc32c_portable(data, crc);
}

#endif

} // namespace integrity
