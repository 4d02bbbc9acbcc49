#include "timeslice.hpp"

#include "config.hpp"
#include "driver.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace fakecuda {

namespace {
constexpr std::size_t copy_engine_min_1d = 32 * 1024;
}

bool time_sliced(const Transfer& t) {
  switch (t.kind) {
    case TransferKind::Memset: return true;
    case TransferKind::DtoH: return false;
    case TransferKind::HtoD: return t.rows < 2 && t.bytes < copy_engine_min_1d;
  }
  return false;
}

TimesliceFile::TimesliceFile(const std::string& path) {
  if (path.empty()) return;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw ConfigError("FAKECUDA_TIMESLICE_FILE=" + path + ": open: " + std::strerror(errno));
}

TimesliceFile::~TimesliceFile() {
  if (fd_ >= 0) ::close(fd_);
}

void TimesliceFile::note(const Transfer& t) {
  if (fd_ < 0) return;
  char line[160];
  const int n = std::snprintf(line, sizeof line, "%s bytes=%zu\n", t.api, t.bytes);
  // One write() per line with O_APPEND: lines from several threads never mix.
  if (n > 0) (void)!::write(fd_, line, static_cast<std::size_t>(n));
}

}  // namespace fakecuda
