#pragma once
// Progress on stderr for everything that moves bytes: pull, push, copy (blobs), and the
// unpacking of `run` and `import` (layers). One printer, so they all look alike.
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <kiste/image/copy.hpp>

namespace kiste::cli {

[[nodiscard]] std::string human(double bytes);
// --progress=auto|tty|plain: whether to draw live lines (auto: when stderr is a terminal).
[[nodiscard]] bool want_tty(const std::string& progress_flag);

// Thread-safe: one line per finished blob; on a TTY also a live line per blob in flight with
// its bytes so far, rate and ETA, redrawn in place.
class LineProgress final : public image::CopyProgress {
 public:
  LineProgress(bool quiet, bool tty) : quiet_(quiet), tty_(tty && !quiet) {}
  ~LineProgress() override;
  // Names a blob in its lines ("checking rootfs.tar") instead of "blob sha256:…", and the word
  // for a finished one ("unpacked" instead of "copied").
  void set_label(const image::Digest& d, std::string label, std::string done_word = "");
  void blob_started(const image::Descriptor& d) override;
  // "layer 2/3 sha256:…: 1.2 MB / 3.4 MB …", then "…: unpacked (3.4 MB)".
  void layer_started(const image::Descriptor& d, size_t index, size_t count) override;
  void blob_bytes(const image::Descriptor& d, uint64_t n) override;
  void blob_done(const image::Descriptor& d, Outcome o) override;

 private:
  struct Live {
    std::string digest;
    uint64_t size;
    uint64_t bytes;
    std::chrono::steady_clock::time_point start;
  };
  struct Label {
    std::string name;
    std::string done_word;
  };
  [[nodiscard]] std::string name_of(const std::string& digest) const;
  void draw_live(std::chrono::steady_clock::time_point now);
  void erase_live();

  bool quiet_;
  bool tty_;
  int drawn_ = 0;  // live lines on screen
  std::mutex mu_;
  std::vector<Live> live_;
  std::map<std::string, Label> labels_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace kiste::cli
