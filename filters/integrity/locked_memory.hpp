// An anonymous memory mapping that is locked in RAM (mlock) if it can be:
// the checksum table must not itself be swapped out to the device it
// protects.
#pragma once

#include "settings.hpp"

#include <cstddef>
#include <stdexcept>
#include <string>

namespace integrity {

class AllocationError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class LockedMemory {
public:
  // Maps `bytes` (> 0) of zeroed memory and locks it according to
  // `policy`.  Throws AllocationError when the mapping cannot be made, or
  // cannot be locked under MlockPolicy::require; `what` names the memory
  // in that message.
  LockedMemory(size_t bytes, MlockPolicy policy, const std::string &what);
  ~LockedMemory();
  LockedMemory(const LockedMemory &) = delete;
  LockedMemory &operator=(const LockedMemory &) = delete;

  void *data() const { return data_; }
  size_t size() const { return size_; }
  bool locked() const { return locked_; }
  // Why it is not locked ("integrity-mlock=off", or mlock's error).
  const std::string &not_locked_reason() const { return not_locked_reason_; }

private:
  void *data_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
  std::string not_locked_reason_;
};

} // namespace integrity
