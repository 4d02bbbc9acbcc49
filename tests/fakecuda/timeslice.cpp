#include "timeslice.hpp"

#include "driver.hpp"

#include <cstdio>

namespace fakecuda {

namespace {
constexpr std::size_t copy_engine_min_1d = 32 * 1024;
}

bool time_sliced(const Transfer &t)
{
  switch (t.kind) {
  case TransferKind::Memset: return true;
  case TransferKind::DtoH: return false;
  case TransferKind::HtoD: return t.rows < 2 && t.bytes < copy_engine_min_1d;
  }
  return false;
}

TimesliceFile::TimesliceFile(const std::string &path) : file_(path, "FAKECUDA_TIMESLICE_FILE") {}

void TimesliceFile::note(const Transfer &t)
{
  if (!file_.enabled()) return;
  char line[160];
  file_.write_line(line, std::snprintf(line, sizeof line, "%s bytes=%zu\n", t.api, t.bytes));
}

} // namespace fakecuda
