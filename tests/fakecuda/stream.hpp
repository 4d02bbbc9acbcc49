// Streams and events. Each stream owns a worker thread that runs queued
// operations in FIFO order, so asynchronous copies really are asynchronous:
// a caller that reuses a host buffer before synchronising sees the race,
// as it would on a GPU.
#pragma once

#include <cuda.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace fakecuda {

class Stream {
 public:
  using Op = std::function<CUresult()>;

  Stream(int device, unsigned flags);
  ~Stream();  // shutdown()
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int device() const { return device_; }
  unsigned flags() const { return flags_; }

  // Queues `op`. False if the stream is being destroyed (a racing caller
  // still holding the handle), in which case nothing was queued.
  bool enqueue(Op op);

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
  std::condition_variable work_cv_;  // worker waits for ops / stop
  std::condition_variable done_cv_;  // waiters wait for progress
  std::deque<std::pair<std::uint64_t, Op>> queue_;
  std::uint64_t queued_ = 0;
  std::uint64_t completed_ = 0;
  struct Failure {
    std::uint64_t seq;
    CUresult code;
  };
  std::optional<Failure> failure_;
  bool stopping_ = false;
  std::once_flag joined_;
  std::thread worker_;  // last: started once everything above exists
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
  std::shared_ptr<Stream> stream_;  // keeps a destroyed stream's state readable
  std::uint64_t marker_ = 0;
};

}  // namespace fakecuda
