// nbdkit callbacks: translation between nbdkit and the C++ core, nothing
// else.  No exception leaves this file; errors become nbdkit_error() and
// an errno.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include <nbdkit-plugin.h>

#include "config/config.hpp"
#include "cuda/gpu_inventory.hpp"
#include "cuda/preflight.hpp"
#include "logging.hpp"
#include "nbdkit_log_sink.hpp"
#include "startup/startup.hpp"
#include "status/request_board.hpp"
#include "store/vram_store.hpp"
#include "version.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace {

using namespace vram;

struct PluginState {
  ConfigBuilder builder;
  std::optional<Startup> startup; // from config_complete on
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
  if (status) return 0;
  if (!status.quiet) nbdkit_error("%s", status.message.c_str());
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
  return config_step([] { state->startup.emplace(state->builder.finish()); });
}

// A start-up step of the core (startup/startup.hpp): its message, if any,
// becomes nbdkit's error.
int startup_step(const char *where, Startup::Failure (Startup::*step)())
{
  return guarded(where, [&] {
    if (const Startup::Failure failure = ((*state->startup).*step)()) {
      nbdkit_error("%s", failure->c_str());
      return -1;
    }
    return 0;
  });
}

int vram_get_ready() { return startup_step("get_ready", &Startup::before_fork); }
int vram_after_fork() { return startup_step("after_fork", &Startup::after_fork); }

void vram_cleanup()
{
  if (state && state->startup) state->startup->stop();
}

void vram_dump_plugin()
{
  std::printf("vram_version=%s\n", NBDKIT_VRAM_VERSION);
  std::printf("vram_cuda_api=%s\n", format_driver_version(cuda_abi::api_version).c_str());
  std::printf("vram_driver_library=%s\n", CudaDriver::library_path().c_str());
  // In a child, like the pre-start check: a driver that crashes or hangs
  // must not take nbdkit with it.
  const Inventory inv = probe_gpus_in_child(
    10, [](const GpuInfo &) { return true; }, 120);
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
  if (!inv.error.empty()) std::printf("vram_error=%s\n", inv.error.c_str());
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
  return state->startup->store();
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
