#include "status/request_board.hpp"

#include "logging.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vram {

namespace {

// Where each column of a slot's line starts, and how wide it is.
struct Field {
  size_t at, width;
};
constexpr Field tid_f{0, 7}, op_f{8, 5}, offset_f{14, 14}, length_f{29, 10}, started_f{40, 17},
  phase_f{58, 10}, since_f{69, 17}, lane_f{87, 4}, chunk_f{92, 10};

std::atomic<RequestBoard *> installed{nullptr};

void put_text(char *line, Field f, const char *text)
{
  size_t i = 0;
  for (; i < f.width && text[i]; ++i)
    line[f.at + i] = text[i];
  for (; i < f.width; ++i)
    line[f.at + i] = ' ';
}

// Right-aligned decimal, or the field's last digits if it does not fit.
void put_dec(char *line, Field f, uint64_t v)
{
  size_t i = f.width;
  do {
    line[f.at + --i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  while (i > 0)
    line[f.at + --i] = ' ';
}

void put_hex(char *line, Field f, uint64_t v)
{
  line[f.at] = '0';
  line[f.at + 1] = 'x';
  for (size_t i = f.width; i > 2; --i, v >>= 4)
    line[f.at + i - 1] = "0123456789abcdef"[v & 15];
}

// CLOCK_MONOTONIC as seconds with microseconds: "%10u.%06u".
void put_time(char *line, Field f)
{
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  put_dec(line, {f.at, 10}, static_cast<uint64_t>(ts.tv_sec));
  line[f.at + 10] = '.';
  uint64_t us = static_cast<uint64_t>(ts.tv_nsec) / 1000;
  for (size_t i = 16; i > 10; --i, us /= 10)
    line[f.at + i] = static_cast<char>('0' + us % 10);
}

void put_index(char *line, Field f, int64_t index)
{
  if (index < 0) put_text(line, f, "-");
  else put_dec(line, f, static_cast<uint64_t>(index));
}

const char *phase_name(RequestPhase p)
{
  switch (p) {
  case RequestPhase::idle: return "idle";
  case RequestPhase::lane_wait: return "lane-wait";
  case RequestPhase::lane: return "lane";
  case RequestPhase::chunk_wait: return "chunk-wait";
  case RequestPhase::chunk: return "chunk";
  case RequestPhase::map: return "map";
  }
  return "?";
}

void blank(char *line)
{
  std::memset(line, ' ', RequestBoard::line_bytes - 1);
  line[RequestBoard::line_bytes - 1] = '\n';
}

// The calling thread's slot; given back when the thread exits.
struct ThreadSlot {
  RequestBoard *board = nullptr;
  int slot = -1;
  ~ThreadSlot()
  {
    if (board && slot >= 0 && installed.load(std::memory_order_acquire) == board)
      board->release(slot);
  }
};
thread_local ThreadSlot this_thread;

// The calling thread's line, taking a slot on first use; nullptr without
// a board or a free slot.
char *my_line()
{
  RequestBoard *board = installed.load(std::memory_order_acquire);
  if (!board) return nullptr;
  if (this_thread.board != board) {
    this_thread.board = board;
    this_thread.slot = board->claim();
  }
  return this_thread.slot < 0 ? nullptr : board->slot_line(static_cast<size_t>(this_thread.slot));
}

} // namespace

RequestBoard::RequestBoard(std::string path) : path_(std::move(path))
{
  ::unlink(path_.c_str());
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("requests-file=" + path_ + ": cannot create it: " + errno_text(errno));
  void *p = MAP_FAILED;
  if (::ftruncate(fd, static_cast<off_t>(file_bytes)) == 0)
    p = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) {
    ::unlink(path_.c_str());
    throw std::runtime_error("requests-file=" + path_ +
                             ": cannot size or map it: " + errno_text(e));
  }
  base_ = static_cast<char *>(p);
  for (size_t i = 0; i < header_lines + slot_count; ++i)
    blank(base_ + i * line_bytes);
  // Resident from now on: a stuck request must not need a page to report.
  ::mlock(base_, file_bytes);
  set_lanes(0);
  char head[line_bytes + 1];
  std::snprintf(head, sizeof head,
                "#   tid op    offset         length     started           phase      since "
                "            lane chunk");
  std::memcpy(base_ + line_bytes, head, std::strlen(head));
}

void RequestBoard::set_lanes(unsigned lanes)
{
  char head[line_bytes + 1];
  std::snprintf(head, sizeof head,
                "# nbdkit-vram requests-file: pid %d, %u lanes, %zu slots; times in "
                "CLOCK_MONOTONIC seconds",
                static_cast<int>(::getpid()), lanes, slot_count);
  blank(base_);
  std::memcpy(base_, head, std::strlen(head));
}

RequestBoard::~RequestBoard()
{
  RequestBoard *self = this;
  installed.compare_exchange_strong(self, nullptr);
  ::munmap(base_, file_bytes);
  ::unlink(path_.c_str());
}

void RequestBoard::install(RequestBoard *board)
{
  installed.store(board, std::memory_order_release);
}

int RequestBoard::claim()
{
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < slot_count; ++i)
    if (!used_[i]) {
      used_[i] = true;
      char *line = slot_line(i);
      put_dec(line, tid_f, static_cast<uint64_t>(::syscall(SYS_gettid)));
      put_text(line, phase_f, phase_name(RequestPhase::idle));
      return static_cast<int>(i);
    }
  return -1;
}

void RequestBoard::release(int slot)
{
  std::lock_guard lock(mutex_);
  blank(slot_line(static_cast<size_t>(slot)));
  used_[slot] = false;
}

namespace request_trace {

void begin(const char *op, uint64_t offset, uint64_t length)
{
  char *line = my_line();
  if (!line) return;
  put_text(line, op_f, op);
  put_hex(line, offset_f, offset);
  put_dec(line, length_f, length);
  put_time(line, started_f);
  std::memcpy(line + since_f.at, line + started_f.at, since_f.width);
  put_text(line, phase_f, "started");
  put_text(line, lane_f, "-");
  put_text(line, chunk_f, "-");
}

void phase(RequestPhase p, int64_t index)
{
  char *line = my_line();
  if (!line) return;
  put_text(line, phase_f, phase_name(p));
  put_time(line, since_f);
  if (p == RequestPhase::lane) put_index(line, lane_f, index);
  else if (p == RequestPhase::chunk_wait || p == RequestPhase::chunk || p == RequestPhase::map)
    put_index(line, chunk_f, index);
}

void end()
{
  char *line = my_line();
  if (!line) return;
  put_text(line, phase_f, phase_name(RequestPhase::idle));
  put_time(line, since_f);
  put_text(line, lane_f, "-");
  put_text(line, chunk_f, "-");
}

} // namespace request_trace

} // namespace vram
