#include "export_registry.hpp"

#include "byte_size.hpp"
#include "crc32c.hpp"
#include "logging.hpp"

namespace integrity {

std::shared_ptr<CheckedExport> ExportRegistry::get(const std::string &name, uint64_t size,
                                                   const Settings &settings)
{
  const std::lock_guard lock(mutex_);
  if (const auto it = exports_.find(name); it != exports_.end()) {
    if (it->second->geometry().export_size() != size)
      throw Refused("export \"" + name + "\" is now " + std::to_string(size) + " bytes but was " +
                    std::to_string(it->second->geometry().export_size()) +
                    " when its checksum table was made; the integrity filter cannot "
                    "follow an export that changes size");
    return it->second;
  }
  if (exports_.size() >= max_exports)
    throw Refused("export \"" + name + "\": the filter already keeps checksums for " +
                  std::to_string(max_exports) +
                  " export names, its limit (one table per name: do clients use names "
                  "that the plugin ignores?)");
  auto made = std::make_shared<CheckedExport>(name, size, settings);
  const ChecksumTable &table = made->table();
  std::string message =
    "checking export \"" + name + "\" (" + vram::format_byte_size(size) + ") in " +
    std::to_string(settings.block_size) + "-byte blocks with CRC32C (ISA-L): checksum table " +
    vram::format_byte_size(table.bytes()) + " for " + std::to_string(table.blocks()) + " blocks";
  if (table.locked()) {
    vram::log_info(message + ", locked in RAM");
  } else if (settings.mlock == MlockPolicy::off) {
    vram::log_info(message + ", not locked in RAM (integrity-mlock=off)");
  } else {
    vram::log_warning(message + ", NOT locked in RAM: " + table.not_locked_reason() +
                      ". As swap, pages of the table itself could be swapped out");
  }
  exports_.emplace(name, made);
  return made;
}

void ExportRegistry::clear()
{
  const std::lock_guard lock(mutex_);
  exports_.clear();
}

} // namespace integrity
