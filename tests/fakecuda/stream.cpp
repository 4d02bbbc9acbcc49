#include "stream.hpp"

#include <new>

namespace fakecuda {

Stream::Stream(int device, unsigned flags) : device_(device), flags_(flags), ring_(ring_capacity)
{
  worker_ = std::thread([this] { run(); });
}

Stream::~Stream() { shutdown(); }

bool Stream::enqueue(const Op &op)
{
  {
    std::unique_lock lk(mu_);
    done_cv_.wait(lk, [&] { return stopping_ || queued_ - started_ < ring_capacity; });
    if (stopping_) return false;
    ring_[queued_ % ring_capacity] = op;
    ++queued_;
  }
  work_cv_.notify_one();
  return true;
}

std::uint64_t Stream::last_queued() const
{
  std::lock_guard lk(mu_);
  return queued_;
}

CUresult Stream::wait(std::uint64_t upto, bool take_error)
{
  std::unique_lock lk(mu_);
  done_cv_.wait(lk, [&] { return completed_ >= upto; });
  if (!take_error || !failure_ || failure_->seq > upto) return CUDA_SUCCESS;
  const CUresult code = failure_->code;
  failure_.reset();
  return code;
}

void Stream::shutdown()
{
  std::call_once(joined_, [this] {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    work_cv_.notify_one();
    worker_.join();
  });
}

void Stream::run()
{
  std::unique_lock lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [&] { return stopping_ || started_ < queued_; });
    // Drain before honouring stop: destroying a stream completes its work.
    if (started_ == queued_) return;
    const Op op = ring_[started_ % ring_capacity];
    const std::uint64_t seq = ++started_;
    lk.unlock();
    done_cv_.notify_all(); // room in the ring
    CUresult result;
    try {
      result = op.run(op.context, op.payload);
    } catch (const std::bad_alloc &) {
      result = CUDA_ERROR_OUT_OF_MEMORY;
    } catch (...) {
      result = CUDA_ERROR_UNKNOWN;
    }
    lk.lock();
    if (result != CUDA_SUCCESS && !failure_) failure_ = Failure{seq, result};
    completed_ = seq;
    done_cv_.notify_all();
  }
}

void Event::record(std::shared_ptr<Stream> stream)
{
  const std::uint64_t marker = stream ? stream->last_queued() : 0;
  std::lock_guard lk(mu_);
  stream_ = std::move(stream);
  marker_ = marker;
}

CUresult Event::synchronize()
{
  std::shared_ptr<Stream> stream;
  std::uint64_t marker;
  {
    std::lock_guard lk(mu_);
    stream = stream_;
    marker = marker_;
  }
  if (!stream) return CUDA_SUCCESS;
  return stream->wait(marker, true);
}

} // namespace fakecuda
