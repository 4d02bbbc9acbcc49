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
#include <stdexcept>
#include <string>

namespace integrity {

class ExportRegistry {
public:
  // Export names come from clients, and each new one costs a whole
  // table: past this many, new names are refused.
  static constexpr size_t max_exports = 16;

  // The export's table, made on first use (and logged).  Throws
  // AllocationError, or Refused if the export is not the size it had when
  // its table was made or there are too many exports.
  std::shared_ptr<CheckedExport> get(const std::string &name, uint64_t size,
                                     const Settings &settings);
  void clear();

  class Refused : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
  };

private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<CheckedExport>> exports_;
};

} // namespace integrity
