#include "store/vram_store.hpp"

#include "byte_size.hpp"
#include "config/sizing.hpp"
#include "cuda/cuda_error.hpp"
#include "logging.hpp"
#include "safety/swap_safety.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

namespace vram {
namespace {

std::string failed_call(const CudaDriver &driver, const char *what, CUresult r)
{
  return std::string(what) + " failed: " + driver.describe(r);
}

// Tells the threads' bind_context() that the context changed: a new value
// per store and per wake.
uint64_t next_generation()
{
  static std::atomic<uint64_t> generations{0};
  return ++generations;
}

// nbdkit's largest read or write (MAX_REQUEST_SIZE in its server): what a
// compressed write may have to hold in new pages before it commits them.
constexpr uint64_t max_request_bytes = 64 * MiB;

// compress=: empty chunks the slot allocator keeps mapped.  None: an
// empty chunk goes back at once (VRAM held follows what is stored), and
// lazy-spare= keeps VRAM ready for the next one, as with allocation=lazy.
constexpr uint32_t compressed_spare_chunks = 0;

} // namespace

std::unique_ptr<VramStore> VramStore::open(const CudaDriver &driver, const Config &config,
                                           const Layout &layout)
{
  const CudaApi &cu = driver.api();
  CUdevice dev = 0;
  CUresult r = cu.DeviceGet(&dev, static_cast<int>(layout.device_index));
  if (r != CUDA_SUCCESS)
    throw StartupError(layout.gpu_label + ": " + failed_call(driver, "cuDeviceGet", r));

  // Before the context exists: the flags of a live primary context can no
  // longer change.
  if (config.wait != WaitMode::automatic) {
    const unsigned flags = config.wait == WaitMode::spin    ? CU_CTX_SCHED_SPIN
                           : config.wait == WaitMode::yield ? CU_CTX_SCHED_YIELD
                                                            : CU_CTX_SCHED_BLOCKING_SYNC;
    if ((r = cu.DevicePrimaryCtxSetFlags(dev, flags)) != CUDA_SUCCESS)
      throw StartupError(layout.gpu_label + ": cannot set wait=" +
                         std::string(to_string(config.wait)) + ": " + driver.describe(r));
  }

  CUcontext ctx = nullptr;
  if ((r = cu.DevicePrimaryCtxRetain(&ctx, dev)) != CUDA_SUCCESS)
    throw StartupError(layout.gpu_label + ": cannot create a CUDA context (" + driver.describe(r) +
                       "); is the GPU in exclusive-process compute mode and in use?");
  PrimaryContext context(&cu, dev, ctx);
  if ((r = cu.CtxSetCurrent(ctx)) != CUDA_SUCCESS)
    throw StartupError(failed_call(driver, "cuCtxSetCurrent", r));

  size_t free = 0, total = 0;
  if ((r = cu.MemGetInfo(&free, &total)) != CUDA_SUCCESS)
    throw StartupError(layout.gpu_label + ": " + failed_call(driver, "cuMemGetInfo", r));

  GpuMemory mem{total, free, layout.display};
  SizePlan plan;
  try {
    plan = plan_size(config, mem, layout.gpu_label);
  } catch (const SizingError &e) {
    throw StartupError(e.what());
  }

  std::unique_ptr<LazyVram> lazy;
  if (config.allocation == Allocation::lazy) {
    // Address space only: the size is not backed off, VRAM comes later.
    // The VRAM that size=auto or an explicit reserve= leaves to other
    // programs stays free as chunks are mapped.  Compressed, the range is
    // the VRAM the pages may take, not the logical size.
    LazyVram::Settings settings;
    settings.size = config.compressed() ? plan.vram : plan.first;
    settings.chunk = config.lazy_chunk;
    if (config.lazy_spare) settings.spares = *config.lazy_spare;
    settings.context = ctx;
    if (config.reserve) settings.headroom = *config.reserve;
    else if (config.size.kind == SizeRequest::Kind::automatic) settings.headroom = plan.reserve;
    std::string why_not;
    try {
      lazy = LazyVram::open(driver, dev, settings, why_not);
    } catch (const std::runtime_error &e) {
      throw StartupError(layout.gpu_label + ": allocation=lazy: " + e.what());
    }
    if (!lazy && config.idle_release)
      throw StartupError(layout.gpu_label +
                         ": idle-release= keeps the VRAM through a rest only when it is mapped "
                         "with CUDA virtual memory management, and " +
                         why_not + ". Use idle-release=off, or update the NVIDIA driver");
    if (!lazy && config.compressed())
      throw StartupError(layout.gpu_label +
                         ": compress=" + compress::format_codec(config.compress) +
                         " needs VRAM mapped as pages need it, and " + why_not +
                         ". Use compress=none, or update the NVIDIA driver");
    if (!lazy)
      log_warning(layout.gpu_label + ": allocation=lazy is not available (" + why_not +
                  "); falling back to allocation=eager");
  }

  DeviceMemory memory;
  uint64_t size = lazy ? plan.first : 0;
  for (uint64_t attempt : lazy ? std::vector<uint64_t>{} : backoff_sizes(plan)) {
    CUdeviceptr ptr = 0;
    r = cu.MemAlloc(&ptr, attempt);
    if (r == CUDA_SUCCESS) {
      memory = DeviceMemory(&cu, ptr);
      size = attempt;
      break;
    }
    if (r != CUDA_ERROR_OUT_OF_MEMORY)
      throw StartupError(layout.gpu_label + ": allocating " + format_byte_size(attempt) +
                         " of VRAM failed: " + driver.describe(r));
    log_debug("allocating " + format_byte_size(attempt) + " on " + layout.gpu_label +
              " failed (out of memory), backing off by " + format_byte_size(plan.step));
  }
  if (!memory && !lazy)
    throw StartupError(layout.gpu_label + " could not allocate even min-size=" +
                       format_byte_size(plan.minimum) + " of VRAM (" + format_byte_size(free) +
                       " reported free). Free some VRAM, "
                       "or lower min-size= or size=");

  std::unique_ptr<VramStore> store;
  try {
    store.reset(new VramStore(driver, std::move(context), std::move(memory), std::move(lazy), size,
                              config, layout));
  } catch (const std::runtime_error &e) {
    throw StartupError(layout.gpu_label + ": " + e.what());
  }

  // Privacy: VRAM may still hold another process's data.  (Lazy chunks
  // are zeroed as they are mapped.)
  if (store->memory_ &&
      (r = store->pool_.lane(0).zero_bulk(store->memory_.get(), size)) != CUDA_SUCCESS)
    throw StartupError(layout.gpu_label +
                       ": zeroing the new VRAM allocation failed: " + driver.describe(r));
  return store;
}

VramStore::VramStore(const CudaDriver &driver, PrimaryContext context, DeviceMemory memory,
                     std::unique_ptr<LazyVram> lazy, uint64_t size, const Config &config,
                     const Layout &layout)
  : driver_(driver), cu_(driver.api()), device_(context.device()), context_(std::move(context)),
    memory_(std::move(memory)), lazy_(std::move(lazy)),
    base_(lazy_ ? lazy_->base() : memory_.get()), size_(size), piece_size_(config.piece_size),
    gpu_label_(layout.gpu_label), pool_(driver, layout.lanes, config.piece_size, config.share_gpu),
    codec_(config.compress)
{
  generation_ = next_generation();
  // idle-release='s thread starts last, with everything it may rest built.
  if (!config.compressed()) {
    if (config.idle_release) start_idle_release(*config.idle_release);
    return;
  }
  chunks_ = std::make_unique<VramChunks>(*lazy_);
  compress::CompressedExport::Settings settings;
  settings.size = size_;
  settings.chunk_bytes = lazy_->chunk_size();
  settings.chunks = static_cast<uint32_t>(lazy_->chunks());
  settings.spare_chunks = compressed_spare_chunks;
  settings.max_request = max_request_bytes;
  compressed_ = std::make_unique<compress::CompressedExport>(settings, *chunks_);
  chunk_lanes_.resize(pool_.size());
  for (size_t i = 0; i < pool_.size(); ++i) {
    workers_.push_back(std::make_unique<compress::Worker>(codec_, max_request_bytes));
    chunk_lanes_[i].lane = &pool_.lane(i);
    workers_.back()->lane = &chunk_lanes_[i];
  }
  Compactor::Hooks hooks;
  hooks.thread_start = [this] { prefault_stack(io_stack_prefault_bytes); };
  hooks.wanted = [this] { return compaction_wanted(); };
  hooks.step = [this] { return compact_step(); };
  compactor_ = std::make_unique<Compactor>(std::move(hooks), Compactor::Settings{});
  if (config.idle_release) start_idle_release(*config.idle_release);
}

VramStore::~VramStore()
{
  compactor_.reset();
  if (rest_) {
    // No more rests or wakes but ours: the VRAM is zeroed through the GPU.
    pressure_watch_.reset();
    rest_->stop();
    const bool resting = rest_->stats().state == IdleRest::State::resting;
    rest_.reset();
    if (resting && !failed())
      if (const std::string why = wake_up(); !why.empty()) {
        log_warning(gpu_label_ +
                    ": VRAM not zeroed at shutdown: could not wake the GPU from "
                    "its rest (" +
                    why + ")");
        return;
      }
  }
  // Swap holds secrets: leave nothing behind for the next owner of this
  // memory.  After a sticky error this cannot work; the driver then tears
  // the context down with the process.
  if (failed()) {
    log_warning(gpu_label_ + ": VRAM not zeroed at shutdown (the GPU failed earlier)");
    return;
  }
  CUresult r = bind_context();
  if (compressed_) {
    // Chunks of compressed pages, and the allocator's empty ones.
    const uint64_t chunk = lazy_->chunk_size();
    for (size_t c = 0; c < lazy_->chunks(); ++c)
      if (lazy_->holds(c) && r == CUDA_SUCCESS) r = pool_.lane(0).zero(base_ + c * chunk, chunk);
  } else if (lazy_) {
    const uint64_t chunk = lazy_->chunk_size();
    lazy_->residency().release_all([&](size_t c) {
      if (r == CUDA_SUCCESS) r = pool_.lane(0).zero(base_ + c * chunk, chunk);
      lazy_->drop(c);
    });
  } else if (r == CUDA_SUCCESS) {
    r = pool_.lane(0).zero_bulk(base_, size_);
  }
  if (r != CUDA_SUCCESS)
    log_warning(gpu_label_ + ": could not zero VRAM before releasing it: " + driver_.describe(r));
}

// Every nbdkit worker thread must have the context current before it
// issues CUDA calls; remember per thread which context that was.
CUresult VramStore::bind_context()
{
  // Keyed by store, not by context handle: a primary context released and
  // retained again may come back at the same address.
  thread_local uint64_t bound = 0;
  if (bound == generation_) return CUDA_SUCCESS;
  if (const CUresult r = cu_.CtxSetCurrent(context_.get()); r != CUDA_SUCCESS) return r;
  // This thread's first request: fault in its stack now, while memory is
  // free (see prefault_stack).
  thread_local bool stack_ready = false;
  if (!stack_ready) {
    prefault_stack(io_stack_prefault_bytes);
    stack_ready = true;
  }
  bound = generation_;
  return CUDA_SUCCESS;
}

// Every request after a sticky error fails; a swap device sends thousands a
// second, so the log gets one line per 10 s with the count held back.
IoStatus VramStore::failed_status()
{
  const auto held_back = out_of_service_log_.admit();
  if (!held_back) return {EIO, {}, true};
  return {EIO, gpu_label_ + " is out of service after an earlier GPU error (" + failure_reason_ +
                 "); restart nbdkit to serve again" + LogThrottle::suppressed_note(*held_back)};
}

void VramStore::enter_failed_state(const std::string &why)
{
  std::call_once(failure_logged_, [&] {
    failure_reason_ = why;
    failed_.store(true, std::memory_order_release);
    log_error(gpu_label_ + ": " + why +
              ". The GPU context is unusable; every further request fails with EIO. "
              "Data in this export is lost: processes with pages swapped here will be "
              "killed when they touch them");
  });
}

IoStatus VramStore::check(const char *op, uint64_t count, uint64_t offset)
{
  if (failed()) return failed_status();
  if (offset > size_ || count > size_ - offset)
    return {EIO, strformat("%s of %llu bytes at offset %llu is past the end of the export "
                           "(%llu bytes)",
                           op, static_cast<unsigned long long>(count),
                           static_cast<unsigned long long>(offset),
                           static_cast<unsigned long long>(size_))};
  if (const CUresult r = bind_context(); r != CUDA_SUCCESS) {
    enter_failed_state("cannot make the CUDA context current: " + driver_.describe(r));
    return failed_status();
  }
  return {};
}

IoStatus VramStore::fail_request(const char *op, CUresult r, uint64_t count, uint64_t offset)
{
  const std::string what =
    strformat("%s of %llu bytes at offset %llu failed: ", op,
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(offset)) +
    driver_.describe(r);
  if (is_sticky(r)) {
    enter_failed_state(what);
    return failed_status();
  }
  return {EIO, gpu_label_ + ": " + what};
}

template <typename Fn> auto VramStore::with_worker(Fn fn)
{
  const auto lease = pool_.acquire();
  ChunkLane &lane = chunk_lanes_[lease.index()];
  lane.clear();
  return fn(*workers_[lease.index()], std::as_const(lane));
}

// idle-release=: every request passes the gate, which wakes a resting
// GPU first; without idle-release= there is no gate.
template <typename Fn>
IoStatus VramStore::gated(const char *op, uint64_t count, uint64_t offset, Fn fn)
{
  if (!rest_) return fn();
  if (failed()) return failed_status();
  if (const std::string why = rest_->enter(); !why.empty()) {
    const auto held_back = wake_log_.admit();
    if (!held_back) return {EIO, {}, true};
    return {EIO, strformat("%s of %llu bytes at offset %llu failed: ", op,
                           static_cast<unsigned long long>(count),
                           static_cast<unsigned long long>(offset)) +
                   gpu_label_ + " could not wake from its rest (idle-release=): " + why +
                   "; its VRAM is kept, and the next request tries again" +
                   LogThrottle::suppressed_note(*held_back)};
  }
  struct Leave {
    IdleRest &rest;
    ~Leave() { rest.leave(); }
  } leave{*rest_};
  return fn();
}

IoStatus VramStore::read(void *buf, uint64_t count, uint64_t offset)
{
  return gated("read", count, offset, [&] { return read_awake(buf, count, offset); });
}

IoStatus VramStore::write(const void *buf, uint64_t count, uint64_t offset)
{
  return gated("write", count, offset, [&] { return write_awake(buf, count, offset); });
}

IoStatus VramStore::zero(uint64_t count, uint64_t offset)
{
  return gated("zero", count, offset, [&] { return zero_awake(count, offset); });
}

IoStatus VramStore::read_awake(void *buf, uint64_t count, uint64_t offset)
{
  if (IoStatus s = check("read", count, offset); !s) return s;
  if (compressed_)
    return compressed_request("read", count, offset, [&](compress::Worker &w, std::string &m) {
      return compressed_->read(w, std::span(static_cast<std::byte *>(buf), count), offset, m);
    });
  if (lazy_) return read_lazy(static_cast<std::byte *>(buf), count, offset);
  const CUresult r = pool_.acquire()->read(static_cast<std::byte *>(buf), base_ + offset, count);
  if (r != CUDA_SUCCESS) return fail_request("read", r, count, offset);
  return {};
}

IoStatus VramStore::write_awake(const void *buf, uint64_t count, uint64_t offset)
{
  if (IoStatus s = check("write", count, offset); !s) return s;
  if (compressed_)
    return compressed_request("write", count, offset, [&](compress::Worker &w, std::string &m) {
      return compressed_->write(w, std::span(static_cast<const std::byte *>(buf), count), offset,
                                m);
    });
  if (lazy_) return write_lazy(static_cast<const std::byte *>(buf), count, offset);
  const CUresult r =
    pool_.acquire()->write(base_ + offset, static_cast<const std::byte *>(buf), count);
  if (r != CUDA_SUCCESS) return fail_request("write", r, count, offset);
  return {};
}

IoStatus VramStore::zero_awake(uint64_t count, uint64_t offset)
{
  if (IoStatus s = check("zero", count, offset); !s) return s;
  if (compressed_)
    return compressed_request("zero", count, offset, [&](compress::Worker &w, std::string &m) {
      return compressed_->zero(w, count, offset, m);
    });
  if (lazy_) return zero_lazy(count, offset);
  const CUresult r = pool_.acquire()->zero(base_ + offset, count);
  if (r != CUDA_SUCCESS) return fail_request("zero", r, count, offset);
  return {};
}

// allocation=lazy: each request is cut at chunk boundaries; a chunk that
// holds no VRAM reads as zeroes without a GPU call.
IoStatus VramStore::read_lazy(std::byte *buf, uint64_t count, uint64_t offset)
{
  ChunkResidency &chunks = lazy_->residency();
  auto lane = pool_.acquire();
  const CUresult r = chunks.for_each_piece(offset, count, [&](uint64_t o, uint64_t n, size_t) {
    std::byte *dst = buf + (o - offset);
    return chunks.read(o, n, [&](bool mapped) {
      if (!mapped) {
        std::fill_n(dst, n, std::byte{0});
        return CUDA_SUCCESS;
      }
      return lane->read(dst, base_ + o, n);
    });
  });
  if (r != CUDA_SUCCESS) return fail_request("read", r, count, offset);
  return {};
}

IoStatus VramStore::write_lazy(const std::byte *buf, uint64_t count, uint64_t offset)
{
  ChunkResidency &chunks = lazy_->residency();
  auto lane = pool_.acquire();
  std::string shortage;
  const CUresult r = chunks.for_each_piece(offset, count, [&](uint64_t o, uint64_t n, size_t) {
    const auto map = [&](size_t chunk) { return lazy_->map(chunk, *lane, shortage); };
    return chunks.write(o, n, map, [&] { return lane->write(base_ + o, buf + (o - offset), n); });
  });
  if (r == CUDA_ERROR_OUT_OF_MEMORY && !shortage.empty())
    return no_space(count, offset,
                    gpu_label_ + " has no VRAM for another " +
                      format_byte_size(lazy_->chunk_size()) + " chunk (" + shortage +
                      "; this export holds " + format_byte_size(lazy_->held()) + ")");
  if (r != CUDA_SUCCESS) return fail_request("write", r, count, offset);
  return {};
}

IoStatus VramStore::zero_lazy(uint64_t count, uint64_t offset)
{
  ChunkResidency &chunks = lazy_->residency();
  auto lane = pool_.acquire();
  const CUresult r = chunks.for_each_piece(offset, count, [&](uint64_t o, uint64_t n, size_t) {
    const auto unmap = [&](size_t chunk, bool &gone) { return lazy_->unmap(chunk, gone); };
    return chunks.clear(
      o, n, [&] { return lane->zero(base_ + o, n); }, unmap);
  });
  if (r != CUDA_SUCCESS) return fail_request("zero", r, count, offset);
  return {};
}

// Another program has the VRAM: this write fails, nothing stored is
// touched, and writes work again once VRAM is free.
IoStatus VramStore::no_space(uint64_t count, uint64_t offset, const std::string &why)
{
  const auto held_back = no_space_log_.admit();
  if (!held_back) return {ENOSPC, {}, true};
  return {ENOSPC, strformat("write of %llu bytes at offset %llu failed with ENOSPC: ",
                            static_cast<unsigned long long>(count),
                            static_cast<unsigned long long>(offset)) +
                    why +
                    ". Data already stored is unaffected; writes succeed again when VRAM is freed" +
                    LogThrottle::suppressed_note(*held_back)};
}

// Compaction is worth a page-table scan once the holes add up to more
// than this many chunks.
constexpr uint64_t compaction_slack_chunks = 4;

bool VramStore::compaction_wanted() const
{
  if (failed()) return false;
  const auto s = compressed_->stats();
  return Compactor::worth_it(s.vram.vram_bytes, s.vram.slot_bytes,
                             compaction_slack_chunks * lazy_->chunk_size());
}

bool VramStore::compact_step()
{
  if (failed()) return false;
  // Compaction never wakes a resting GPU, nor keeps it awake.
  if (rest_ && !rest_->try_enter()) return false;
  struct Leave {
    IdleRest *rest;
    ~Leave()
    {
      if (rest) rest->leave_background();
    }
  } leave{rest_.get()};
  if (const CUresult r = bind_context(); r != CUDA_SUCCESS) {
    enter_failed_state("cannot make the CUDA context current: " + driver_.describe(r));
    return false;
  }
  return with_worker([&](compress::Worker &worker, const ChunkLane &lane) {
    const bool emptied = compressed_->compact_one(worker);
    if (lane.error != CUDA_SUCCESS) {
      if (is_sticky(lane.error))
        enter_failed_state("compacting VRAM failed: " + driver_.describe(lane.error));
      return false;
    }
    return emptied;
  });
}

template <typename Fn>
IoStatus VramStore::compressed_request(const char *op, uint64_t count, uint64_t offset, Fn fn)
{
  return with_worker([&](compress::Worker &worker, const ChunkLane &lane) -> IoStatus {
    std::string message;
    const int e = fn(worker, message);
    if (e == 0) return {};
    // A GPU call that failed (a copy, or mapping a chunk for a reason other
    // than a shortage of VRAM) is an I/O error; a sticky one ends service.
    if (lane.error != CUDA_SUCCESS) return fail_request(op, lane.error, count, offset);
    if (e == ENOSPC) {
      const auto s = compressed_->stats();
      return no_space(count, offset,
                      gpu_label_ +
                        (lane.shortage.empty()
                           ? " has no room for another page in the " +
                               format_byte_size(vram_limit()) + " of VRAM this export may hold"
                           : " has no VRAM for another " + format_byte_size(lazy_->chunk_size()) +
                               " chunk (" + lane.shortage + ")") +
                        "; " + format_byte_size(s.vram.vram_bytes) + " of VRAM hold " +
                        format_byte_size(s.pages.original_bytes()) + " of pages, " +
                        format_byte_size(s.pages.compressed_bytes) + " compressed");
    }
    return {e, strformat("%s of %llu bytes at offset %llu failed: ", op,
                         static_cast<unsigned long long>(count),
                         static_cast<unsigned long long>(offset)) +
                 gpu_label_ + ": " + message};
  });
}

IoStatus VramStore::flush()
{
  // Every write is in VRAM before it is acknowledged: nothing to flush,
  // but a GPU that has failed no longer holds what was written.
  if (failed()) return failed_status();
  return {};
}

// idle-release=: the gate, what it looks at, and the PSI watch that wakes
// the GPU as soon as memory pressure begins.
void VramStore::start_idle_release(std::chrono::milliseconds idle)
{
  idle_release_ = idle;
  memory_probe_ = std::make_unique<MemoryProbe>();
  IdleRest::Hooks hooks;
  hooks.thread_start = [] { prefault_stack(io_stack_prefault_bytes); };
  hooks.memory_calm = [this] { return memory_probe_->calm(); };
  hooks.rest = [this] { return go_to_rest(); };
  hooks.wake = [this] { return wake_up(); };
  IdleRest::Settings settings;
  settings.idle = idle;
  settings.poll = std::clamp<std::chrono::milliseconds>(idle / 4, std::chrono::milliseconds(50),
                                                        std::chrono::milliseconds(1000));
  rest_ = std::make_unique<IdleRest>(std::move(hooks), settings);
  pressure_watch_ = std::make_unique<PressureWatch>([this] {
    thread_local bool stack_ready = false;
    if (!stack_ready) {
      prefault_stack(io_stack_prefault_bytes);
      stack_ready = true;
    }
    (void)rest_->wake_now(); // a failed wake is retried by the next request
  });
  const std::string after = strformat("%.3g s", std::chrono::duration<double>(idle).count());
  log_info(gpu_label_ + ": idle-release=: after " + after +
           " without a request, while memory is calm, the CUDA context is given back and the "
           "VRAM kept; " +
           (pressure_watch_->armed() ? "memory pressure wakes the GPU at once (PSI trigger \"" +
                                         pressure_watch_->trigger() + "\")"
                                     : "no memory pressure trigger (" + pressure_watch_->why_not() +
                                         "): memory is looked at every " +
                                         std::to_string(settings.poll.count()) + " ms instead"));
}

std::optional<IdleRest::Stats> VramStore::rest_stats() const
{
  if (!rest_) return std::nullopt;
  return rest_->stats();
}

// Gives back what the CUDA context owns, keeping every byte of VRAM: the
// lanes' streams and registrations, the export's mappings and address
// range, then the context itself.  On failure, puts back what it took.
std::string VramStore::go_to_rest()
{
  if (failed()) return "the GPU failed earlier";
  if (const CUresult r = bind_context(); r != CUDA_SUCCESS)
    return "cannot make the CUDA context current: " + driver_.describe(r);
  pool_.detach();
  bool intact = true;
  if (const CUresult r = lazy_->suspend(intact); r != CUDA_SUCCESS) {
    const std::string why = "unmapping its VRAM failed: " + driver_.describe(r);
    std::string back = intact ? pool_.attach() : "its VRAM could not be mapped back";
    if (!back.empty()) enter_failed_state("going to rest, " + why + ", and then " + back);
    return why;
  }
  // What the context held in host memory is kept for the next wake.
  const auto before = WakeReserve::resident_bytes();
  context_.reset();
  const auto after = WakeReserve::resident_bytes();
  if (before && after && *before > *after && !wake_reserve_.keep(*before - *after))
    log_warning(gpu_label_ + ": idle-release=: could not keep " +
                format_byte_size(*before - *after) +
                " of host memory for the next wake; it will allocate the CUDA context's anew");
  return {};
}

// Takes a context again and puts back what go_to_rest() gave away; on
// failure, the export stays at rest (its VRAM kept) for the next try.
std::string VramStore::wake_up()
{
  // For the driver's allocations, which come next.
  wake_reserve_.release();
  CUcontext ctx = nullptr;
  if (const CUresult r = cu_.DevicePrimaryCtxRetain(&ctx, device_); r != CUDA_SUCCESS)
    return "cannot create a CUDA context: " + driver_.describe(r);
  context_ = PrimaryContext(&cu_, device_, ctx);
  generation_ = next_generation();
  const auto undo = [&](std::string why) {
    context_.reset();
    return why;
  };
  if (const CUresult r = bind_context(); r != CUDA_SUCCESS)
    return undo("cannot make the CUDA context current: " + driver_.describe(r));
  if (const CUresult r = lazy_->resume(ctx); r != CUDA_SUCCESS)
    return undo("mapping its VRAM back failed: " + driver_.describe(r));
  base_ = lazy_->base();
  if (std::string why = pool_.attach(); !why.empty()) {
    bool intact = true;
    if (lazy_->suspend(intact) != CUDA_SUCCESS)
      enter_failed_state("waking, " + why + ", and its VRAM could not be unmapped again");
    return undo(why);
  }
  return {};
}

} // namespace vram
