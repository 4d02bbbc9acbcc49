// RAII owners for the CUDA objects the plugin creates.  Each releases its
// handle through the same driver table that created it; release errors are
// ignored because there is nothing left to do about them at that point.
#pragma once

#include "cuda/cuda_driver.hpp"

#include <cstddef>
#include <utility>

namespace vram {

template <typename Handle, auto Release> class CudaOwner {
public:
  CudaOwner() = default;
  CudaOwner(const CudaApi *api, Handle handle) : api_(api), handle_(handle) {}
  CudaOwner(CudaOwner &&other) noexcept
    : api_(std::exchange(other.api_, nullptr)), handle_(std::exchange(other.handle_, Handle{}))
  {
  }
  CudaOwner &operator=(CudaOwner &&other) noexcept
  {
    if (this != &other) {
      reset();
      api_ = std::exchange(other.api_, nullptr);
      handle_ = std::exchange(other.handle_, Handle{});
    }
    return *this;
  }
  CudaOwner(const CudaOwner &) = delete;
  CudaOwner &operator=(const CudaOwner &) = delete;
  ~CudaOwner() { reset(); }

  Handle get() const { return handle_; }
  explicit operator bool() const { return handle_ != Handle{}; }

  void reset()
  {
    if (api_ && handle_ != Handle{}) (void)(api_->*Release)(handle_);
    handle_ = Handle{};
    api_ = nullptr;
  }

private:
  const CudaApi *api_ = nullptr;
  Handle handle_{};
};

using DeviceMemory = CudaOwner<CUdeviceptr, &CudaApi::MemFree>;
using PinnedMemory = CudaOwner<void *, &CudaApi::MemFreeHost>;
using Stream = CudaOwner<CUstream, &CudaApi::StreamDestroy>;
using Event = CudaOwner<CUevent, &CudaApi::EventDestroy>;

// A retained primary context; released (by device) on destruction.
class PrimaryContext {
public:
  PrimaryContext() = default;
  PrimaryContext(const CudaApi *api, CUdevice device, CUcontext context)
    : api_(api), device_(device), context_(context)
  {
  }
  PrimaryContext(PrimaryContext &&other) noexcept
    : api_(std::exchange(other.api_, nullptr)), device_(other.device_),
      context_(std::exchange(other.context_, nullptr))
  {
  }
  PrimaryContext &operator=(PrimaryContext &&other) noexcept
  {
    if (this != &other) {
      reset();
      api_ = std::exchange(other.api_, nullptr);
      device_ = other.device_;
      context_ = std::exchange(other.context_, nullptr);
    }
    return *this;
  }
  PrimaryContext(const PrimaryContext &) = delete;
  PrimaryContext &operator=(const PrimaryContext &) = delete;
  ~PrimaryContext() { reset(); }

  CUcontext get() const { return context_; }
  CUdevice device() const { return device_; }

  void reset()
  {
    if (api_ && context_) (void)api_->DevicePrimaryCtxRelease(device_);
    context_ = nullptr;
    api_ = nullptr;
  }

private:
  const CudaApi *api_ = nullptr;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
};

} // namespace vram
