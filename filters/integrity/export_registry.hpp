// The checked exports of this nbdkit process, by export name.  nbdkit
// gives a filter one handle per connection, but the data (and so the
// checksums) belong to the export: every connection to an export shares
// one CheckedExport, made by whichever connection comes first.
#pragma once

#include "checked_export.hpp"
#include "settings.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace integrity {

class ExportRegistry {
public:
  // The export's table, made on first use (and logged).  Throws
  // AllocationError, or SizeChanged if the export is not the size it had
  // when its table was made.
  std::shared_ptr<CheckedExport> get(const std::string &name, uint64_t size,
                                     const Settings &settings);
  void clear();

  class SizeChanged : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
  };

private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<CheckedExport>> exports_;
};

} // namespace integrity
