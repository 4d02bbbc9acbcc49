#include "backing.hpp"

#include "config.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

namespace fakecuda {
namespace {

std::string sys_error(const std::string &what) { return what + ": " + std::strerror(errno); }

// Closes the descriptor unless released; keeps the constructor's error
// paths leak-free.
struct FdGuard {
  int fd;
  ~FdGuard()
  {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

// Makes `fd` (which refers to `path`) at least `size` bytes, or throws.
void ensure_size(int fd, const std::string &path, std::uint64_t size)
{
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw ConfigError(sys_error("FAKECUDA_MEMORY_FILE=" + path + ": fstat"));
  const std::string need = " (need " + std::to_string(size) + " bytes for the configured GPUs)";

  if (S_ISBLK(st.st_mode)) {
    std::uint64_t bytes = 0;
    if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0)
      throw ConfigError(sys_error("FAKECUDA_MEMORY_FILE=" + path + ": BLKGETSIZE64"));
    if (bytes < size)
      throw ConfigError("FAKECUDA_MEMORY_FILE=" + path + ": block device has only " +
                        std::to_string(bytes) + " bytes" + need);
    return;
  }
  if (S_ISCHR(st.st_mode)) return; // no size to check; mmap decides
  if (static_cast<std::uint64_t>(st.st_size) >= size) return;
  // Too small. Regular files grow (sparse); files that cannot change size,
  // such as a PCI BAR's sysfs resource file, refuse, and then it is an error.
  if (S_ISREG(st.st_mode) && ::ftruncate(fd, static_cast<off_t>(size)) == 0) return;
  throw ConfigError("FAKECUDA_MEMORY_FILE=" + path + ": file has only " +
                    std::to_string(st.st_size) + " bytes and cannot be resized" + need);
}

} // namespace

Backing::Backing(const std::optional<std::string> &path, std::uint64_t size) : size_(size)
{
  FdGuard fd{-1};
  if (path) {
    fd.fd = ::open(path->c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd.fd < 0) throw ConfigError(sys_error("FAKECUDA_MEMORY_FILE=" + *path + ": open"));
    ensure_size(fd.fd, *path, size);
  } else {
    fd.fd = ::memfd_create("fakecuda-vram", MFD_CLOEXEC);
    if (fd.fd < 0) throw ConfigError(sys_error("fakecuda: memfd_create"));
    if (::ftruncate(fd.fd, static_cast<off_t>(size)) != 0)
      throw ConfigError(sys_error("fakecuda: ftruncate of the memfd to " + std::to_string(size)));
  }
  // MAP_NORESERVE: the mapping may be far larger than RAM + swap; only
  // pages that are actually touched get backed.
  void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.fd, 0);
  if (p == MAP_FAILED)
    throw ConfigError(sys_error("fakecuda: mmap of " + (path ? *path : std::string("memfd")) +
                                " (" + std::to_string(size) + " bytes)"));
  data_ = static_cast<std::byte *>(p);
  fd_ = fd.release();
}

Backing::~Backing()
{
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

} // namespace fakecuda
