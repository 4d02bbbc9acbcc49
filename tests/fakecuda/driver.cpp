// Driver lifecycle (cuInit / fakecuda_reset) and primary contexts.
#include "driver.hpp"

#include "trace.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <thread>

namespace fakecuda {
namespace {

// Serialises cuInit and fakecuda_reset. Constant-initialised: no global
// constructor runs when the library is loaded.
constinit std::mutex g_lifecycle_mu;
constinit std::uint64_t g_next_generation = 1; // guarded by g_lifecycle_mu

// The calling thread's current context. Tagged with the generation of the
// Driver that handed it out, so a context left current across
// fakecuda_reset() is seen as "none" rather than as a dangling pointer.
struct CurrentContext {
  PrimaryContext *ctx = nullptr;
  std::uint64_t generation = 0;
};
constinit thread_local CurrentContext t_current;

std::vector<std::uint64_t> configured_free(const Config &cfg)
{
  std::vector<std::uint64_t> free;
  for (const GpuConfig &g : cfg.gpus)
    free.push_back(g.free);
  return free;
}

} // namespace

constinit std::atomic<Driver *> Driver::current_{nullptr};

CUresult Driver::init(unsigned flags)
{
  std::lock_guard lk(g_lifecycle_mu);
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (Driver *d = instance()) return d->faults().sticky(); // already up: no-op
  try {
    set_trace_enabled(log_enabled_from_env());
    if (CUresult e = init_error_from_env(); e != CUDA_SUCCESS) {
      std::fprintf(stderr, "fakecuda: cuInit fails with %d as FAKECUDA_INIT_ERROR asks\n",
                   static_cast<int>(e));
      return e;
    }
    Config cfg = load_config_from_env();
    if (cfg.gpus.empty()) return CUDA_ERROR_NO_DEVICE;
    auto d = std::make_unique<Driver>(std::move(cfg), g_next_generation++);
    current_.store(d.release(), std::memory_order_release);
    return CUDA_SUCCESS;
  } catch (const ConfigError &e) {
    std::fprintf(stderr, "fakecuda: cuInit: %s\n", e.what());
    return CUDA_ERROR_INVALID_VALUE;
  }
}

void Driver::reset() noexcept
{
  std::lock_guard lk(g_lifecycle_mu);
  delete current_.exchange(nullptr, std::memory_order_acq_rel);
  set_trace_enabled(false);
}

Driver::Driver(Config config, std::uint64_t generation)
  : cfg_(std::move(config)), generation_(generation), faults_(cfg_.faults),
    map_file_(cfg_.map_file), timeslice_file_(cfg_.timeslice_file),
    budget_(cfg_.free_file, configured_free(cfg_))
{
  // GPU i's region follows the regions of GPUs 0..i-1 in the backing file.
  std::uint64_t total = 0;
  for (const GpuConfig &g : cfg_.gpus)
    total += g.total; // each <= 1T, at most 64: no overflow
  backing_ = std::make_unique<Backing>(cfg_.memory_file, total);
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < cfg_.gpus.size(); ++i) {
    devices_.push_back(std::make_unique<Device>(static_cast<int>(i), cfg_.gpus[i], offset,
                                                backing_->data() + offset));
    offset += cfg_.gpus[i].total;
  }
}

Driver::~Driver()
{
  // Workers first: they use the mapping, the fault injector and maybe the
  // pinned buffers freed below.
  for (auto &[h, s] : streams_)
    s->shutdown();
  streams_.clear();
  events_.clear();
  for (auto &[p, block] : host_blocks_)
    std::free(p);
  host_blocks_.clear();
  for (auto &d : devices_)
    free_context_memory(d->ctx);
}

const Device *Driver::device(CUdevice ordinal) const
{
  if (ordinal < 0 || ordinal >= device_count()) return nullptr;
  return devices_[static_cast<std::size_t>(ordinal)].get();
}

