#include <kiste/builder/context_hash_cache.hpp>

#include <charconv>
#include <ctime>

#include <kiste/base/sys.hpp>

namespace kiste::builder {

namespace {

constexpr std::string_view kHeader = "kiste-context-hash-v1\n";
constexpr size_t kMaxFileBytes = size_t{256} << 20;
// Coarse kernel timestamps advance by a jiffy (<= 10 ms): a file changed within this window
// before it was hashed could change again without a new stamp.
constexpr int64_t kRacyNs = 100'000'000;

template <class T>
bool parse_num(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

std::filesystem::path ContextHashCache::file_for(const std::filesystem::path& cache_root,
                                                 const std::filesystem::path& context_dir) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(context_dir, ec).lexically_normal();
  return cache_root / std::string(image::Digest::of(abs.string()).hex());
}

ContextHashCache ContextHashCache::load(std::filesystem::path file) {
  ContextHashCache c;
  c.file_ = std::move(file);
  auto text = sys::read_file(c.file_, kMaxFileBytes);
  if (!text || !text->starts_with(kHeader)) return c;
  std::string_view t(*text);
  t.remove_prefix(kHeader.size());
  // digest size mtime_ns ctime_ns ino dev path
  while (!t.empty()) {
    size_t nl = t.find('\n');
    if (nl == std::string_view::npos) break;  // a torn last line
    std::string_view line = t.substr(0, nl);
    t.remove_prefix(nl + 1);
    std::string_view f[7];
    bool ok = true;
    for (int i = 0; i < 6 && ok; ++i) {
      size_t sp = line.find(' ');
      if (sp == std::string_view::npos) ok = false;
      else {
        f[i] = line.substr(0, sp);
        line.remove_prefix(sp + 1);
      }
    }
    f[6] = line;
    if (!ok || f[6].empty()) continue;
    auto d = image::Digest::parse(f[0]);
    Entry e;
    if (!d || !parse_num(f[1], e.stamp.size) || !parse_num(f[2], e.stamp.mtime_ns) ||
        !parse_num(f[3], e.stamp.ctime_ns) || !parse_num(f[4], e.stamp.ino) ||
        !parse_num(f[5], e.stamp.dev)) {
      continue;
    }
    e.digest = *d;
    c.entries_.insert_or_assign(std::string(f[6]), e);
  }
  return c;
}

std::optional<image::Digest> ContextHashCache::find(std::string_view path,
                                                    const FileStamp& stamp) const {
  auto it = entries_.find(path);
  if (it == entries_.end() || !(it->second.stamp == stamp)) return std::nullopt;
  ++hits_;
  return it->second.digest;
}

void ContextHashCache::put(std::string_view path, const FileStamp& stamp,
                           const image::Digest& digest) {
  if (path.find('\n') != std::string_view::npos) return;
  // Racily clean: a file changed in the last second may change again with the same stamp.
  if (now_ns() - std::max(stamp.mtime_ns, stamp.ctime_ns) < kRacyNs) {
    if (entries_.erase(std::string(path)) > 0) dirty_ = true;
    return;
  }
  auto [it, inserted] = entries_.try_emplace(std::string(path));
  if (!inserted && it->second.stamp == stamp && it->second.digest == digest) return;
  it->second = Entry{.stamp = stamp, .digest = digest};
  dirty_ = true;
}

Status ContextHashCache::save() {
  if (!dirty_ || file_.empty()) return {};
  std::string out(kHeader);
  for (const auto& [path, e] : entries_) {
    out += fmt::format("{} {} {} {} {} {} {}\n", e.digest.str(), e.stamp.size, e.stamp.mtime_ns,
                       e.stamp.ctime_ns, e.stamp.ino, e.stamp.dev, path);
  }
  KISTE_TRY(sys::mkdir_all(file_.parent_path(), 0700));
  KISTE_TRY(sys::write_file_atomic(file_, out));
  dirty_ = false;
  return {};
}

}  // namespace kiste::builder
