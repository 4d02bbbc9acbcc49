#include "free_budget.hpp"

#include "config.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string_view>
#include <unistd.h>

namespace fakecuda {
namespace {

// Far more than 64 sizes need; a larger file is certainly not a budget.
constexpr std::size_t kMaxFileBytes = 64 * 1024;

enum class ReadResult { Ok, Missing, Failed };

ReadResult read_small_file(const std::string &path, std::string &out, std::string &why)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return ReadResult::Missing;
    why = std::string("open: ") + std::strerror(errno);
    return ReadResult::Failed;
  }
  out.clear();
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = std::string("read: ") + std::strerror(errno);
      ::close(fd);
      return ReadResult::Failed;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > kMaxFileBytes) {
      why = "larger than " + std::to_string(kMaxFileBytes) + " bytes";
      ::close(fd);
      return ReadResult::Failed;
    }
  }
  ::close(fd);
  return ReadResult::Ok;
}

} // namespace

FreeBudget::FreeBudget(std::string path, std::vector<std::uint64_t> configured)
  : path_(std::move(path)), configured_(std::move(configured)), current_(configured_)
{
}

std::uint64_t FreeBudget::current(int gpu)
{
  const auto index = static_cast<std::size_t>(gpu);
  std::lock_guard lk(mu_);
  if (!path_.empty()) {
    std::string content, why;
    switch (read_small_file(path_, content, why)) {
    case ReadResult::Missing: current_ = configured_; break;
    case ReadResult::Failed: complain(content, why); break;
    case ReadResult::Ok:
      if (!apply(content, why)) complain(content, why);
      break;
    }
  }
  return current_.at(index);
}

bool FreeBudget::apply(const std::string &content, std::string &why)
{
  std::vector<std::uint64_t> next = configured_;
  std::size_t entry = 0;
  std::string_view rest(content);
  for (;;) {
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front())))
      rest.remove_prefix(1);
    if (rest.empty()) break;
    std::size_t len = 0;
    while (len < rest.size() && !std::isspace(static_cast<unsigned char>(rest[len])))
      ++len;
    const std::string_view word = rest.substr(0, len);
    rest.remove_prefix(len);
    if (entry == next.size()) {
      why = "more entries than the " + std::to_string(next.size()) + " GPU(s)";
      return false;
    }
    const auto size = parse_size(word);
    if (!size) {
      why = "entry " + std::to_string(entry) + " ('" + std::string(word.substr(0, 64)) +
            "') is not a size such as 512M or 4096";
      return false;
    }
    next[entry++] = *size;
  }
  current_ = std::move(next); // an empty file: every GPU back to its configured free
  reported_.reset();
  return true;
}

void FreeBudget::complain(const std::string &content, const std::string &why)
{
  // Keyed by what is wrong too: an unreadable file has no content.
  std::string key = why + '\n' + content;
  if (reported_ && *reported_ == key) return;
  reported_ = std::move(key);
  std::fprintf(stderr,
               "fakecuda: FAKECUDA_FREE_FILE: %s: %s; ignored (free memory stays as last read)\n",
               path_.c_str(), why.c_str());
}

} // namespace fakecuda
