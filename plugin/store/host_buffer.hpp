// Host memory the plugin owns for copies to and from VRAM (staging
// buffers, the source of zeroes): mapped once, every page written so it
// is resident (and locked, under the plugin's mlockall), and registered
// with the CUDA context for DMA while the context lives.  Unlike
// cuMemHostAlloc memory, it outlives the context: when the GPU rests
// (idle-release=) only the registration goes, and waking registers the
// same pages again instead of allocating new ones.
#pragma once

#include "cuda/cuda_handles.hpp"

#include <sys/mman.h>

#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

namespace vram {

class HostBuffer {
public:
  HostBuffer() = default;
  // Throws std::bad_alloc when the memory cannot be mapped.
  explicit HostBuffer(size_t size) : size_(size)
  {
    void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<std::byte *>(p);
    std::memset(data_, 0, size_); // resident now, not at the first copy
  }
  HostBuffer(HostBuffer &&other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0))
  {
  }
  HostBuffer &operator=(HostBuffer &&other) noexcept
  {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  HostBuffer(const HostBuffer &) = delete;
  HostBuffer &operator=(const HostBuffer &) = delete;
  ~HostBuffer() { reset(); }

  std::byte *data() const { return data_; }
  size_t size() const { return size_; }

  void reset()
  {
    if (data_) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

private:
  std::byte *data_ = nullptr;
  size_t size_ = 0;
};

// A HostBuffer registered with the current context (cuMemHostRegister);
// unregistered on destruction.
using HostRegistration = CudaOwner<void *, &CudaApi::MemHostUnregister>;

} // namespace vram
