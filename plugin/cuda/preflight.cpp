#include "cuda/preflight.hpp"

#include "logging.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace vram {
namespace {

class Fd {
public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset()
  {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_;
};

void write_all(int fd, const std::string &s)
{
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

Inventory failure(std::string message)
{
  Inventory inv;
  inv.error = std::move(message);
  return inv;
}

} // namespace

Inventory probe_gpus_in_child(unsigned init_timeout_s, const WantFree &want_free,
                              unsigned timeout_s)
{
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return failure(std::string("cannot probe the GPU: pipe: ") + errno_text(errno));
  Fd read_end(fds[0]), write_end(fds[1]);

  // The child must not write out what the parent's stdio still buffers
  // (--dump-plugin's first lines): anything in it that flushes, the driver
  // or a sanitizer's _exit(), would print them a second time.
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return failure(std::string("cannot probe the GPU: fork: ") + errno_text(errno));
  if (pid == 0) {
    read_end.reset();
    write_all(write_end.get(), serialize(probe_gpus(init_timeout_s, want_free)));
    ::_exit(0);
  }
  write_end.reset();

  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      timed_out = n == 0;
      break;
    }
    char buf[4096];
    const ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    text.append(buf, static_cast<size_t>(got));
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}

  if (timed_out)
    return failure("the NVIDIA driver did not answer within " + std::to_string(timeout_s) +
                   " s while probing the GPUs; check nvidia-smi and the kernel log");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return failure("the GPU probe process crashed inside the NVIDIA driver (" +
                   (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                        : "exit status " + std::to_string(WEXITSTATUS(status))) +
                   "); check nvidia-smi and the kernel log");
  auto inv = deserialize(text);
  if (!inv) return failure("the GPU probe process returned garbage; this is a bug in nbdkit-vram");
  return *inv;
}

} // namespace vram
