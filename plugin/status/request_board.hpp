// Where each of nbdkit's threads is in its request, for whoever must know
// while the plugin cannot answer (a hang dump, an operator at a stuck
// machine): requests-file=PATH.
//
// The file is fixed-size text the plugin keeps mapped and locked in RAM
// and updates in place, so reading it needs nothing from the plugin and
// writing it allocates nothing: two header lines, then one line of
// line_bytes per slot.  A thread takes a slot at its first request and
// gives it back when it exits; an unused slot is all spaces.  Columns:
//
//   tid op offset length started phase since lane chunk
//
// op: read, write, zero, trim, flush; offset in hex; started: when the
// request began, since: when its phase began (CLOCK_MONOTONIC seconds, as
// clock_gettime and, within a few ms, /proc/uptime on most machines);
// phase: idle (between requests: the columns describe the last one),
// started (not yet at a lane), lane-wait, lane (holding lane N), then
// with allocation=lazy chunk-wait (for chunk C's lock), chunk (holding
// it), map (mapping or unmapping chunk C's VRAM); lane and chunk: '-' when
// none.
//
// Updates are plain stores a reader may see half done; the fields of a
// stuck request do not change, which is when they matter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace vram {

enum class RequestPhase : uint8_t { idle, lane_wait, lane, chunk_wait, chunk, map };

class RequestBoard {
public:
  static constexpr size_t line_bytes = 128;
  static constexpr size_t header_lines = 2;
  static constexpr size_t slot_count = 512;
  static constexpr size_t file_bytes = (header_lines + slot_count) * line_bytes;

  // Creates PATH (replacing it; mode 0600), maps it and locks it in RAM.
  // Throws std::runtime_error naming the path and the error.
  explicit RequestBoard(std::string path);
  ~RequestBoard(); // unmaps and removes the file
  RequestBoard(const RequestBoard &) = delete;
  RequestBoard &operator=(const RequestBoard &) = delete;

  // The board requests report to, process-wide (none: nullptr).  Set once
  // serving starts, cleared before the board is destroyed.
  static void install(RequestBoard *board);

  const std::string &path() const { return path_; }
  // The header's first line, once the lanes are made.
  void set_lanes(unsigned lanes);
  char *slot_line(size_t i) { return base_ + (header_lines + i) * line_bytes; }
  // A free slot for the calling thread, or nullptr when all are taken.
  int claim();
  void release(int slot);

private:
  std::string path_;
  char *base_ = nullptr;
  std::mutex mutex_; // guards used_: a slot is taken once per thread
  bool used_[slot_count] = {};
};

// What the calling thread reports; each is a no-op without an installed
// board, and costs a few field stores with one.
namespace request_trace {
void begin(const char *op, uint64_t offset, uint64_t length);
void phase(RequestPhase phase, int64_t index = -1); // index: the lane or chunk
void end();

// begin() ... end() for a scope.
class Scope {
public:
  Scope(const char *op, uint64_t offset, uint64_t length) { begin(op, offset, length); }
  ~Scope() { end(); }
  Scope(const Scope &) = delete;
  Scope &operator=(const Scope &) = delete;
};
} // namespace request_trace

} // namespace vram
