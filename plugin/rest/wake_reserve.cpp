#include "rest/wake_reserve.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <new>

namespace vram {

bool WakeReserve::keep(uint64_t bytes)
{
  const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  bytes = std::min(bytes, max_bytes) / page * page;
  release();
  if (bytes == 0) return true;
  try {
    buffer_ = HostBuffer(bytes);
  } catch (const std::bad_alloc &) {
    return false;
  }
  bytes_.store(bytes, std::memory_order_relaxed);
  return true;
}

std::optional<uint64_t> WakeReserve::parse_statm_resident(std::string_view text, uint64_t page_size)
{
  const size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const char *first = text.data() + space + 1;
  const char *last = text.data() + text.size();
  uint64_t pages = 0;
  const auto [ptr, ec] = std::from_chars(first, last, pages);
  if (ec != std::errc{} || ptr == first) return std::nullopt;
  return pages * page_size;
}

std::optional<uint64_t> WakeReserve::resident_bytes()
{
  char buf[256];
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  return parse_statm_resident(std::string_view(buf, static_cast<size_t>(n)),
                              static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
}

} // namespace vram
