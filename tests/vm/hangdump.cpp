// vm-hangdump: in a VM test guest, says what nbdkit is doing when the
// guest hangs (docs/dev/vm-tests.md, "Reading a hang capture").
//
//   vm-hangdump --pid PID [--requests FILE] [--trigger TTY] [--self-trigger SECONDS]
//               [--nbd NAME]
//
// Started before the memory pressure, it locks itself in RAM and keeps
// open every file it will read (each nbdkit thread's stat, wchan, syscall
// and kernel stack; the plugin's requests-file=; the debugfs files of nbd
// device NAME, default nbd0; /proc/meminfo and the memory pressure), reading each every two seconds
// so the kernel's buffers for them stay allocated: at the hang, a dump reads them again without
// needing a new page.  It dumps to its standard output (the console), every line starting
// "hangdump: ", ending "hangdump: end", when a line arrives on TTY (the harness writes one when it
// sees a hang) and, once, when a request in the requests file has been in flight for SECONDS
// (default 20: before the kernel's nbd timeout of 30 s).
//
// Test-only; never installed.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <map>
#include <poll.h>
#include <string>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr size_t out_capacity = 1u << 20;
constexpr size_t read_capacity = 256u << 10;
char out_buf[out_capacity]; // in .bss: faulted in and locked by mlockall
char read_buf[read_capacity];
size_t out_len = 0;
// How often dump() looks again at a thread that is on a CPU.
constexpr int running_looks = 500;

void out(const char *text, size_t n)
{
  n = std::min(n, out_capacity - out_len);
  std::memcpy(out_buf + out_len, text, n);
  out_len += n;
}
void out(const std::string &s) { out(s.data(), s.size()); }

// Each line of `text` as "hangdump: PREFIX line".
void out_lines(const std::string &prefix, const char *text, size_t n)
{
  size_t start = 0;
  while (start < n) {
    size_t end = start;
    while (end < n && text[end] != '\n')
      ++end;
    out("hangdump: " + prefix);
    out(text + start, end - start);
    out("\n", 1);
    start = end + 1;
  }
}

void flush_out()
{
  size_t done = 0;
  while (done < out_len) {
    const ssize_t w = ::write(1, out_buf + done, out_len - done);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      break;
    }
    done += static_cast<size_t>(w);
  }
  out_len = 0;
}

double monotonic()
{
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A file kept open and read from its start each time.
struct Source {
  std::string name;
  int fd = -1;
  size_t read_all()
  {
    const ssize_t n = ::pread(fd, read_buf, read_capacity - 1, 0);
    return n > 0 ? static_cast<size_t>(n) : 0;
  }
};

Source open_source(const std::string &path)
{
  return {path, ::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
}

struct Thread {
  Source stat, wchan, syscall, stack;
};

struct State {
  int pid = 0;
  Source maps; // /proc/PID/maps: which mapping a faulting thread's pc is in
  std::string requests_path;
  const char *requests = nullptr; // mapped requests file
  size_t requests_bytes = 0;
  std::map<int, Thread> threads;
  std::vector<Source> globals;
  std::vector<std::string> global_patterns;
};

void refresh_threads(State &s)
{
  const std::string dir = "/proc/" + std::to_string(s.pid) + "/task";
  DIR *d = ::opendir(dir.c_str());
  if (!d) return;
  std::map<int, bool> seen;
  while (dirent *e = ::readdir(d)) {
    const int tid = std::atoi(e->d_name);
    if (tid <= 0) continue;
    seen[tid] = true;
    if (s.threads.count(tid)) continue;
    const std::string base = dir + "/" + e->d_name + "/";
    s.threads[tid] = {open_source(base + "stat"), open_source(base + "wchan"),
                      open_source(base + "syscall"), open_source(base + "stack")};
  }
  ::closedir(d);
  for (auto it = s.threads.begin(); it != s.threads.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    for (Source *src :
         {&it->second.stat, &it->second.wchan, &it->second.syscall, &it->second.stack})
      if (src->fd >= 0) ::close(src->fd);
    it = s.threads.erase(it);
  }
}

void refresh_globals(State &s)
{
  for (const std::string &pattern : s.global_patterns) {
    glob_t g{};
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        bool have = false;
        for (const Source &src : s.globals)
          have = have || src.name == g.gl_pathv[i];
        if (!have) {
          Source src = open_source(g.gl_pathv[i]);
          if (src.fd >= 0) s.globals.push_back(src);
        }
      }
    }
    ::globfree(&g);
  }
  if (!s.requests && !s.requests_path.empty()) {
    const int fd = ::open(s.requests_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      const off_t size = ::lseek(fd, 0, SEEK_END);
      void *p = size > 0 ? ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd, 0)
                         : MAP_FAILED;
      ::close(fd);
      if (p != MAP_FAILED) {
        ::mlock(p, static_cast<size_t>(size));
        s.requests = static_cast<const char *>(p);
        s.requests_bytes = static_cast<size_t>(size);
      }
    }
  }
}

