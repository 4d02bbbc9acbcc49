#include "map_file.hpp"

#include "config.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace fakecuda {

MapFile::MapFile(const std::string& path) {
  if (path.empty()) return;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw ConfigError("FAKECUDA_MAP_FILE=" + path + ": open: " + std::strerror(errno));
}

MapFile::~MapFile() {
  if (fd_ >= 0) ::close(fd_);
}

void MapFile::alloc(int gpu, CUdeviceptr dptr, std::uint64_t file_offset, std::uint64_t size) {
  if (fd_ < 0) return;
  char line[160];
  const int n = std::snprintf(line, sizeof line, "alloc gpu=%d dptr=0x%llx file_offset=%llu size=%llu\n",
                              gpu, static_cast<unsigned long long>(dptr),
                              static_cast<unsigned long long>(file_offset),
                              static_cast<unsigned long long>(size));
  write_line(line, n);
}

void MapFile::free(int gpu, CUdeviceptr dptr) {
  if (fd_ < 0) return;
  char line[96];
  const int n = std::snprintf(line, sizeof line, "free gpu=%d dptr=0x%llx\n", gpu,
                              static_cast<unsigned long long>(dptr));
  write_line(line, n);
}

void MapFile::create(int gpu, std::uint64_t handle, std::uint64_t file_offset, std::uint64_t size) {
  if (fd_ < 0) return;
  char line[160];
  const int n = std::snprintf(line, sizeof line, "create gpu=%d handle=0x%llx file_offset=%llu size=%llu\n",
                              gpu, static_cast<unsigned long long>(handle),
                              static_cast<unsigned long long>(file_offset),
                              static_cast<unsigned long long>(size));
  write_line(line, n);
}

void MapFile::release(std::uint64_t handle, bool deferred) {
  if (fd_ < 0) return;
  char line[96];
  const int n = std::snprintf(line, sizeof line, "release handle=0x%llx%s\n",
                              static_cast<unsigned long long>(handle), deferred ? " deferred" : "");
  write_line(line, n);
}

void MapFile::map(CUdeviceptr dptr, std::uint64_t size, std::uint64_t handle, std::uint64_t offset,
                  std::uint64_t file_offset) {
  if (fd_ < 0) return;
  char line[192];
  const int n = std::snprintf(line, sizeof line,
                              "map dptr=0x%llx size=%llu handle=0x%llx offset=%llu file_offset=%llu\n",
                              static_cast<unsigned long long>(dptr), static_cast<unsigned long long>(size),
                              static_cast<unsigned long long>(handle),
                              static_cast<unsigned long long>(offset),
                              static_cast<unsigned long long>(file_offset));
  write_line(line, n);
}

void MapFile::unmap(CUdeviceptr dptr, std::uint64_t size) {
  if (fd_ < 0) return;
  char line[96];
  const int n = std::snprintf(line, sizeof line, "unmap dptr=0x%llx size=%llu\n",
                              static_cast<unsigned long long>(dptr), static_cast<unsigned long long>(size));
  write_line(line, n);
}

// One write() per line on an O_APPEND descriptor: lines from concurrent
// threads never interleave, and a reader (the test) sees whole lines as soon
// as the call that produced them returned, with no stdio buffering between.
void MapFile::write_line(const char* line, int length) {
  if (length <= 0) return;
  const char* p = line;
  std::size_t left = static_cast<std::size_t>(length);
  while (left > 0) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      std::fprintf(stderr, "fakecuda: writing FAKECUDA_MAP_FILE: %s\n", std::strerror(errno));
      return;
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
}

}  // namespace fakecuda
