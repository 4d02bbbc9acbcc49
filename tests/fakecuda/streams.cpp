// Stream and event handles: creation, lookup, synchronisation, destruction.
#include "driver.hpp"

namespace fakecuda {

std::shared_ptr<Stream> Driver::find_stream(CUstream h)
{
  std::lock_guard lk(reg_mu_);
  auto it = streams_.find(h);
  return it == streams_.end() ? nullptr : it->second;
}

void Driver::drain_streams(int device)
{
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard lk(reg_mu_);
    for (auto &[h, s] : streams_)
      if (device < 0 || s->device() == device) streams.push_back(s);
  }
  // Outside reg_mu_: workers never take it, but other API calls must not
  // wait behind a slow queue.
  for (auto &s : streams)
    s->drain();
}

CUresult Driver::stream_create(CUstream *ph, unsigned flags)
{
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (flags != CU_STREAM_DEFAULT && flags != CU_STREAM_NON_BLOCKING)
    return CUDA_ERROR_INVALID_VALUE;
  int dev = 0;
  if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
  auto s = std::make_shared<Stream>(dev, flags);
  const auto handle = reinterpret_cast<CUstream>(s.get());
  {
    std::lock_guard lk(reg_mu_);
    streams_.emplace(handle, std::move(s));
  }
  *ph = handle;
  return CUDA_SUCCESS;
}

CUresult Driver::stream_destroy(CUstream h)
{
  std::shared_ptr<Stream> s;
  {
    std::lock_guard lk(reg_mu_);
    auto it = streams_.find(h);
    if (it == streams_.end()) return CUDA_ERROR_INVALID_HANDLE;
    s = std::move(it->second);
    streams_.erase(it);
  }
  s->shutdown(); // runs what is queued, then joins the worker
  return CUDA_SUCCESS;
}

CUresult Driver::stream_synchronize(CUstream h)
{
  if (h == nullptr || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) {
    // Default-stream work ran inline. The legacy default stream also waits
    // for the context's other streams; their errors stay theirs.
    int dev = 0;
    if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
    drain_streams(dev);
    return CUDA_SUCCESS;
  }
  auto s = find_stream(h);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  return s->synchronize();
}

CUresult Driver::event_create(CUevent *ph, unsigned flags)
{
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  constexpr unsigned known =
    CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if ((flags & ~known) != 0) return CUDA_ERROR_INVALID_VALUE;
  if ((flags & CU_EVENT_INTERPROCESS) != 0 && (flags & CU_EVENT_DISABLE_TIMING) == 0)
    return CUDA_ERROR_INVALID_VALUE;
  int dev = 0;
  if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
  auto e = std::make_shared<Event>(dev);
  const auto handle = reinterpret_cast<CUevent>(e.get());
  {
    std::lock_guard lk(reg_mu_);
    events_.emplace(handle, std::move(e));
  }
  *ph = handle;
  return CUDA_SUCCESS;
}

CUresult Driver::event_destroy(CUevent h)
{
  std::lock_guard lk(reg_mu_);
  return events_.erase(h) != 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult Driver::event_record(CUevent ev, CUstream stream)
{
  std::shared_ptr<Event> e;
  std::shared_ptr<Stream> s;
  const bool default_stream =
    stream == nullptr || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD;
  {
    std::lock_guard lk(reg_mu_);
    auto it = events_.find(ev);
    if (it == events_.end()) return CUDA_ERROR_INVALID_HANDLE;
    e = it->second;
    if (!default_stream) {
      auto st = streams_.find(stream);
      if (st == streams_.end()) return CUDA_ERROR_INVALID_HANDLE;
      s = st->second;
    }
  }
  e->record(std::move(s)); // default stream: everything already ran
  return CUDA_SUCCESS;
}

CUresult Driver::event_synchronize(CUevent ev)
{
  std::shared_ptr<Event> e;
  {
    std::lock_guard lk(reg_mu_);
    auto it = events_.find(ev);
    if (it == events_.end()) return CUDA_ERROR_INVALID_HANDLE;
    e = it->second;
  }
  return e->synchronize();
}

} // namespace fakecuda
