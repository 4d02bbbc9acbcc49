// What the plugin does at each step of nbdkit's start-up, and what it
// holds while it serves: the policy behind get_ready, after_fork and
// cleanup, so that the callback file only translates.  Each step returns
// the message for nbdkit_error(), or nothing when it succeeded.
//
// nbdkit's order (docs/architecture.md): before_fork() runs in the
// foreground, before nbdkit forks and starts its threads; after_fork() in
// the process that serves; stop() at cleanup.
#pragma once

#include "config/config.hpp"
#include "cuda/cuda_driver.hpp"
#include "safety/swap_safety.hpp"
#include "status/request_board.hpp"
#include "status/status_reporter.hpp"
#include "store/vram_store.hpp"

#include <memory>
#include <optional>
#include <string>

namespace vram {

class Startup {
public:
  using Failure = std::optional<std::string>; // what went wrong, or nothing

  explicit Startup(Config config) : config_(std::move(config)) {}

  // The I/O flusher flag (inherited by the threads nbdkit creates next),
  // then the GPU checked from a child process, so that "no driver", "no
  // such GPU" and "not enough VRAM" reach the user's terminal.
  Failure before_fork();

  // Memory locked, CUDA initialised, the requests file made, the VRAM
  // allocated and the lanes created; what is in force is logged.
  Failure after_fork();

  // Stops what after_fork() started: the reporter, then the store (which
  // zeroes and frees its VRAM), then the requests file.
  void stop();

  const Config &config() const { return config_; }
  VramStore *store() const { return store_.get(); }

private:
  void log_serving() const;
  void log_protections(const ProtectionResult &mlock) const;

  Config config_;
  VramStore::Layout layout_;
  ProtectionResult io_flusher_;
  std::unique_ptr<CudaDriver> driver_;
  std::unique_ptr<RequestBoard> board_; // requests-file=
  std::unique_ptr<VramStore> store_;
  std::unique_ptr<StatusReporter> reporter_; // destroyed before the store
};

} // namespace vram
