#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace kiste::cli {

std::string human(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB"};
  int u = 0;
  while (bytes >= 1000 && u < 3) {
    bytes /= 1000;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

bool want_tty(const std::string& progress_flag) {
  if (progress_flag == "tty") return true;
  if (progress_flag == "plain") return false;
  return isatty(STDERR_FILENO) != 0;
}

LineProgress::~LineProgress() {
  std::lock_guard l(mu_);
  erase_live();
}

void LineProgress::set_label(const image::Digest& d, std::string label, std::string done_word) {
  std::lock_guard l(mu_);
  labels_[d.str()] = Label{std::move(label), std::move(done_word)};
}

std::string LineProgress::name_of(const std::string& digest) const {
  auto it = labels_.find(digest);
  std::string shortd = digest.substr(0, 19);
  return it == labels_.end() ? "blob " + shortd : it->second.name;
}

void LineProgress::blob_started(const image::Descriptor& d) {
  if (!tty_) return;
  std::lock_guard l(mu_);
  live_.push_back(
      {d.digest.str(), static_cast<uint64_t>(d.size), 0, std::chrono::steady_clock::now()});
}

void LineProgress::layer_started(const image::Descriptor& d, size_t index, size_t count) {
  set_label(d.digest, fmt::format("layer {}/{} {}", index, count, d.digest.str().substr(0, 19)),
            "unpacked");
  blob_started(d);
}

void LineProgress::blob_bytes(const image::Descriptor& d, uint64_t n) {
  if (!tty_) return;
  std::lock_guard l(mu_);
  bool first = false;  // a blob's first bytes always draw: every blob shows up at least once
  for (auto& b : live_) {
    if (b.digest != d.digest.str()) continue;
    first = b.bytes == 0;
    b.bytes += n;
  }
  auto now = std::chrono::steady_clock::now();
  if (!first && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw_live(now);
}

void LineProgress::blob_done(const image::Descriptor& d, Outcome o) {
  if (quiet_) return;
  std::lock_guard l(mu_);
  erase_live();
  std::erase_if(live_, [&](const Live& b) { return b.digest == d.digest.str(); });
  std::string what = o == Outcome::Copied    ? "copied"
                     : o == Outcome::Mounted ? "mounted"
                                             : "exists";
  if (auto it = labels_.find(d.digest.str()); it != labels_.end() && !it->second.done_word.empty()) {
    what = it->second.done_word;
  }
  std::fprintf(stderr, "%s: %s (%s)\n", name_of(d.digest.str()).c_str(), what.c_str(),
               human(static_cast<double>(d.size)).c_str());
}

// Called with mu_ held.
void LineProgress::draw_live(std::chrono::steady_clock::time_point now) {
  erase_live();
  for (const auto& b : live_) {
    double secs = std::chrono::duration<double>(now - b.start).count();
    double rate = secs > 0 ? static_cast<double>(b.bytes) / secs : 0;
    double left = b.size > b.bytes ? static_cast<double>(b.size - b.bytes) : 0;
    std::fprintf(stderr, "\r\033[K%s: %s / %s  %s/s  ETA %.0fs\n", name_of(b.digest).c_str(),
                 human(static_cast<double>(b.bytes)).c_str(),
                 human(static_cast<double>(b.size)).c_str(), human(rate).c_str(),
                 rate > 0 ? left / rate : 0.0);
    ++drawn_;
  }
}

// Moves the cursor back over the live lines and clears them. Called with mu_ held.
void LineProgress::erase_live() {
  if (drawn_ == 0) return;
  std::fprintf(stderr, "\033[%dA\r\033[J", drawn_);
  drawn_ = 0;
}

}  // namespace kiste::cli
