// nbdkit callbacks: translation between nbdkit and the C++ core, nothing
// else.  No exception leaves this file; errors become nbdkit_error() and
// an errno.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include <nbdkit-plugin.h>

#include "byte_size.hpp"
#include "config.hpp"
#include "cuda_driver.hpp"
#include "gpu_inventory.hpp"
#include "logging.hpp"
#include "nbdkit_log_sink.hpp"
#include "preflight.hpp"
#include "request_board.hpp"
#include "sizing.hpp"
#include "status_reporter.hpp"
#include "swap_safety.hpp"
#include "version.hpp"
#include "vram_store.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>

namespace {

using namespace vram;

struct PluginState {
  ConfigBuilder builder;
  std::optional<Config> config;
  VramStore::Layout layout;
  ProtectionResult io_flusher;
  std::unique_ptr<CudaDriver> driver;
  std::unique_ptr<VramStore> store;
  std::unique_ptr<StatusReporter> reporter; // destroyed before the store
  std::unique_ptr<RequestBoard> board;       // requests-file=
};

PluginState *state;

void nbdkit_sink(LogLevel level, const std::string &message)
{
  nbdkit_log("vram", false, level, message);
}

// Runs `body`, turning any escaping exception into an nbdkit error.
template <typename F> int guarded(const char *where, F &&body)
{
  try {
    return body();
  } catch (const std::exception &e) {
    nbdkit_error("%s: %s", where, e.what());
  } catch (...) {
    nbdkit_error("%s: unexpected internal error", where);
  }
  nbdkit_set_error(EIO);
  return -1;
}

int report(const IoStatus &status)
{
  if (status)
    return 0;
  if (!status.quiet)
    nbdkit_error("%s", status.message.c_str());
  nbdkit_set_error(status.errnum);
  return -1;
}

void vram_load()
{
  set_log_sink(nbdkit_sink);
  state = new (std::nothrow) PluginState;
}

void vram_unload()
{
  delete state;
  state = nullptr;
}

// Parameter handling: a ConfigError is the user's mistake (EINVAL).
template <typename F> int config_step(F &&body)
{
  return guarded("config", [&] {
    if (!state) {
      nbdkit_error("out of memory");
      return -1;
    }
    try {
      body();
    } catch (const ConfigError &e) {
      nbdkit_error("%s", e.what());
      nbdkit_set_error(EINVAL);
      return -1;
    }
    return 0;
  });
}

int vram_config(const char *key, const char *value)
{
  return config_step([&] { state->builder.set(key, value); });
}

int vram_config_complete()
{
  return config_step([] { state->config = state->builder.finish(); });
}

// Before nbdkit forks and starts threads: set the I/O flusher flag, and
// check the GPU from a child process so errors reach the terminal.
int vram_get_ready()
{
  return guarded("get_ready", [] {
    const Config &config = *state->config;
    if (config.swap_safety != SwapSafety::off) {
      state->io_flusher = enable_io_flusher();
      if (!state->io_flusher.active && config.swap_safety == SwapSafety::require) {
        nbdkit_error("swap-safety=require: %s", state->io_flusher.detail.c_str());
        return -1;
      }
    }

    const Inventory inv = probe_gpus_in_child(
      config.init_timeout_s, [&](const GpuInfo &g) { return matches(g, config.device); },
      config.init_timeout_s + 60);
    if (!inv.error.empty()) {
      nbdkit_error("%s", inv.error.c_str());
      return -1;
    }
    std::string error;
    const GpuInfo *gpu = select_gpu(inv, config.device, error);
    if (!gpu) {
      nbdkit_error("%s", error.c_str());
      return -1;
    }
    try {
      const SizePlan plan =
        plan_size(config, GpuMemory{gpu->total, gpu->free.value_or(0), gpu->display}, gpu->label());
      log_debug("size plan on " + gpu->label() + ": first " + format_byte_size(plan.first) +
                ", minimum " + format_byte_size(plan.minimum));
    } catch (const SizingError &e) {
      nbdkit_error("%s", e.what());
      return -1;
    }
    state->layout.device_index = gpu->index;
    state->layout.gpu_label = gpu->label();
    state->layout.display = gpu->display;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    state->layout.lanes = config.lanes ? config.lanes : default_lanes(cpus);
    return 0;
  });
}

// In the process that serves: lock memory, initialise CUDA, allocate.
int vram_after_fork()
{
  return guarded("after_fork", [] {
    const Config &config = *state->config;
    // Before CUDA is initialised: see lock_all_memory().
    ProtectionResult mlock{false, "swap-safety=off"};
    if (config.swap_safety != SwapSafety::off) {
      mlock = lock_all_memory();
      if (!mlock.warning.empty())
        log_warning(mlock.warning);
      if (!mlock.active && config.swap_safety == SwapSafety::require) {
        nbdkit_error("swap-safety=require: %s", mlock.detail.c_str());
        return -1;
      }
    }

    std::string error;
    state->driver = CudaDriver::load(error);
    if (!state->driver) {
      nbdkit_error("%s", error.c_str());
      return -1;
    }
    if (const CUresult r = state->driver->init(config.init_timeout_s); r != CUDA_SUCCESS) {
      nbdkit_error("the NVIDIA driver failed to initialise (cuInit: %s)",
                   state->driver->describe(r).c_str());
      return -1;
    }
    // Before any VRAM is taken: a requests file that cannot be made stops
    // the start with nothing to undo.
    if (!config.requests_file.empty()) {
      try {
        state->board = std::make_unique<RequestBoard>(config.requests_file);
      } catch (const std::exception &e) {
        nbdkit_error("%s", e.what());
        return -1;
      }
      RequestBoard::install(state->board.get());
    }
    try {
      state->store = VramStore::open(*state->driver, config, state->layout);
    } catch (const StartupError &e) {
      nbdkit_error("%s", e.what());
      return -1;
    }

    const VramStore &store = *state->store;
    log_info(strformat("serving %s (%llu bytes) of VRAM on %s; %zu I/O lanes, %s chunks",
                       format_byte_size(store.size()).c_str(),
                       static_cast<unsigned long long>(store.size()),
                       state->layout.gpu_label.c_str(), store.lanes(),
                       format_byte_size(store.chunk_size()).c_str()));
    if (store.allocation() == Allocation::lazy)
      log_info("allocation=lazy: VRAM is held in chunks of " +
               format_byte_size(store.lazy_chunk()) + " while they hold data" +
               (store.spare_target()
                  ? strformat(", plus %zu spare chunk%s created ahead of need (lazy-spare=)",
                              store.spare_target(), store.spare_target() == 1 ? "" : "s")
                  : std::string("; none is held yet")));
    if (state->board)
      state->board->set_lanes(static_cast<unsigned>(store.lanes()));
    if (store.allocation() == Allocation::lazy || !config.status_file.empty())
      state->reporter = std::make_unique<StatusReporter>(
        store, StatusReporter::Settings{state->layout.gpu_label, config.status_file});
    if (config.swap_safety == SwapSafety::off) {
      log_warning("swap protections are off (swap-safety=off): do not use this export as swap");
    } else {
      const bool flusher = io_flusher_active();
      std::string summary = std::string("swap protections: io-flusher ") +
                            (flusher ? "on" : "OFF") + ", mlockall " +
                            (mlock.active ? "on (" + locked_memory() + " locked)" : "OFF");
      if (flusher && mlock.active) {
        log_info(summary);
      } else {
        if (!flusher) summary += "; " + state->io_flusher.detail;
        if (!mlock.active) summary += "; " + mlock.detail;
        log_warning(summary + ". As swap, this export may deadlock at zero free RAM");
      }
    }
    return 0;
  });
}

void vram_cleanup()
{
  if (state) {
    state->reporter.reset();
    state->store.reset();
    state->board.reset(); // no request runs any more
  }
}

void vram_dump_plugin()
{
  std::printf("vram_version=%s\n", NBDKIT_VRAM_VERSION);
  std::printf("vram_cuda_api=%s\n", format_driver_version(cuda_abi::api_version).c_str());
  std::printf("vram_driver_library=%s\n", CudaDriver::library_path().c_str());
  // In a child, like the pre-start check: a driver that crashes or hangs
  // must not take nbdkit with it.
  const Inventory inv = probe_gpus_in_child(10, [](const GpuInfo &) { return true; }, 120);
  if (inv.driver_version)
    std::printf("vram_cuda_driver=%s\n", format_driver_version(inv.driver_version).c_str());
  std::printf("vram_gpu_count=%zu\n", inv.gpus.size());
  for (const GpuInfo &g : inv.gpus) {
    std::printf("vram_gpu%u_name=%s\n", g.index, g.name.c_str());
    std::printf("vram_gpu%u_uuid=%s\n", g.index, format_gpu_uuid(g.uuid).c_str());
    std::printf("vram_gpu%u_pci=%s\n", g.index, format_pci_address(g.pci).c_str());
    std::printf("vram_gpu%u_total=%llu\n", g.index, static_cast<unsigned long long>(g.total));
    if (g.free)
      std::printf("vram_gpu%u_free=%llu\n", g.index, static_cast<unsigned long long>(*g.free));
    std::printf("vram_gpu%u_display=%s\n", g.index, g.display ? "yes" : "no");
  }
  if (!inv.error.empty())
    std::printf("vram_error=%s\n", inv.error.c_str());
}

void *vram_open(int /*readonly*/)
{
  // One export, with no name, shared by every connection: the handle is
  // the store itself.  A client asking for a name must not get the same
  // data under it: what keeps state per export name (the integrity filter's
  // checksums) would take it for a second export.
  if (const char *name = nbdkit_export_name(); name && *name) {
    std::string shown; // client data: printable, and short
    for (const char *c = name; *c && shown.size() < 64; ++c)
      shown += std::isprint(static_cast<unsigned char>(*c)) ? *c : '?';
    nbdkit_error("export \"%s\": the vram plugin serves one export, which has no name: "
                 "connect without an export name (nbd-client without -N, "
                 "nbd+unix:///?socket=...)",
                 shown.c_str());
    errno = ENOENT;
    return nullptr;
  }
  return state->store.get();
}

VramStore &store_of(void *handle) { return *static_cast<VramStore *>(handle); }

int64_t vram_get_size(void *handle) { return static_cast<int64_t>(store_of(handle).size()); }

// Any alignment works (partial blocks are copied like any other bytes), so
// the minimum is 1; clients that honour the preferred size get whole pages.
int vram_block_size(void *, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
  *minimum = 1;
  *preferred = 4096;
  *maximum = 0xffffffff;
  return 0;
}

int vram_can_multi_conn(void *) { return 1; }
int vram_can_write(void *) { return 1; }
int vram_can_flush(void *) { return 1; }
int vram_can_trim(void *) { return 1; }
int vram_can_zero(void *) { return 1; }
int vram_can_fast_zero(void *) { return 1; }
int vram_can_fua(void *) { return NBDKIT_FUA_NATIVE; }
int vram_is_rotational(void *) { return 0; }

int vram_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t /*flags*/)
{
  return guarded("pread", [&] {
    request_trace::Scope trace("read", offset, count);
    return report(store_of(handle).read(buf, count, offset));
  });
}

