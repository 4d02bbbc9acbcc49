// Keeps an eye on how much VRAM the export holds: logs it when it changes
// (at most once per log interval; allocation=lazy only, eager never
// changes), and keeps status-file= up to date for `vram-swap status` and
// monitoring.  A thread of its own that only reads the store's counters,
// so the I/O path pays nothing and waits for nothing.
#pragma once

#include "store/vram_store.hpp"

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace vram {

class StatusReporter {
public:
  struct Settings {
    std::string gpu_label;
    std::string status_file; // empty: none
    std::chrono::milliseconds poll{1000};
    std::chrono::milliseconds log_interval{10000};
  };

  StatusReporter(const VramStore &store, Settings settings);
  // Logs a last change, removes the status file, joins the thread.
  ~StatusReporter();

  StatusReporter(const StatusReporter &) = delete;
  StatusReporter &operator=(const StatusReporter &) = delete;

  // The status file's text for the store's state now.
  static std::string status_text(const VramStore &store, const std::string &gpu_label);

private:
  void run(std::stop_token stop);
  void tick(bool final);
  void log_rest(const IdleRest::Stats &s);

  const VramStore &store_;
  const Settings settings_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  bool have_written_ = false;
  bool have_logged_ = false;
  uint64_t written_held_ = 0, written_spare_ = 0, logged_held_ = 0;
  bool written_failed_ = false;
  uint64_t written_detections_ = 0;
  bool written_sharing_ = false;
  // compress=: the page figures written last (each change is written).
  std::array<uint64_t, 4> written_pages_{};
  // idle-release=: state, rests, wakes, failed wakes, as written and logged.
  std::array<uint64_t, 4> written_rest_{};
  uint64_t logged_rests_ = 0, logged_wakes_ = 0, logged_failed_wakes_ = 0;
  std::chrono::steady_clock::time_point last_log_{};
  bool write_error_logged_ = false;
  std::jthread thread_; // last: started once the rest is initialised
};

// Replaces `path` atomically (a temporary file renamed over it).  Returns
// an empty string, or what went wrong.
std::string write_file_atomically(const std::string &path, const std::string &text);

} // namespace vram
