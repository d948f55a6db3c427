// Layer tars (image/layer_extract.hpp), the most hostile input kiste reads, extracted for real.
//
// The extraction runs on one worker thread that has its own mount namespace (a mount namespace
// belongs to a thread, not to the process): there every mount is remounted read-only and a
// fresh tmpfs (nosuid, nodev, noexec, 256 MiB) covers /tmp; the layer goes to /tmp/root. libFuzzer
// itself stays in the host's namespace on the main thread, so it can still write its corpus and
// crash artifacts. Per input, the worker asserts that nothing was written outside /tmp/root: an
// EROFS or EXDEV from the extractor can only come from a write that left the tmpfs, and /tmp
// must hold nothing but `root`. It also asserts no fd leaked, then wipes /tmp/root.
//
// The first input byte chooses the options (whiteout mode, compression, devices, owners);
// device nodes land on a nodev mount, so even an allowed one cannot be opened.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <kiste/base/unique_fd.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/layer_extract.hpp>

namespace im = kiste::image;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSandbox = "/tmp";
constexpr const char* kRoot = "/tmp/root";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "layer_extract_fuzzer: %s: %s\n", what.c_str(), std::strerror(errno));
  std::abort();
}

// Mount points as the calling thread sees them ("\040" and friends decoded).
std::vector<std::string> mount_points() {
  std::ifstream in("/proc/thread-self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, mp;
    f >> id >> parent >> dev >> root >> mp;
    std::string decoded;
    for (size_t i = 0; i < mp.size(); ++i) {
      if (mp[i] == '\\' && i + 3 < mp.size()) {
        decoded += static_cast<char>(std::stoi(mp.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        decoded += mp[i];
      }
    }
    out.push_back(decoded);
  }
  return out;
}

// This thread only: private propagation, everything read-only, a fresh tmpfs on /tmp.
void enter_sandbox() {
  if (::unshare(CLONE_NEWNS) != 0) die("unshare(CLONE_NEWNS) (the extract fuzzer needs root)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) die("make / private");
  std::vector<std::string> writable;
  for (const auto& mp : mount_points()) {
    struct statvfs sv {};
    if (::statvfs(mp.c_str(), &sv) != 0) continue;  // unreachable (overmounted): no path leads there
    unsigned long keep = sv.f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                      MS_NODIRATIME | MS_RELATIME);
    if (::mount(nullptr, mp.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, nullptr) != 0) {
      writable.push_back(mp);
    }
  }
  for (const auto& mp : writable) {
    std::fprintf(stderr, "layer_extract_fuzzer: note: %s stays writable (%s)\n", mp.c_str(),
                 std::strerror(errno));
  }
  if (::mount("kiste-fuzz", kSandbox, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=256m,mode=0700") != 0) {
    die("mount tmpfs on /tmp");
  }
  if (::mkdir(kRoot, 0755) != 0) die("mkdir /tmp/root");
  // With the rest read-only, a write outside the tmpfs fails with EROFS (checked without writing).
  for (const char* p : {"/", "/var", "/proc/sys/kernel/hostname"}) {
    if (::access(p, W_OK) == 0 || errno != EROFS) die(std::string(p) + " is still writable");
  }
}

size_t open_fds() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

void extract_one(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const uint8_t opt = data[0];
  im::ExtractOptions o;
  o.whiteouts = (opt & 1) ? im::WhiteoutMode::Overlay : im::WhiteoutMode::Apply;
  const auto compression = (opt >> 1) % 3 == 1   ? im::media_type::Compression::Gzip
                           : (opt >> 1) % 3 == 2 ? im::media_type::Compression::Zstd
                                                 : im::media_type::Compression::None;
  o.allow_devices = (opt & 8) != 0;
  o.same_owner = (opt & 16) != 0;
  o.limits = {.max_entries = 10'000, .max_path_length = 4096, .max_total_bytes = 64ull << 20,
              .max_entry_size = 16ull << 20};
  // Counted around the extraction only: between inputs libFuzzer opens fds of its own (the
  // symbolizer's pipes), and the main thread is blocked while the worker extracts.
  const size_t baseline_fds = open_fds();
  {
    kiste::UniqueFd root(::open(kRoot, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) die("open /tmp/root");
    im::StringReader reader(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
    auto r = im::extract_layer(reader, compression, root.get(), o);
    if (!r && (r.error().sys_errno == EROFS || r.error().sys_errno == EXDEV)) {
      std::fprintf(stderr, "layer_extract_fuzzer: a write left the extraction root: %s\n",
                   r.error().to_string().c_str());
      std::abort();
    }
  }
  for (const auto& e : fs::directory_iterator(kSandbox)) {
    if (e.path() != kRoot) {
      std::fprintf(stderr, "layer_extract_fuzzer: %s appeared beside the extraction root\n",
                   e.path().c_str());
      std::abort();
    }
  }
  if (open_fds() != baseline_fds) {
    std::fprintf(stderr, "layer_extract_fuzzer: fd leak: %zu open, %zu before:\n", open_fds(),
                 baseline_fds);
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      std::fprintf(stderr, "  %s -> %s\n", e.path().filename().c_str(),
                   fs::read_symlink(e.path(), ec).c_str());
    }
    std::abort();
  }
  std::error_code ec;
  fs::remove_all(kRoot, ec);
  if (ec || ::mkdir(kRoot, 0755) != 0) die("wipe /tmp/root");
}

// The worker: enters the sandbox once, then extracts each input handed to it.
class Worker {
 public:
  Worker() : thread_([this] { loop(); }) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [this] { return ready_; });
  }
  void run(const uint8_t* data, size_t size) {
    std::unique_lock lk(mu_);
    data_ = data;
    size_ = size;
    pending_ = true;
    cv_.notify_all();
    cv_.wait(lk, [this] { return !pending_; });
  }

 private:
  void loop() {
    enter_sandbox();
    std::unique_lock lk(mu_);
    ready_ = true;
    cv_.notify_all();
    for (;;) {
      cv_.wait(lk, [this] { return pending_; });
      extract_one(data_, size_);
      pending_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  bool pending_ = false;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed: the worker blocks forever between inputs and dies with the process.
  static Worker* worker = new Worker();
  worker->run(data, size);
  return 0;
}
