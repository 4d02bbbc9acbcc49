// An append-only file of lines, for the fake's logs that tests read while
// the code under test runs (FAKECUDA_MAP_FILE, FAKECUDA_TIMESLICE_FILE).
#pragma once

#include <string>

namespace fakecuda {

class LineFile {
public:
  // Empty path: disabled. Throws ConfigError naming `variable` if the file
  // cannot be opened.
  LineFile(const std::string &path, const char *variable);
  ~LineFile();
  LineFile(const LineFile &) = delete;
  LineFile &operator=(const LineFile &) = delete;

  bool enabled() const { return fd_ >= 0; }
  // One line of `length` bytes (snprintf's result; <= 0 writes nothing).
  void write_line(const char *line, int length);

private:
  const char *variable_;
  int fd_ = -1;
};

} // namespace fakecuda
