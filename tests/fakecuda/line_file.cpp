#include "line_file.hpp"

#include "config.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace fakecuda {

LineFile::LineFile(const std::string &path, const char *variable) : variable_(variable)
{
  if (path.empty()) return;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw ConfigError(std::string(variable) + "=" + path + ": open: " + std::strerror(errno));
}

LineFile::~LineFile()
{
  if (fd_ >= 0) ::close(fd_);
}

// One write() per line on an O_APPEND descriptor: lines from concurrent
// threads never interleave, and a reader (the test) sees whole lines as soon
// as the call that produced them returned, with no stdio buffering between.
void LineFile::write_line(const char *line, int length)
{
  if (fd_ < 0 || length <= 0) return;
  const char *p = line;
  std::size_t left = static_cast<std::size_t>(length);
  while (left > 0) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      std::fprintf(stderr, "fakecuda: writing %s: %s\n", variable_, std::strerror(errno));
      return;
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
}

} // namespace fakecuda