CUresult Driver::current_device(int &dev) const
{
  const CurrentContext cur = t_current;
  if (cur.ctx == nullptr || cur.generation != generation_ ||
      cur.ctx->refcount.load(std::memory_order_acquire) <= 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  dev = cur.ctx->device;
  return CUDA_SUCCESS;
}

void Driver::free_context_memory(PrimaryContext &ctx)
{
  if (ctx.host_memory != nullptr) ::munmap(ctx.host_memory, ctx.host_bytes);
  ctx.host_memory = nullptr;
  ctx.host_bytes = 0;
}

CUresult Driver::ctx_retain(CUcontext *pctx, CUdevice dev)
{
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (device(dev) == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard lk(ctx_mu_);
  PrimaryContext &ctx = devices_[static_cast<std::size_t>(dev)]->ctx;
  if (ctx.refcount.load(std::memory_order_acquire) == 0) {
    // Creating the context: the real driver takes about 110 ms on an H200
    // and allocates host memory the context keeps until it is destroyed.
    // (Mapped, not malloc()ed: freed memory must leave the process, as
    // the driver's does, also under ASan's allocator.)
    if (cfg_.ctx_host_bytes != 0) {
      void *p = ::mmap(nullptr, cfg_.ctx_host_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
      std::memset(p, 0x5a, cfg_.ctx_host_bytes); // resident, as the driver's would be
      ctx.host_memory = p;
      ctx.host_bytes = cfg_.ctx_host_bytes;
    }
    if (cfg_.ctx_create_us != 0)
      std::this_thread::sleep_for(std::chrono::microseconds(cfg_.ctx_create_us));
    ++ctx.creations;
  }
  ctx.refcount.fetch_add(1, std::memory_order_acq_rel);
  *pctx = reinterpret_cast<CUcontext>(&ctx);
  return CUDA_SUCCESS;
}

CUresult Driver::ctx_release(CUdevice dev)
{
  if (device(dev) == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard lk(ctx_mu_);
  PrimaryContext &ctx = devices_[static_cast<std::size_t>(dev)]->ctx;
  if (ctx.refcount.load(std::memory_order_acquire) <= 0) {
    std::fprintf(stderr, "fakecuda: cuDevicePrimaryCtxRelease(%d) without a matching retain\n",
                 dev);
    return CUDA_ERROR_INVALID_CONTEXT;
  }
  if (ctx.refcount.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    destroy_context_resources(dev);
    free_context_memory(ctx);
  }
  return CUDA_SUCCESS;
}

CUresult Driver::ctx_set_flags(CUdevice dev, unsigned flags)
{
  if (device(dev) == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  if ((flags & ~static_cast<unsigned>(CU_CTX_FLAGS_MASK)) != 0) return CUDA_ERROR_INVALID_VALUE;
  devices_[static_cast<std::size_t>(dev)]->ctx.flags.store(flags, std::memory_order_relaxed);
  return CUDA_SUCCESS;
}

CUresult Driver::ctx_get_state(CUdevice dev, unsigned *flags, int *active)
{
  if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (device(dev) == nullptr) return CUDA_ERROR_INVALID_DEVICE;
  const PrimaryContext &ctx = devices_[static_cast<std::size_t>(dev)]->ctx;
  *flags = ctx.flags.load(std::memory_order_relaxed);
  *active = ctx.refcount.load(std::memory_order_acquire) > 0 ? 1 : 0;
  return CUDA_SUCCESS;
}

CUresult Driver::ctx_set_current(CUcontext handle)
{
  if (handle == nullptr) {
    t_current = {};
    return CUDA_SUCCESS;
  }
  for (auto &d : devices_) {
    if (reinterpret_cast<CUcontext>(&d->ctx) != handle) continue;
    // Making a released (destroyed) primary context current is a bug in
    // the caller; the real driver rejects the dead handle too.
    if (d->ctx.refcount.load(std::memory_order_acquire) <= 0) return CUDA_ERROR_INVALID_CONTEXT;
    t_current = {&d->ctx, generation_};
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_CONTEXT;
}

CUresult Driver::ctx_get_current(CUcontext *pctx)
{
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const CurrentContext cur = t_current;
  *pctx = cur.generation == generation_ ? reinterpret_cast<CUcontext>(cur.ctx) : nullptr;
  return CUDA_SUCCESS;
}

CUresult Driver::ctx_synchronize()
{
  int dev = 0;
  if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
  drain_streams(dev);
  return CUDA_SUCCESS;
}

void Driver::destroy_context_resources(int dev)
{
  std::vector<std::shared_ptr<Stream>> streams;
  std::vector<void *> host;
  std::size_t events = 0;
  std::size_t registrations = 0;
  {
    std::lock_guard lk(reg_mu_);
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (it->second->device() != dev) {
        ++it;
        continue;
      }
      streams.push_back(std::move(it->second));
      it = streams_.erase(it);
    }
    events = std::erase_if(events_, [dev](const auto &e) { return e.second->device() == dev; });
    std::erase_if(host_blocks_, [&](const auto &b) {
      if (b.second.device != dev) return false;
      host.push_back(b.first);
      return true;
    });
    registrations =
      std::erase_if(host_regs_, [dev](const auto &r) { return r.second.device == dev; });
  }
  for (auto &s : streams)
    s->shutdown();
  for (void *p : host)
    std::free(p);

  Device &d = *devices_[static_cast<std::size_t>(dev)];
  std::size_t allocations = 0;
  {
    std::unique_lock lk(d.mem_mu);
    // cuMemAlloc allocations only: cuMemCreate memory is not a context
    // object (it goes with cuMemRelease, or fakecuda_reset).
    std::vector<std::uint64_t> offsets;
    for (const auto &[offset, block] : d.alloc.live())
      if (block.owner == BlockOwner::MemAlloc) offsets.push_back(offset);
    for (std::uint64_t offset : offsets) {
      d.alloc.release(offset);
      map_file_.free(dev, d.ptr_base() + offset);
    }
    allocations = offsets.size();
  }
  // The real driver frees all of this silently; saying so helps spot
  // resources the code under test forgot to release.
  if (allocations + streams.size() + events + host.size() + registrations != 0)
    std::fprintf(stderr,
                 "fakecuda: primary context of GPU %d destroyed while %zu allocation(s), "
                 "%zu stream(s), %zu event(s), %zu pinned buffer(s), %zu host registration(s) "
                 "were live; freed them\n",
                 dev, allocations, streams.size(), events, host.size(), registrations);
}

} // namespace fakecuda