// Keeps the kernel's buffers for every open file allocated.
void warm(State &s)
{
  for (auto &[tid, t] : s.threads)
    for (Source *src : {&t.stat, &t.wchan, &t.syscall, &t.stack})
      if (src->fd >= 0) src->read_all();
  for (Source &src : s.globals)
    src.read_all();
  if (s.maps.fd >= 0) s.maps.read_all();
}

// The requests in flight: (line, age of the request in seconds).
std::vector<std::pair<std::string, double>> in_flight(const State &s, double now)
{
  std::vector<std::pair<std::string, double>> v;
  if (!s.requests) return v;
  for (size_t at = 0; at + 128 <= s.requests_bytes; at += 128) {
    std::string line(s.requests + at, 127);
    if (line[0] == '#' || line.find_first_not_of(' ') == std::string::npos) continue;
    char tid[16], op[16], offset[32], length[32], phase[32];
    double started = 0;
    if (std::sscanf(line.c_str(), "%15s %15s %31s %31s %lf %31s", tid, op, offset, length, &started,
                    phase) == 6 &&
        std::strcmp(phase, "idle") != 0)
      v.emplace_back(line, now - started);
  }
  return v;
}

void dump(State &s, const char *why)
{
  const double now = monotonic();
  char head[512];
  std::snprintf(head, sizeof head, "hangdump: begin (%s) at %.2f s, nbdkit pid %d, %zu threads\n",
                why, now, s.pid, s.threads.size());
  out(head);
  for (auto &[tid, t] : s.threads) {
    // A thread on a CPU shows no kernel stack, and its syscall file says
    // only "running".  One that runs in the kernel for long (direct
    // reclaim) is still taken off the CPU now and then, runnable: look
    // again, a millisecond apart, until its stack shows.
    int looks = 0;
    std::string stat, stack;
    size_t close = std::string::npos;
    char state = '?';
    for (;;) {
      stat.assign(read_buf, t.stat.read_all());
      // "tid (comm) state ...": comm may hold spaces; the state follows ')'.
      close = stat.rfind(')');
      state = close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
      stack.assign(read_buf, t.stack.read_all());
      if (state != 'R' || !stack.empty() || ++looks >= running_looks) break;
      const timespec ms{0, 1000000};
      ::nanosleep(&ms, nullptr);
    }
    const std::string comm = close != std::string::npos
                               ? stat.substr(stat.find('(') + 1, close - stat.find('(') - 1)
                               : "?";
    std::string wchan(read_buf, t.wchan.read_all());
    std::string sys(read_buf, t.syscall.read_all());
    while (!sys.empty() && sys.back() == '\n')
      sys.pop_back();
    std::snprintf(head, sizeof head, "thread %d (%s) state %c wchan %s syscall %s\n", tid,
                  comm.c_str(), state, wchan.empty() ? "?" : wchan.c_str(),
                  sys.empty() ? "?" : sys.c_str());
    out("hangdump: ");
    out(head);
    if (looks > 0) {
      std::snprintf(head, sizeof head,
                    stack.empty() ? "hangdump:   on a CPU at each of %d looks, 1 ms apart\n"
                                  : "hangdump:   on a CPU at %d looks, 1 ms apart, then off it\n",
                    looks);
      out(head);
    }
    // "-1 SP PC": in the kernel but not in a system call (a page fault):
    // name the mapping the user-space pc is in.
    unsigned long long sp = 0, pc = 0;
    if (std::sscanf(sys.c_str(), "-1 %llx %llx", &sp, &pc) == 2 && s.maps.fd >= 0) {
      const std::string maps(read_buf, s.maps.read_all());
      size_t at = 0;
      while (at < maps.size()) {
        const size_t end = maps.find('\n', at);
        const std::string line = maps.substr(at, end == std::string::npos ? end : end - at);
        unsigned long long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx", &lo, &hi) == 2 && pc >= lo && pc < hi) {
          std::snprintf(head, sizeof head, "hangdump:   user pc 0x%llx (offset 0x%llx) in ", pc,
                        pc - lo);
          out(head);
          out(line + "\n");
          break;
        }
        if (end == std::string::npos) break;
        at = end + 1;
      }
    }
    out_lines("  ", stack.data(), stack.size());
  }
  if (s.requests) {
    out("hangdump: requests in flight (" + s.requests_path + "; age = now - started):\n");
    for (const auto &[line, age] : in_flight(s, now)) {
      std::snprintf(head, sizeof head, "  age %8.2f s  ", age);
      out("hangdump: ");
      out(head);
      const size_t last = line.find_last_not_of(' ');
      out(line.substr(0, last + 1) + "\n");
    }
  } else if (!s.requests_path.empty()) {
    out("hangdump: no requests file at " + s.requests_path + "\n");
  }
  for (Source &src : s.globals) {
    out("hangdump: " + src.name + ":\n");
    const size_t n = src.read_all();
    out_lines("  ", read_buf, n);
  }
  out("hangdump: end\n");
  flush_out();
}

