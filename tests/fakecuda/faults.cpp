#include "faults.hpp"

#include "errors.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace fakecuda {

CUresult FaultInjector::default_code(bool sticky) const
{
  if (config_.fail_code) return *config_.fail_code;
  // Transient: something a caller can plausibly retry. Sticky: what a real
  // GPU reports after a fatal fault corrupts the context.
  return sticky ? CUDA_ERROR_ILLEGAL_ADDRESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult FaultInjector::before_call(const char *name)
{
  for (std::size_t i = 0; i < std::size(kFailableCalls); ++i) {
    if (std::strcmp(name, kFailableCalls[i]) != 0) continue;
    const std::uint64_t n = calls_[i].fetch_add(1, std::memory_order_relaxed) + 1;
    for (const auto &[call, number] : config_.fail_calls) {
      if (call == name && number == n) {
        const CUresult code = default_code(false);
        std::fprintf(stderr, "fakecuda: injected failure of %s call %llu (code %d)\n", name,
                     static_cast<unsigned long long>(n), static_cast<int>(code));
        return code;
      }
    }
    return CUDA_SUCCESS;
  }
  return CUDA_SUCCESS;
}

FaultPlan FaultInjector::plan_copy()
{
  FaultPlan plan;
  plan.number = copies_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (config_.fail_copy != 0 && plan.number == config_.fail_copy) {
    plan.sticky = config_.fail_sticky;
    plan.code = default_code(plan.sticky);
  } else if (config_.fail_every != 0 && plan.number % config_.fail_every == 0) {
    plan.code = default_code(false); // FAIL_EVERY is always transient
  }
  return plan;
}

FaultPlan FaultInjector::check_trigger_file()
{
  FaultPlan plan;
  if (config_.trigger_file.empty()) return plan;
  struct stat st {};
  if (::stat(config_.trigger_file.c_str(), &st) != 0) return plan; // the common, cheap case

  std::lock_guard lk(trigger_mu_);
  std::ifstream in(config_.trigger_file);
  std::string mode, code_text;
  if (!(in >> mode)) return plan; // gone, or created but not written yet: try next copy
  in >> code_text;
  if (mode != "sticky" && mode != "transient") {
    if (!warned_bad_trigger_)
      std::fprintf(stderr,
                   "fakecuda: FAKECUDA_TRIGGER_FILE=%s: unknown mode '%s' "
                   "(expected sticky or transient); ignored\n",
                   config_.trigger_file.c_str(), mode.c_str());
    warned_bad_trigger_ = true;
    return plan;
  }
  plan.sticky = mode == "sticky";
  plan.code = default_code(plan.sticky);
  if (!code_text.empty()) {
    if (auto code = parse_error_code(code_text); code && *code != CUDA_SUCCESS) plan.code = *code;
    else
      std::fprintf(stderr, "fakecuda: FAKECUDA_TRIGGER_FILE: bad error code '%s'; using %s\n",
                   code_text.c_str(), error_name_for_message(plan.code));
  }
  // A transient trigger fires once. Removing it under trigger_mu_ means
  // exactly one of several concurrent copies gets it.
  if (!plan.sticky && ::unlink(config_.trigger_file.c_str()) != 0 && errno != ENOENT)
    std::fprintf(stderr, "fakecuda: cannot remove trigger file %s\n", config_.trigger_file.c_str());
  return plan;
}

CUresult FaultInjector::before_copy(const FaultPlan &counted, const char *api)
{
  if (CUresult s = sticky(); s != CUDA_SUCCESS) return s;
  FaultPlan plan = check_trigger_file();
  const char *why = "FAKECUDA_TRIGGER_FILE";
  if (plan.code == CUDA_SUCCESS) {
    plan = counted;
    why = "FAKECUDA_FAIL_COPY/FAIL_EVERY";
  }
  if (plan.code == CUDA_SUCCESS) return CUDA_SUCCESS;
  if (plan.sticky) {
    make_sticky(plan.code, api, why);
    return sticky(); // the first sticky code wins if two race
  }
  std::fprintf(stderr, "fakecuda: injected transient %s into %s (copy #%llu, %s)\n",
               error_name_for_message(plan.code), api,
               static_cast<unsigned long long>(counted.number), why);
  return plan.code;
}

void FaultInjector::make_sticky(CUresult code, const char *api, const char *why)
{
  CUresult expected = CUDA_SUCCESS;
  if (sticky_.compare_exchange_strong(expected, code, std::memory_order_acq_rel))
    std::fprintf(stderr,
                 "fakecuda: injected sticky %s into %s (%s); "
                 "every further device call fails with it\n",
                 error_name_for_message(code), api, why);
}

} // namespace fakecuda
