#include "map_file.hpp"

#include <cstdio>

namespace fakecuda {

MapFile::MapFile(const std::string &path) : file_(path, "FAKECUDA_MAP_FILE") {}

void MapFile::alloc(int gpu, CUdeviceptr dptr, std::uint64_t file_offset, std::uint64_t size)
{
  if (!file_.enabled()) return;
  char line[160];
  const int n = std::snprintf(
    line, sizeof line, "alloc gpu=%d dptr=0x%llx file_offset=%llu size=%llu\n", gpu,
    static_cast<unsigned long long>(dptr), static_cast<unsigned long long>(file_offset),
    static_cast<unsigned long long>(size));
  file_.write_line(line, n);
}

void MapFile::free(int gpu, CUdeviceptr dptr)
{
  if (!file_.enabled()) return;
  char line[96];
  const int n = std::snprintf(line, sizeof line, "free gpu=%d dptr=0x%llx\n", gpu,
                              static_cast<unsigned long long>(dptr));
  file_.write_line(line, n);
}

void MapFile::create(int gpu, std::uint64_t handle, std::uint64_t file_offset, std::uint64_t size)
{
  if (!file_.enabled()) return;
  char line[160];
  const int n = std::snprintf(
    line, sizeof line, "create gpu=%d handle=0x%llx file_offset=%llu size=%llu\n", gpu,
    static_cast<unsigned long long>(handle), static_cast<unsigned long long>(file_offset),
    static_cast<unsigned long long>(size));
  file_.write_line(line, n);
}

void MapFile::release(std::uint64_t handle, bool deferred)
{
  if (!file_.enabled()) return;
  char line[96];
  const int n = std::snprintf(line, sizeof line, "release handle=0x%llx%s\n",
                              static_cast<unsigned long long>(handle), deferred ? " deferred" : "");
  file_.write_line(line, n);
}

void MapFile::map(CUdeviceptr dptr, std::uint64_t size, std::uint64_t handle, std::uint64_t offset,
                  std::uint64_t file_offset)
{
  if (!file_.enabled()) return;
  char line[192];
  const int n = std::snprintf(
    line, sizeof line, "map dptr=0x%llx size=%llu handle=0x%llx offset=%llu file_offset=%llu\n",
    static_cast<unsigned long long>(dptr), static_cast<unsigned long long>(size),
    static_cast<unsigned long long>(handle), static_cast<unsigned long long>(offset),
    static_cast<unsigned long long>(file_offset));
  file_.write_line(line, n);
}

void MapFile::unmap(CUdeviceptr dptr, std::uint64_t size)
{
  if (!file_.enabled()) return;
  char line[96];
  const int n =
    std::snprintf(line, sizeof line, "unmap dptr=0x%llx size=%llu\n",
                  static_cast<unsigned long long>(dptr), static_cast<unsigned long long>(size));
  file_.write_line(line, n);
}

} // namespace fakecuda
