#include "rest/memory_pressure.hpp"

#include "byte_size.hpp"
#include "logging.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace vram {
namespace {

// What a look reads: /proc/meminfo is about 1.5 KiB, the PSI file 100 bytes.
constexpr size_t read_capacity = 4096;

// The file's text from offset 0 into `buf`; empty on any error.
std::string_view read_at_start(int fd, char *buf, size_t capacity)
{
  if (fd < 0) return {};
  const ssize_t n = ::pread(fd, buf, capacity, 0);
  return n > 0 ? std::string_view(buf, static_cast<size_t>(n)) : std::string_view{};
}

} // namespace

std::optional<double> parse_psi_some_avg10(std::string_view text)
{
  // "some avg10=1.23 avg60=0.40 avg300=0.08 total=123456"
  const size_t line = text.find("some ");
  if (line == std::string_view::npos) return std::nullopt;
  const size_t at = text.find("avg10=", line);
  const size_t end = text.find('\n', line);
  if (at == std::string_view::npos || (end != std::string_view::npos && at > end))
    return std::nullopt;
  const char *first = text.data() + at + 6;
  const char *last = text.data() + (end == std::string_view::npos ? text.size() : end);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec != std::errc{} || ptr == first || v < 0) return std::nullopt;
  return v;
}

std::optional<uint64_t> parse_meminfo_kb(std::string_view text, std::string_view key)
{
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(at, end - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      size_t p = key.size() + 1;
      while (p < line.size() && line[p] == ' ')
        ++p;
      uint64_t v = 0;
      const auto [ptr, ec] = std::from_chars(line.data() + p, line.data() + line.size(), v);
      if (ec != std::errc{} || ptr == line.data() + p) return std::nullopt;
      return v;
    }
    at = end + 1;
  }
  return std::nullopt;
}

bool is_calm(const MemorySnapshot &m)
{
  if (!m.some_avg10 && !(m.available_kb && m.total_kb)) return false;
  if (m.some_avg10 && *m.some_avg10 > calm_some_avg10) return false;
  if (m.available_kb && m.total_kb && *m.available_kb * 100 < *m.total_kb * calm_available_share)
    return false;
  return true;
}

MemoryProbe::MemoryProbe(std::string psi_path, std::string meminfo_path)
  : psi_fd_(::open(psi_path.c_str(), O_RDONLY | O_CLOEXEC)),
    meminfo_fd_(::open(meminfo_path.c_str(), O_RDONLY | O_CLOEXEC))
{
}

MemoryProbe::~MemoryProbe()
{
  if (psi_fd_ >= 0) ::close(psi_fd_);
  if (meminfo_fd_ >= 0) ::close(meminfo_fd_);
}

MemorySnapshot MemoryProbe::read() const
{
  char buf[read_capacity];
  MemorySnapshot m;
  m.some_avg10 = parse_psi_some_avg10(read_at_start(psi_fd_, buf, sizeof buf));
  const std::string_view meminfo = read_at_start(meminfo_fd_, buf, sizeof buf);
  m.available_kb = parse_meminfo_kb(meminfo, "MemAvailable");
  m.total_kb = parse_meminfo_kb(meminfo, "MemTotal");
  return m;
}

PressureWatch::PressureWatch(std::function<void()> on_pressure, uint64_t stall_us,
                             uint64_t window_us, std::string psi_path)
  : on_pressure_(std::move(on_pressure))
{
  const int fd = ::open(psi_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    why_not_ = "cannot open " + psi_path + ": " + errno_text(errno);
    return;
  }
  const auto arm = [&](uint64_t stall, uint64_t window) {
    trigger_ = strformat("some %llu %llu", static_cast<unsigned long long>(stall),
                         static_cast<unsigned long long>(window));
    // The kernel takes the trigger with its terminating NUL.
    return ::write(fd, trigger_.c_str(), trigger_.size() + 1) >= 0;
  };
  bool armed = arm(stall_us, window_us);
  // Without CAP_SYS_RESOURCE the kernel takes only windows of whole
  // multiples of 2 s: the same share of a 2 s window.
  constexpr uint64_t unprivileged_window = 2000000;
  if (!armed && errno == EINVAL && window_us % unprivileged_window != 0) {
    const uint64_t window = round_up(window_us, unprivileged_window);
    armed = arm(stall_us * (window / window_us), window);
  }
  if (!armed) {
    why_not_ = "the kernel refused the trigger \"" + trigger_ + "\" on " + psi_path + ": " +
               errno_text(errno);
    ::close(fd);
    return;
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    why_not_ = "eventfd: " + errno_text(errno);
    ::close(fd);
    return;
  }
  trigger_fd_ = fd;
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

PressureWatch::~PressureWatch()
{
  if (thread_.joinable()) {
    thread_.request_stop();
    const uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  if (trigger_fd_ >= 0) ::close(trigger_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void PressureWatch::run(std::stop_token stop)
{
  while (!stop.stop_requested()) {
    pollfd fds[2] = {{trigger_fd_, POLLPRI, 0}, {stop_fd_, POLLIN, 0}};
    const int r = ::poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (stop.stop_requested() || (fds[1].revents & POLLIN)) return;
    if (fds[0].revents & POLLERR) return; // the monitor went away
    if (fds[0].revents & POLLPRI) on_pressure_();
  }
}

} // namespace vram