// FUA needs nothing extra: every write is in VRAM before it is acknowledged.
int vram_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset, uint32_t /*flags*/)
{
  return guarded("pwrite", [&] {
    request_trace::Scope trace("write", offset, count);
    return report(store_of(handle).write(buf, count, offset));
  });
}

int vram_zero(void *handle, uint32_t count, uint64_t offset, uint32_t /*flags*/)
{
  return guarded("zero", [&] {
    request_trace::Scope trace("zero", offset, count);
    return report(store_of(handle).zero(count, offset));
  });
}

// Trimmed blocks are zeroed, not merely forgotten: swap discards pages that
// held secrets, and later reads must not return them.
int vram_trim(void *handle, uint32_t count, uint64_t offset, uint32_t /*flags*/)
{
  return guarded("trim", [&] {
    request_trace::Scope trace("trim", offset, count);
    return report(store_of(handle).zero(count, offset));
  });
}

int vram_flush(void *handle, uint32_t /*flags*/)
{
  return guarded("flush", [&] { return report(store_of(handle).flush()); });
}

nbdkit_plugin make_plugin()
{
  nbdkit_plugin p{};
  p.name = "vram";
  p.longname = "nbdkit NVIDIA VRAM plugin";
  p.version = NBDKIT_VRAM_VERSION;
  p.load = vram_load;
  p.unload = vram_unload;
  p.config = vram_config;
  p.config_complete = vram_config_complete;
  p.config_help = config_help;
  p.magic_config_key = "size";
  p.get_ready = vram_get_ready;
  p.after_fork = vram_after_fork;
  p.cleanup = vram_cleanup;
  p.dump_plugin = vram_dump_plugin;
  p.open = vram_open;
  p.get_size = vram_get_size;
  p.block_size = vram_block_size;
  p.can_multi_conn = vram_can_multi_conn;
  p.can_write = vram_can_write;
  p.can_flush = vram_can_flush;
  p.can_trim = vram_can_trim;
  p.can_zero = vram_can_zero;
  p.can_fast_zero = vram_can_fast_zero;
  p.can_fua = vram_can_fua;
  p.is_rotational = vram_is_rotational;
  p.pread = vram_pread;
  p.pwrite = vram_pwrite;
  p.zero = vram_zero;
  p.trim = vram_trim;
  p.flush = vram_flush;
  p.errno_is_preserved = 0;
  return p;
}

nbdkit_plugin plugin = make_plugin();

} // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
