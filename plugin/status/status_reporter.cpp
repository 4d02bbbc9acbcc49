#include "status/status_reporter.hpp"

#include "byte_size.hpp"
#include "logging.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace vram {

std::string write_file_atomically(const std::string &path, const std::string &text)
{
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + tmp + ": " + errno_text(errno);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(tmp.c_str());
      return "cannot write " + tmp + ": " + errno_text(e);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return "cannot write " + tmp + ": " + errno_text(e);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return "cannot rename " + tmp + " to " + path + ": " + errno_text(e);
  }
  return {};
}

namespace {

// compress=: what the pages take, like zram's mm_stat.
std::string compress_text(const VramStore &store)
{
  if (!store.compressed()) return "compress=none\n";
  const auto s = store.compress_stats();
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  return "compress=" + compress::format_codec(store.codec()) + "\n" +
         strformat("vram_limit=%llu\noriginal_bytes=%llu\ncompressed_bytes=%llu\n"
                   "slot_bytes=%llu\nsame_pages=%llu\nstored_pages=%llu\nwhole_pages=%llu\n"
                   "compacted_chunks=%llu\n",
                   u(store.vram_limit()), u(s.pages.original_bytes()), u(s.pages.compressed_bytes),
                   u(s.vram.slot_bytes), u(s.pages.same_pages), u(s.pages.stored_pages),
                   u(s.pages.whole_pages), u(s.compacted_chunks));
}

double ms(std::chrono::steady_clock::duration d)
{
  return std::chrono::duration<double, std::milli>(d).count();
}

// idle-release=: whether the GPU rests, since when, and its wakes.
std::string rest_text(const VramStore &store)
{
  const auto idle = store.idle_release();
  const auto stats = store.rest_stats();
  if (!idle || !stats) return "idle_release=off\n";
  using namespace std::chrono;
  const auto since = system_clock::now() - (steady_clock::now() - stats->since);
  return strformat("idle_release=%.3f\ngpu_state=%s\ngpu_state_since=%lld\nrests=%llu\nwakes=%llu\n"
                   "failed_wakes=%llu\nlast_wake_ms=%.1f\nworst_wake_ms=%.1f\n"
                   "rested_seconds=%.0f\nwake_reserve=%llu\n",
                   duration<double>(*idle).count(), IdleRest::to_string(stats->state),
                   static_cast<long long>(duration_cast<seconds>(since.time_since_epoch()).count()),
                   static_cast<unsigned long long>(stats->rests),
                   static_cast<unsigned long long>(stats->wakes),
                   static_cast<unsigned long long>(stats->failed_wakes), ms(stats->last_wake),
                   ms(stats->worst_wake), duration<double>(stats->rested).count(),
                   static_cast<unsigned long long>(store.wake_reserve()));
}

} // namespace

std::string StatusReporter::status_text(const VramStore &store, const std::string &gpu_label)
{
  return strformat("pid=%ld\n", static_cast<long>(::getpid())) + "gpu=" + gpu_label + "\n" +
         "allocation=" + std::string(to_string(store.allocation())) + "\n" +
         strformat("size=%llu\nlazy_chunk=%llu\nheld=%llu\nspare=%llu\n",
                   static_cast<unsigned long long>(store.size()),
                   static_cast<unsigned long long>(store.lazy_chunk()),
                   static_cast<unsigned long long>(store.held()),
                   static_cast<unsigned long long>(store.spare())) +
         "state=" + (store.failed() ? "failed" : "serving") + "\n" +
         "share_gpu=" + std::string(to_string(store.share_gpu())) + "\n" +
         strformat("shared_gpu_detections=%llu\n",
                   static_cast<unsigned long long>(store.shared_gpu_detections())) +
         "sharing_now=" + (store.sharing_now() ? "yes" : "no") + "\n" + compress_text(store) +
         rest_text(store);
}

StatusReporter::StatusReporter(const VramStore &store, Settings settings)
  : store_(store), settings_(std::move(settings))
{
  logged_held_ = store_.held(); // the serving line said it; the first change is logged at once
  tick(false);
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

StatusReporter::~StatusReporter()
{
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  tick(true);
  if (!settings_.status_file.empty()) ::unlink(settings_.status_file.c_str());
}

void StatusReporter::run(std::stop_token stop)
{
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    wake_.wait_for(lock, stop, settings_.poll, [] { return false; });
    if (stop.stop_requested()) break;
    lock.unlock();
    tick(false);
    lock.lock();
  }
}

