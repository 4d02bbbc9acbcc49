// nbdkit callbacks: translation between nbdkit and the C++ core, nothing
// else.  No exception leaves this file; errors become nbdkit_error() and
// an errno.
#include <nbdkit-filter.h>

#include "checked_export.hpp"
#include "export_registry.hpp"
#include "logging.hpp"
#include "nbdkit_log_sink.hpp"
#include "settings.hpp"

#include <cerrno>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>

namespace {

using namespace integrity;

struct FilterState {
  Settings settings;
  ExportRegistry registry;
};

FilterState *state;

// One per connection: which export, and its checksums (shared with every
// other connection to it).
struct Handle {
  std::string export_name;
  std::shared_ptr<CheckedExport> checked;
};

Handle &handle_of(void *handle) { return *static_cast<Handle *>(handle); }

void nbdkit_sink(vram::LogLevel level, const std::string &message)
{
  vram::nbdkit_log("integrity", true, level, message);
}

// Runs `body`; an escaping exception becomes an nbdkit error and EIO.
template <typename F> int guarded(const char *where, int *err, F &&body)
{
  try {
    return body();
  } catch (const std::bad_alloc &) {
    nbdkit_error("integrity: %s: out of memory", where);
    if (err) *err = ENOMEM;
  } catch (const std::exception &e) {
    nbdkit_error("integrity: %s: %s", where, e.what());
    if (err) *err = EIO;
  } catch (...) {
    nbdkit_error("integrity: %s: unexpected internal error", where);
    if (err) *err = EIO;
  }
  return -1;
}

// The next filter or the plugin, as the core sees it.
class NextBackend final : public Backend {
public:
  explicit NextBackend(nbdkit_next *next) : next_(next) {}

  int read(std::span<std::byte> buffer, uint64_t offset) override
  {
    int err = 0;
    if (next_->pread(next_, buffer.data(), count(buffer.size()), offset, 0, &err) == -1)
      return err ? err : EIO;
    return 0;
  }

  int write(std::span<const std::byte> data, uint64_t offset, WriteFlags flags) override
  {
    int err = 0;
    if (next_->pwrite(next_, data.data(), count(data.size()), offset, to_nbdkit(flags), &err) == -1)
      return err ? err : EIO;
    return 0;
  }

  int zero(uint64_t length, uint64_t offset, WriteFlags flags) override
  {
    int err = 0;
    if (next_->zero(next_, count(length), offset, to_nbdkit(flags), &err) == -1)
      return err ? err : EIO;
    return 0;
  }

private:
  // Requests reach the core from nbdkit with 32-bit counts, and the core
  // only ever asks for parts of them or single blocks.
  static uint32_t count(uint64_t n) { return static_cast<uint32_t>(n); }

  static uint32_t to_nbdkit(WriteFlags f)
  {
    return (f.fua ? NBDKIT_FLAG_FUA : 0u) | (f.may_trim ? NBDKIT_FLAG_MAY_TRIM : 0u) |
           (f.fast_zero ? NBDKIT_FLAG_FAST_ZERO : 0u);
  }

