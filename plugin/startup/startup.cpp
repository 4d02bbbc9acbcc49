#include "startup/startup.hpp"

#include "byte_size.hpp"
#include "config/sizing.hpp"
#include "cuda/gpu_inventory.hpp"
#include "cuda/preflight.hpp"
#include "logging.hpp"

#include <exception>
#include <unistd.h>

namespace vram {

Startup::Failure Startup::before_fork()
{
  if (config_.swap_safety != SwapSafety::off) {
    io_flusher_ = enable_io_flusher();
    if (!io_flusher_.active && config_.swap_safety == SwapSafety::require)
      return "swap-safety=require: " + io_flusher_.detail;
  }

  const Inventory inv = probe_gpus_in_child(
    config_.init_timeout_s, [&](const GpuInfo &g) { return matches(g, config_.device); },
    config_.init_timeout_s + 60);
  if (!inv.error.empty()) return inv.error;
  std::string error;
  const GpuInfo *gpu = select_gpu(inv, config_.device, error);
  if (!gpu) return error;
  try {
    const SizePlan plan =
      plan_size(config_, GpuMemory{gpu->total, gpu->free.value_or(0), gpu->display}, gpu->label());
    log_debug("size plan on " + gpu->label() + ": first " + format_byte_size(plan.first) +
              ", minimum " + format_byte_size(plan.minimum));
  } catch (const SizingError &e) {
    return std::string(e.what());
  }
  layout_.device_index = gpu->index;
  layout_.gpu_label = gpu->label();
  layout_.display = gpu->display;
  layout_.lanes = config_.lanes ? config_.lanes : default_lanes(sysconf(_SC_NPROCESSORS_ONLN));
  return std::nullopt;
}

Startup::Failure Startup::after_fork()
{
  // Before CUDA is initialised: see lock_all_memory().
  ProtectionResult mlock{false, "swap-safety=off"};
  if (config_.swap_safety != SwapSafety::off) {
    mlock = lock_all_memory();
    if (!mlock.warning.empty()) log_warning(mlock.warning);
    if (!mlock.active && config_.swap_safety == SwapSafety::require)
      return "swap-safety=require: " + mlock.detail;
  }

  std::string error;
  driver_ = CudaDriver::load(error);
  if (!driver_) return error;
  if (const CUresult r = driver_->init(config_.init_timeout_s); r != CUDA_SUCCESS)
    return "the NVIDIA driver failed to initialise (cuInit: " + driver_->describe(r) + ")";
  // Before any VRAM is taken: a requests file that cannot be made stops
  // the start with nothing to undo.
  if (!config_.requests_file.empty()) {
    try {
      board_ = std::make_unique<RequestBoard>(config_.requests_file);
    } catch (const std::exception &e) {
      return std::string(e.what());
    }
    RequestBoard::install(board_.get());
  }
  try {
    store_ = VramStore::open(*driver_, config_, layout_);
  } catch (const StartupError &e) {
    return std::string(e.what());
  }
  log_serving();
  if (board_) board_->set_lanes(static_cast<unsigned>(store_->lanes()));
  if (store_->allocation() == Allocation::lazy || !config_.status_file.empty())
    reporter_ = std::make_unique<StatusReporter>(
      *store_, StatusReporter::Settings{layout_.gpu_label, config_.status_file});
  log_protections(mlock);
  return std::nullopt;
}

void Startup::log_serving() const
{
  const VramStore &store = *store_;
  log_info(
    strformat("serving %s (%llu bytes) of %s on %s; %zu I/O lanes, %s pieces",
              format_byte_size(store.size()).c_str(), static_cast<unsigned long long>(store.size()),
              store.compressed() ? "compressed pages in VRAM" : "VRAM", layout_.gpu_label.c_str(),
              store.lanes(), format_byte_size(store.piece_size()).c_str()));
  if (store.compressed()) {
    log_info("compress=" + compress::format_codec(store.codec()) +
             ": each 4 KiB page is kept compressed in VRAM (whole when it does not compress, "
             "none when same-filled); the " +
             format_byte_size(store.size()) + " export may hold up to " +
             format_byte_size(store.vram_limit()) + " of VRAM, in chunks of " +
             format_byte_size(store.lazy_chunk()) + " taken as pages need them; its page table " +
             "and slot maps take " + format_byte_size(store.compress_host_bytes()) + " of RAM");
    return;
  }
  if (store.allocation() == Allocation::lazy)
    log_info("allocation=lazy: VRAM is held in chunks of " + format_byte_size(store.lazy_chunk()) +
             " while they hold data" +
             (store.spare_target()
                ? strformat(", plus %zu spare chunk%s created ahead of need (lazy-spare=)",
                            store.spare_target(), store.spare_target() == 1 ? "" : "s")
                : std::string("; none is held yet")));
}

// Which swap protections are in force, and what a missing one risks.
void Startup::log_protections(const ProtectionResult &mlock) const
{
  if (config_.swap_safety == SwapSafety::off) {
    log_warning("swap protections are off (swap-safety=off): do not use this export as swap");
    return;
  }
  const bool flusher = io_flusher_active();
  std::string summary = std::string("swap protections: io-flusher ") + (flusher ? "on" : "OFF") +
                        ", mlockall " +
                        (mlock.active ? "on (" + locked_memory() + " locked)" : "OFF");
  if (flusher && mlock.active) {
    log_info(summary);
    return;
  }
  if (!flusher) summary += "; " + io_flusher_.detail;
  if (!mlock.active) summary += "; " + mlock.detail;
  log_warning(summary + ". As swap, this export may deadlock at zero free RAM");
}

void Startup::stop()
{
  reporter_.reset();
  store_.reset();
  board_.reset(); // no request runs any more
}

} // namespace vram