void StatusReporter::tick(bool final)
{
  const uint64_t held = store_.held();
  const uint64_t spare = store_.spare();
  const bool failed = store_.failed();
  const uint64_t detections = store_.shared_gpu_detections();
  const bool sharing = store_.sharing_now();
  const auto pages = store_.compress_stats();
  const std::array<uint64_t, 4> page_figures{pages.pages.original_bytes(),
                                             pages.pages.compressed_bytes, pages.pages.same_pages,
                                             pages.compacted_chunks};
  const auto rest = store_.rest_stats();
  // Each rest and wake, and each change of state, is written (not the time
  // rested, which grows while the GPU rests).
  const std::array<uint64_t, 4> rest_figures{rest ? static_cast<uint64_t>(rest->state) : 0,
                                             rest ? rest->rests : 0, rest ? rest->wakes : 0,
                                             rest ? rest->failed_wakes : 0};
  if (!settings_.status_file.empty() && !final &&
      (!have_written_ || held != written_held_ || spare != written_spare_ ||
       failed != written_failed_ || detections != written_detections_ ||
       sharing != written_sharing_ || page_figures != written_pages_ ||
       rest_figures != written_rest_)) {
    const std::string error =
      write_file_atomically(settings_.status_file, status_text(store_, settings_.gpu_label));
    if (error.empty()) {
      have_written_ = true;
      written_held_ = held;
      written_spare_ = spare;
      written_failed_ = failed;
      written_detections_ = detections;
      written_sharing_ = sharing;
      written_pages_ = page_figures;
      written_rest_ = rest_figures;
    } else if (!write_error_logged_) {
      write_error_logged_ = true;
      log_warning("status-file=: " + error + " (will keep trying)");
    }
  }
  if (rest && !final) log_rest(*rest);
  const auto now = std::chrono::steady_clock::now();
  if (store_.allocation() == Allocation::lazy && held != logged_held_ &&
      (final || !have_logged_ || now - last_log_ >= settings_.log_interval)) {
    const uint64_t chunk = store_.lazy_chunk();
    const unsigned long long spares = chunk ? spare / chunk : 0;
    const unsigned long long in_use = chunk ? held / chunk - spares : 0;
    std::string line = strformat("%s: VRAM held: %s (%llu chunk%s of %s%s) for a %s export",
                                 settings_.gpu_label.c_str(), format_byte_size(held).c_str(),
                                 in_use, in_use == 1 ? "" : "s", format_byte_size(chunk).c_str(),
                                 spares ? strformat(", and %llu spare", spares).c_str() : "",
                                 format_byte_size(store_.size()).c_str());
    if (store_.compressed())
      line +=
        strformat("; it holds %s of pages in %s compressed (%llu same-filled, %llu incompressible)",
                  format_byte_size(pages.pages.original_bytes()).c_str(),
                  format_byte_size(pages.pages.compressed_bytes).c_str(),
                  static_cast<unsigned long long>(pages.pages.same_pages),
                  static_cast<unsigned long long>(pages.pages.whole_pages));
    log_info(line);
    logged_held_ = held;
    last_log_ = now;
    have_logged_ = true;
  }
}

// idle-release=: a line per rest and per wake (this thread's, so the
// request that wakes the GPU writes nothing).
void StatusReporter::log_rest(const IdleRest::Stats &s)
{
  using namespace std::chrono;
  if (s.rests > logged_rests_ && s.state == IdleRest::State::resting)
    log_info(settings_.gpu_label + ": resting: no request for " +
             strformat("%.0f s", duration<double>(*store_.idle_release()).count()) +
             ", the CUDA context is given back and the GPU may idle; its " +
             format_byte_size(store_.held()) + " of VRAM is kept, and the next request wakes it (" +
             format_byte_size(store_.wake_reserve()) +
             " of host memory, what the context held, is kept for that)");
  if (s.wakes > logged_wakes_)
    log_info(settings_.gpu_label + strformat(": awake again: the wake took %.1f ms (the longest "
                                             "so far %.1f ms); %llu wakes, %.0f s rested in all",
                                             ms(s.last_wake), ms(s.worst_wake),
                                             static_cast<unsigned long long>(s.wakes),
                                             duration<double>(s.rested).count()));
  if (s.failed_wakes > logged_failed_wakes_)
    log_warning(settings_.gpu_label +
                strformat(": %llu wake(s) of the GPU failed so far (the requests that found it "
                          "resting failed with EIO; the log says why)",
                          static_cast<unsigned long long>(s.failed_wakes)));
  logged_rests_ = s.rests;
  logged_wakes_ = s.wakes;
  logged_failed_wakes_ = s.failed_wakes;
}

} // namespace vram