  nbdkit_next *next_;
};

WriteFlags from_nbdkit(uint32_t flags)
{
  return WriteFlags{.fua = (flags & NBDKIT_FLAG_FUA) != 0,
                    .may_trim = (flags & NBDKIT_FLAG_MAY_TRIM) != 0,
                    .fast_zero = (flags & NBDKIT_FLAG_FAST_ZERO) != 0};
}

void integrity_load()
{
  vram::set_log_sink(nbdkit_sink);
  state = new (std::nothrow) FilterState;
}

void integrity_unload()
{
  delete state;
  state = nullptr;
  vram::set_log_sink(nullptr);
}

int integrity_config(nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key,
                     const char *value)
{
  if (!is_filter_key(key)) return next(nxdata, key, value);
  if (!state) {
    nbdkit_error("integrity: out of memory");
    return -1;
  }
  try {
    apply_setting(state->settings, key, value);
  } catch (const SettingsError &e) {
    nbdkit_error("%s", e.what());
    return -1;
  } catch (...) {
    nbdkit_error("integrity: out of memory");
    return -1;
  }
  return 0;
}

// The table of the default export is made now, before serving, so that a
// table that cannot be allocated (or locked, with integrity-mlock=require)
// stops nbdkit at start with the reason.  Other export names get theirs
// when first opened.  A backend that cannot open the default export now
// (it may need a client) is left to the first connection too.
int integrity_after_fork(nbdkit_backend *backend)
{
  if (!state) {
    nbdkit_error("integrity: out of memory");
    return -1;
  }
  nbdkit_next *next = nbdkit_next_context_open(backend, 1, "", 1);
  if (!next) return 0;
  int64_t size = -1;
  if (next->prepare(next) != -1) {
    size = next->get_size(next);
    next->finalize(next);
  }
  nbdkit_next_context_close(next);
  if (size < 0) {
    nbdkit_debug("integrity: the default export's size is not known yet; its checksum table "
                 "will be made when a client opens it");
    return 0;
  }
  return guarded("start", nullptr, [&] {
    try {
      state->registry.get("", static_cast<uint64_t>(size), state->settings);
    } catch (const AllocationError &e) {
      nbdkit_error("integrity: %s", e.what());
      return -1;
    }
    return 0;
  });
}

void integrity_cleanup(nbdkit_backend *)
{
  if (state) state->registry.clear();
}

void *integrity_open(nbdkit_next_open *next, nbdkit_context *context, int readonly,
                     const char *exportname, int /*is_tls*/)
{
  if (next(context, readonly, exportname) == -1) return nullptr;
  Handle *h = new (std::nothrow) Handle;
  if (!h) {
    nbdkit_error("integrity: out of memory");
    return nullptr;
  }
  try {
    h->export_name = exportname;
  } catch (...) {
    delete h;
    nbdkit_error("integrity: out of memory");
    return nullptr;
  }
  return h;
}

void integrity_close(void *handle) { delete static_cast<Handle *>(handle); }

// The table needs the export's size, which is known from here on.
int integrity_prepare(nbdkit_next *next, void *handle, int /*readonly*/)
{
  Handle &h = handle_of(handle);
  const int64_t size = next->get_size(next);
  if (size == -1) return -1;
  return guarded("open", nullptr, [&] {
    try {
      h.checked = state->registry.get(h.export_name, static_cast<uint64_t>(size), state->settings);
    } catch (const AllocationError &e) {
      nbdkit_error("integrity: %s", e.what());
      return -1;
    } catch (const ExportRegistry::Refused &e) {
      nbdkit_error("integrity: %s", e.what());
      return -1;
    }
    return 0;
  });
}

// Clients that honour the preferred block size then write whole blocks,
// which need no read-modify-write.
int integrity_block_size(nbdkit_next *next, void *, uint32_t *minimum, uint32_t *preferred,
                         uint32_t *maximum)
{
  if (next->block_size(next, minimum, preferred, maximum) == -1) return -1;
  const uint32_t block = state->settings.block_size;
  if (*minimum == 0) { // no constraints below us
    *minimum = 1;
    *preferred = block;
    *maximum = 0xffffffff;
  } else if (*preferred < block && block <= *maximum) {
    *preferred = block;
  }
  return 0;
}

// Trim becomes zero (see CheckedExport::trim), so it needs zero below.
int integrity_can_trim(nbdkit_next *next, void *)
{
  const int trim = next->can_trim(next);
  if (trim <= 0) return trim;
  const int zero = next->can_zero(next);
  if (zero == -1) return -1;
  return zero != NBDKIT_ZERO_NONE;
}

// A cache request would bring data in without it being checked.
int integrity_can_cache(nbdkit_next *, void *) { return NBDKIT_CACHE_NONE; }

int integrity_pread(nbdkit_next *next, void *handle, void *buf, uint32_t count, uint64_t offset,
                    uint32_t /*flags*/, int *err)
{
  return guarded("pread", err, [&] {
    NextBackend backend(next);
    const int e = handle_of(handle).checked->read(
      backend, std::span(static_cast<std::byte *>(buf), count), offset);
    if (e) {
      *err = e;
      return -1;
    }
    return 0;
  });
}

int integrity_pwrite(nbdkit_next *next, void *handle, const void *buf, uint32_t count,
                     uint64_t offset, uint32_t flags, int *err)
{
  return guarded("pwrite", err, [&] {
    NextBackend backend(next);
    const int e = handle_of(handle).checked->write(
      backend, std::span(static_cast<const std::byte *>(buf), count), offset, from_nbdkit(flags));
    if (e) {
      *err = e;
      return -1;
    }
    return 0;
  });
}

int integrity_zero(nbdkit_next *next, void *handle, uint32_t count, uint64_t offset, uint32_t flags,
                   int *err)
{
  return guarded("zero", err, [&] {
    NextBackend backend(next);
    const int e = handle_of(handle).checked->zero(backend, count, offset, from_nbdkit(flags));
    if (e) {
      *err = e;
      return -1;
    }
    return 0;
  });
}

int integrity_trim(nbdkit_next *next, void *handle, uint32_t count, uint64_t offset, uint32_t flags,
                   int *err)
{
  return guarded("trim", err, [&] {
    NextBackend backend(next);
    const int e =
      handle_of(handle).checked->trim(backend, count, offset, (flags & NBDKIT_FLAG_FUA) != 0);
    if (e) {
      *err = e;
      return -1;
    }
    return 0;
  });
}

nbdkit_filter make_filter()
{
  nbdkit_filter f{};
  f.name = "integrity";
  f.longname = "nbdkit integrity filter";
  f.description = "Checks every block read against a CRC32C of what was written to it";
  f.load = integrity_load;
  f.unload = integrity_unload;
  f.config = integrity_config;
  f.config_help = settings_help;
  f.after_fork = integrity_after_fork;
  f.cleanup = integrity_cleanup;
  f.open = integrity_open;
  f.close = integrity_close;
  f.prepare = integrity_prepare;
  f.block_size = integrity_block_size;
  f.can_trim = integrity_can_trim;
  f.can_cache = integrity_can_cache;
  f.pread = integrity_pread;
  f.pwrite = integrity_pwrite;
  f.zero = integrity_zero;
  f.trim = integrity_trim;
  return f;
}

nbdkit_filter filter = make_filter();

} // namespace

NBDKIT_REGISTER_FILTER(filter)
