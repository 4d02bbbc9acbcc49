// Fault injection for copies (cuMemcpyHtoD* / cuMemcpyDtoH*, sync and async;
// memsets are never counted or failed), and the "sticky" state that a fatal
// error leaves behind: after it, the context is corrupt and every call that
// touches the device fails with the same code, as with the real driver.
#pragma once

#include "config.hpp"

#include <atomic>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <utility>

namespace fakecuda {

// What the copy counter decided for one copy when it was issued. Applied
// when the copy executes (for async copies: in the stream worker, so the
// error surfaces at the next synchronisation).
struct FaultPlan {
  std::uint64_t number = 0; // 1-based copy number, process-wide
  CUresult code = CUDA_SUCCESS;
  bool sticky = false;
};

class FaultInjector {
public:
  explicit FaultInjector(FaultConfig config) : config_(std::move(config)) {}

  // Counts a copy at the time it is issued (so numbering follows the
  // caller's order even when streams run in parallel).
  FaultPlan plan_copy();

  // Right before a copy moves data: consults the trigger file, applies the
  // plan, turns sticky if asked. CUDA_SUCCESS means "go ahead".
  CUresult before_copy(const FaultPlan &plan, const char *api);

  // At the start of a failable entry point (kFailableCalls): counts the
  // call, and returns the failure FAKECUDA_FAIL_CALL planned for it, if
  // any (the caller then does nothing), else CUDA_SUCCESS.
  CUresult before_call(const char *name);

  // CUDA_SUCCESS while healthy, else the sticky code.
  CUresult sticky() const noexcept { return sticky_.load(std::memory_order_acquire); }

private:
  CUresult default_code(bool sticky) const;
  void make_sticky(CUresult code, const char *api, const char *why);
  // Returns a failure planned via FAKECUDA_TRIGGER_FILE, if any.
  FaultPlan check_trigger_file();

  const FaultConfig config_;
  std::atomic<std::uint64_t> copies_{0};
  std::atomic<std::uint64_t> calls_[std::size(kFailableCalls)] = {};
  std::atomic<CUresult> sticky_{CUDA_SUCCESS};
  std::mutex trigger_mu_; // one copy at a time consumes a one-shot trigger
  bool warned_bad_trigger_ = false;
};

} // namespace fakecuda
