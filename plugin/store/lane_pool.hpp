// A fixed set of I/O lanes shared by nbdkit's worker threads.  A request
// borrows a lane for its whole duration and returns it when done; when all
// lanes are busy it waits for one.  Both show in requests-file= (lane-wait,
// lane N).
#pragma once

#include "store/io_lane.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

namespace vram {

class LanePool {
public:
  class Lease {
  public:
    Lease(LanePool &pool, unsigned index) : pool_(pool), index_(index) {}
    Lease(const Lease &) = delete;
    Lease &operator=(const Lease &) = delete;
    ~Lease() { pool_.give_back(index_); }
    IoLane *operator->() const { return pool_.lanes_[index_].get(); }
    IoLane &operator*() const { return *pool_.lanes_[index_]; }
    unsigned index() const { return index_; }

  private:
    LanePool &pool_;
    unsigned index_;
  };

  // Throws std::runtime_error if a lane cannot be created.
  LanePool(const CudaDriver &driver, unsigned count, uint64_t piece_size, ShareGpu share);

  // The pinned zeroes every lane copies from: large enough that a long
  // zero, copied in pieces of this size queued back to back, runs near
  // the copy engine's bandwidth (about 55 GB/s on the H200), small in
  // pinned host memory.
  static constexpr uint64_t zero_source_bytes = 1024 * 1024;

  Lease acquire();

  // idle-release=: every lane's IoLane::detach()/attach(), and the buffer
  // of zeroes' registration; only while no lane is lent.
  std::string attach();
  void detach();
  size_t size() const { return lanes_.size(); }
  const SharedGpuDetector &shared() const { return shared_; }
  IoLane &lane(size_t i) { return *lanes_[i]; }

private:
  void give_back(unsigned index);
  std::string register_zeroes();

  const CudaDriver &driver_;
  SharedGpuDetector shared_; // before the lanes, which use them
  HostBuffer zeroes_host_;
  HostRegistration zeroes_;
  std::vector<std::unique_ptr<IoLane>> lanes_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<unsigned> idle_; // indexes into lanes_
};

} // namespace vram