[[noreturn]] void usage(const char *why)
{
  std::fprintf(stderr,
               "vm-hangdump: %s\nusage: vm-hangdump --pid PID [--requests FILE] [--trigger TTY] "
               "[--self-trigger SECONDS] [--nbd NAME]\n",
               why);
  std::exit(2);
}

} // namespace

int main(int argc, char **argv)
{
  State s;
  const char *trigger = nullptr;
  double self_trigger = 20;
  std::string nbd = "nbd0";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char *v = argv[++i];
    if (a == "--pid") s.pid = std::atoi(v);
    else if (a == "--requests") s.requests_path = v;
    else if (a == "--trigger") trigger = v;
    else if (a == "--self-trigger") self_trigger = std::atof(v);
    else if (a == "--nbd") nbd = v;
    else usage(("unknown option " + a).c_str());
  }
  if (s.pid <= 0) usage("--pid is required");
  s.maps = open_source("/proc/" + std::to_string(s.pid) + "/maps");
  if (::mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    std::fprintf(stderr, "vm-hangdump: mlockall: %s (going on unlocked)\n", std::strerror(errno));
  s.global_patterns = {"/proc/meminfo",
                       "/proc/pressure/memory",
                       "/proc/" + std::to_string(s.pid) + "/status",
                       "/sys/kernel/debug/nbd/" + nbd + "/tasks",
                       "/sys/kernel/debug/block/" + nbd + "/hctx*/busy",
                       "/sys/kernel/debug/block/" + nbd + "/hctx*/dispatch",
                       "/sys/kernel/debug/block/" + nbd + "/hctx*/tags"};
  int tty = -1;
  if (trigger) {
    tty = ::open(trigger, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty < 0) {
      std::fprintf(stderr, "vm-hangdump: %s: %s\n", trigger, std::strerror(errno));
      return 1;
    }
    termios t{};
    if (::tcgetattr(tty, &t) == 0) {
      ::cfmakeraw(&t);
      ::tcsetattr(tty, TCSANOW, &t);
    }
  }
  std::printf("hangdump: watching nbdkit pid %d%s%s\n", s.pid, trigger ? ", trigger " : "",
              trigger ? trigger : "");
  std::fflush(stdout);
  bool self_dumped = false;
  std::string pending;
  while (::kill(s.pid, 0) == 0) {
    refresh_threads(s);
    refresh_globals(s);
    warm(s);
    if (!self_dumped && self_trigger > 0) {
      for (const auto &[line, age] : in_flight(s, monotonic()))
        if (age >= self_trigger) {
          self_dumped = true;
          char why[96];
          std::snprintf(why, sizeof why, "a request has been in flight for %.0f s", age);
          dump(s, why);
          break;
        }
    }
    pollfd p{tty, POLLIN, 0};
    const int r = tty >= 0 ? ::poll(&p, 1, 2000) : (::sleep(2), 0);
    if (r > 0 && (p.revents & POLLIN)) {
      char buf[64];
      const ssize_t n = ::read(tty, buf, sizeof buf);
      if (n > 0) pending.append(buf, static_cast<size_t>(n));
      if (pending.find('\n') != std::string::npos || pending.find('\r') != std::string::npos) {
        pending.clear();
        dump(s, "asked");
      }
    }
  }
  std::printf("hangdump: nbdkit pid %d has exited\n", s.pid);
  return 0;
}
