#include "crc32c.hpp"

#include "crc32c_tables.hpp"

#include <cstring>

namespace integrity {
namespace detail {
namespace {

// A GF(2) 32x32 matrix as its columns: column j is the image of bit j.
using Matrix = std::array<uint32_t, 32>;

uint32_t apply(const Matrix &m, uint32_t v)
{
  uint32_t out = 0;
  for (int j = 0; v; ++j, v >>= 1)
    if (v & 1u) out ^= m[j];
  return out;
}

Matrix compose(const Matrix &a, const Matrix &b) // a after b
{
  Matrix out{};
  for (int j = 0; j < 32; ++j)
    out[j] = apply(a, b[j]);
  return out;
}

Matrix one_zero_byte()
{
  Matrix m{};
  for (int j = 0; j < 32; ++j) {
    const uint32_t r = 1u << j;
    m[j] = (r >> 8) ^ slicing[0][r & 0xff];
  }
  return m;
}

} // namespace

uint32_t advance_over_zeroes(uint32_t r, uint64_t zero_bytes)
{
  // Square and multiply: Z_n for each set bit of n.
  Matrix power = one_zero_byte();
  while (zero_bytes) {
    if (zero_bytes & 1u) r = apply(power, r);
    zero_bytes >>= 1;
    if (zero_bytes) power = compose(power, power);
  }
  return r;
}

ZeroShift::ZeroShift(uint64_t zero_bytes)
{
  std::array<uint32_t, 32> basis{};
  for (int j = 0; j < 32; ++j)
    basis[j] = advance_over_zeroes(1u << j, zero_bytes);
  for (int k = 0; k < 4; ++k)
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t v = 0;
      for (int bit = 0; bit < 8; ++bit)
        if (b & (1u << bit)) v ^= basis[8 * k + bit];
      table_[k][b] = v;
    }
}

} // namespace detail

namespace {

using detail::slicing;

uint32_t load_le32(const std::byte *p)
{
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v; // x86 and every other target we build for are little-endian
}

using CrcFunction = uint32_t (*)(std::span<const std::byte>, uint32_t);

// Chosen on first use (not by a static initialiser, which could run after
// another one that already checksums something).
CrcFunction chosen()
{
  static const CrcFunction f = crc32c_hardware_available() ? crc32c_hardware : crc32c_portable;
  return f;
}

} // namespace

// Slicing-by-8: eight table lookups per eight bytes.
uint32_t crc32c_portable(std::span<const std::byte> data, uint32_t crc)
{
  uint32_t r = ~crc;
  const std::byte *p = data.data();
  size_t n = data.size();
  while (n >= 8) {
    const uint32_t lo = load_le32(p) ^ r;
    const uint32_t hi = load_le32(p + 4);
    r = slicing[7][lo & 0xff] ^ slicing[6][(lo >> 8) & 0xff] ^ slicing[5][(lo >> 16) & 0xff] ^
        slicing[4][lo >> 24] ^ slicing[3][hi & 0xff] ^ slicing[2][(hi >> 8) & 0xff] ^
        slicing[1][(hi >> 16) & 0xff] ^ slicing[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) {
    r = (r >> 8) ^ slicing[0][(r ^ static_cast<uint32_t>(*p++)) & 0xff];
  }
  return ~r;
}

uint32_t crc32c(std::span<const std::byte> data, uint32_t crc) { return chosen()(data, crc); }

std::string_view crc32c_implementation()
{
  return chosen() == crc32c_hardware ? "sse4.2" : "portable";
}

uint32_t crc32c_of_zeroes(uint64_t length) { return ~detail::advance_over_zeroes(~0u, length); }

} // namespace integrity
