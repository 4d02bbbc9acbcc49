// Tables shared by the CRC32C implementations: byte-at-a-time (sliced)
// tables of the reflected Castagnoli polynomial, and the linear map that
// advances a CRC register over a run of zero bytes.
#pragma once

#include <array>
#include <cstdint>

namespace integrity::detail {

constexpr uint32_t castagnoli_reflected = 0x82F63B78u;

// slicing[k][b]: the register after feeding byte b followed by k zero
// bytes into a zero register.
using SlicingTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr SlicingTables make_slicing_tables()
{
  SlicingTables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t r = b;
    for (int bit = 0; bit < 8; ++bit)
      r = (r >> 1) ^ (castagnoli_reflected & (0u - (r & 1u)));
    t[0][b] = r;
  }
  for (size_t k = 1; k < t.size(); ++k)
    for (uint32_t b = 0; b < 256; ++b)
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  return t;
}

inline constexpr SlicingTables slicing = make_slicing_tables();

// The CRC register update is linear over GF(2): feeding n zero bytes maps
// register r to Z_n(r), and feeding data D maps r to Z_|D|(r) ^ f(0, D).
// ZeroShift applies Z_n with four table lookups, which is what lets
// independent runs of a buffer be checksummed in parallel and joined.
class ZeroShift {
public:
  explicit ZeroShift(uint64_t zero_bytes);
  uint32_t operator()(uint32_t r) const
  {
    return table_[0][r & 0xff] ^ table_[1][(r >> 8) & 0xff] ^ table_[2][(r >> 16) & 0xff] ^
           table_[3][r >> 24];
  }

private:
  std::array<std::array<uint32_t, 256>, 4> table_{};
};

// Z_n(r) computed directly: used to build ZeroShift and for crc32c_of_zeroes.
uint32_t advance_over_zeroes(uint32_t r, uint64_t zero_bytes);

} // namespace integrity::detail
