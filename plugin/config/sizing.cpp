#include "config/sizing.hpp"

#include "byte_size.hpp"

#include <algorithm>

namespace vram {

uint64_t default_reserve(bool display)
{
  // A desktop compositor and the applications on it grow into VRAM; an
  // offload-only GPU needs room only for the driver and short jobs.
  return display ? 3 * GiB : 1 * GiB;
}

namespace {

// compress=: nothing is allocated at start, so nothing backs off; size=
// is the logical size, and the VRAM is what the GPU has, less reserve=.
SizePlan plan_compressed(const Config &config, const GpuMemory &gpu, const std::string &gpu_name,
                         SizePlan plan)
{
  const std::string free_text = gpu_name + " has " + format_byte_size(gpu.free) +
                                " of VRAM free (of " + format_byte_size(gpu.total) + ")";
  switch (config.size.kind) {
  case SizeRequest::Kind::automatic:
  case SizeRequest::Kind::max: {
    const uint64_t keep = config.size.kind == SizeRequest::Kind::automatic ? plan.reserve : 0;
    if (gpu.free <= keep + size_granularity)
      throw SizingError(free_text +
                        (keep ? "; size=auto keeps reserve=" + format_byte_size(keep) +
                                  " free, which leaves nothing to serve. Free some VRAM, "
                                  "lower reserve=, or give an explicit size="
                              : std::string(", nothing to serve. Free some VRAM, or give an "
                                            "explicit size=")));
    plan.vram = round_down(gpu.free - keep, size_granularity);
    plan.first = plan.vram * compress_auto_ratio;
    const uint64_t minimum = config.min_size.value_or(256 * MiB);
    if (plan.vram < minimum)
      throw SizingError(free_text + "; that leaves " + format_byte_size(plan.vram) +
                        " of VRAM to serve from, below min-size=" + format_byte_size(minimum) +
                        ". Free some VRAM, lower reserve=, or lower min-size=");
    break;
  }
  case SizeRequest::Kind::bytes: {
    const uint64_t keep = config.reserve.value_or(0);
    if (gpu.total <= keep + size_granularity)
      throw SizingError(gpu_name + " has " + format_byte_size(gpu.total) +
                        " of VRAM in all, and reserve=" + format_byte_size(keep) +
                        " keeps it all free. Lower reserve=");
    // Incompressible pages may need a little more VRAM than their size.
    plan.first = config.size.bytes;
    plan.vram = std::min(round_down(gpu.total - keep, size_granularity),
                         round_up(config.size.bytes + compress_run_slack, size_granularity));
    break;
  }
  }
  plan.minimum = plan.first;
  return plan;
}

} // namespace

SizePlan plan_size(const Config &config, const GpuMemory &gpu, const std::string &gpu_name)
{
  SizePlan plan;
  plan.step = config.step;
  plan.reserve = config.reserve.value_or(default_reserve(gpu.display));
  if (config.compressed()) return plan_compressed(config, gpu, gpu_name, plan);
  const std::string free_text = gpu_name + " has " + format_byte_size(gpu.free) +
                                " of VRAM free (of " + format_byte_size(gpu.total) + ")";

  switch (config.size.kind) {
  case SizeRequest::Kind::automatic:
    if (gpu.free <= plan.reserve + size_granularity)
      throw SizingError(free_text + "; size=auto keeps reserve=" + format_byte_size(plan.reserve) +
                        " free, which leaves nothing to serve. Free some VRAM, "
                        "lower reserve=, or give an explicit size=");
    plan.first = round_down(gpu.free - plan.reserve, size_granularity);
    plan.minimum = config.min_size.value_or(256 * MiB);
    break;
  case SizeRequest::Kind::max:
    plan.first = round_down(gpu.free, size_granularity);
    plan.minimum = config.min_size.value_or(256 * MiB);
    break;
  case SizeRequest::Kind::bytes:
    // allocation=lazy keeps an explicit reserve= free as it maps chunks:
    // an export that does not fit beside it on the whole GPU could never
    // be filled, and would fail writes with ENOSPC part way.
    if (config.allocation == Allocation::lazy && config.reserve &&
        config.size.bytes > (gpu.total > *config.reserve ? gpu.total - *config.reserve : 0))
      throw SizingError(gpu_name + " has " + format_byte_size(gpu.total) +
                        " of VRAM in all; size=" + format_byte_size(config.size.bytes) +
                        " with reserve=" + format_byte_size(*config.reserve) +
                        " kept free could never be filled (allocation=lazy maps VRAM only "
                        "while reserve= stays free). Lower size= or reserve=");
    plan.minimum = config.min_size.value_or(config.size.bytes);
    plan.first = config.size.bytes;
    if (plan.first > gpu.free) {
      if (plan.minimum > gpu.free)
        throw SizingError(
          free_text + ", less than size=" + format_byte_size(config.size.bytes) +
          (config.min_size ? " and min-size=" + format_byte_size(plan.minimum) : "") +
          ". Ask for less (size=auto takes what is free minus reserve=), "
          "set min-size= to accept a smaller export, or free VRAM "
          "(another nbdkit-vram instance may hold it: see nvidia-smi)");
      plan.first = round_down(gpu.free, size_granularity);
    }
    break;
  }

  if (plan.first < plan.minimum || plan.first == 0)
    throw SizingError(free_text + "; that leaves " + format_byte_size(plan.first) +
                      " to serve, below min-size=" + format_byte_size(plan.minimum) +
                      ". Free some VRAM, lower reserve=, or lower min-size=");
  return plan;
}

std::vector<uint64_t> backoff_sizes(const SizePlan &plan)
{
  std::vector<uint64_t> sizes;
  uint64_t s = plan.first;
  while (s > plan.minimum) {
    sizes.push_back(s);
    if (s - plan.minimum <= plan.step) break;
    s -= plan.step;
  }
  sizes.push_back(plan.minimum);
  return sizes;
}

} // namespace vram
