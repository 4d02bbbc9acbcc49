// FAKECUDA_FREE_FILE: how much VRAM other programs have left us, adjustable
// while the code under test runs. cuMemGetInfo, cuMemAlloc and cuMemCreate
// re-read the file; entry i (whitespace-separated sizes) replaces GPU i's
// configured `free` for as long as the file says so.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace fakecuda {

class FreeBudget {
public:
  // `configured`: every GPU's `free` key from FAKECUDA_GPUS. Empty path:
  // off, the configured values always apply.
  FreeBudget(std::string path, std::vector<std::uint64_t> configured);

  // Re-reads the file and returns GPU `gpu`'s free setting: its entry in
  // the file, else its configured value. A missing or empty file means
  // "configured" for all; an unreadable or unparsable one is reported (once
  // per distinct content) and ignored, keeping the last valid reading.
  std::uint64_t current(int gpu);

private:
  // Applies the file's content; false (with `why` set) if unusable.
  bool apply(const std::string &content, std::string &why);
  void complain(const std::string &content, const std::string &why);

  const std::string path_;
  const std::vector<std::uint64_t> configured_;
  std::mutex mu_;
  std::vector<std::uint64_t> current_;  // guarded by mu_
  std::optional<std::string> reported_; // the problem last reported (guarded by mu_)
};

} // namespace fakecuda
