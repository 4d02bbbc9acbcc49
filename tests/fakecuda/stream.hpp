// Streams and events. Each stream owns a worker thread that runs queued
// operations in FIFO order, so asynchronous copies really are asynchronous:
// a caller that reuses a host buffer before synchronising sees the race,
// as it would on a GPU.
//
// Queueing allocates nothing: an operation is a function pointer and a
// small trivially copyable payload, held in a ring made with the stream
// (when it is full, enqueue waits for room, as the real driver does when
// its command buffer is).  An allocation per copy would put the caller's
// thread into malloc, and at zero free RAM into a page fault holding the
// malloc arena's lock, on a path the real driver takes without one: the VM
// tests' soak caught exactly that (docs/dev/vm-tests.md, finding 11).
#pragma once

#include "cuda_abi.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace fakecuda {

class Stream {
public:
  static constexpr std::size_t payload_bytes = 192;
  static constexpr std::size_t ring_capacity = 1024;
  struct Op {
    CUresult (*run)(void *context, const void *payload) = nullptr;
    void *context = nullptr;
    alignas(std::max_align_t) unsigned char payload[payload_bytes];
  };

  Stream(int device, unsigned flags);
  ~Stream(); // shutdown()
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;

  int device() const { return device_; }
  unsigned flags() const { return flags_; }

  // Queues run(context, &payload) (payload copied). False if the stream is
  // being destroyed (a racing caller still holding the handle), in which
  // case nothing was queued.
  template <typename Payload>
  bool enqueue(CUresult (*run)(void *, const void *), void *context, const Payload &payload)
  {
    static_assert(std::is_trivially_copyable_v<Payload> && sizeof(Payload) <= payload_bytes);
    Op op;
    op.run = run;
    op.context = context;
    std::memcpy(op.payload, &payload, sizeof payload);
    return enqueue(op);
  }
  bool enqueue(const Op &op);

  // Sequence number of the last queued operation (0: none yet). An event
  // recorded now completes when everything up to it has run.
  std::uint64_t last_queued() const;

  // Blocks until every operation numbered <= upto has run. With
  // take_error, returns and clears the first error produced by one of
  // those operations since the last time an error was taken: async errors
  // surface at the next synchronisation point, once.
  CUresult wait(std::uint64_t upto, bool take_error);

  CUresult synchronize() { return wait(last_queued(), true); }
  void drain() { wait(last_queued(), false); }

  // Runs what is queued, then stops and joins the worker. Idempotent.
  void shutdown();

private:
  void run();

  const int device_;
  const unsigned flags_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_; // worker waits for ops / stop
  std::condition_variable done_cv_; // waiters wait for progress (and room)
  std::vector<Op> ring_;            // ring_capacity entries, made once
  std::uint64_t queued_ = 0;        // ops queued; op n is ring_[(n - 1) % capacity]
  std::uint64_t started_ = 0;       // ops taken by the worker
  std::uint64_t completed_ = 0;
  struct Failure {
    std::uint64_t seq;
    CUresult code;
  };
  std::optional<Failure> failure_;
  bool stopping_ = false;
  std::once_flag joined_;
  std::thread worker_; // last: started once everything above exists
};

class Event {
public:
  explicit Event(int device) : device_(device) {}
  int device() const { return device_; }

  // Marks the point after everything queued so far on `stream`; nullptr
  // (the inline default stream) means "complete now".
  void record(std::shared_ptr<Stream> stream);

  // Waits for the recorded point; returns a pending error of the stream
  // from work before that point (and clears it). Never recorded: success.
  CUresult synchronize();

private:
  const int device_;
  std::mutex mu_;
  std::shared_ptr<Stream> stream_; // keeps a destroyed stream's state readable
  std::uint64_t marker_ = 0;
};

} // namespace fakecuda
