#include <kiste/builder/build_context.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <kiste/base/split.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::builder {
namespace {

// Matches a bracket class at p[i] ('[' already seen at i-1). Returns the index after ']'.
Result<std::pair<bool, size_t>> match_class(std::string_view p, size_t i, char c) {
  bool negate = false;
  if (i < p.size() && (p[i] == '^' || p[i] == '!')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  while (i < p.size() && (first || p[i] != ']')) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    ++i;
    char hi = lo;
    if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
      hi = p[i + 1];
      if (hi == '\\' && i + 2 < p.size()) {
        hi = p[i + 2];
        ++i;
      }
      i += 2;
    }
    if (lo <= c && c <= hi) matched = true;
  }
  if (i >= p.size()) return fail(Errc::InvalidArgument, "syntax error in pattern: unterminated `[`");
  return std::pair{matched != negate, i + 1};
}

Result<bool> match_at(std::string_view p, size_t pi, std::string_view s, size_t si, int depth) {
  if (depth > 64) return fail(Errc::InvalidArgument, "pattern too complex");
  while (pi < p.size()) {
    char c = p[pi];
    if (c == '*') {
      bool dbl = pi + 1 < p.size() && p[pi + 1] == '*';
      if (dbl) {
        size_t next = pi + 2;
        if (next < p.size() && p[next] == '/') {
          // `**/`: zero directories, or any prefix ending in '/'.
          KISTE_ASSIGN_OR_RETURN(bool z, match_at(p, next + 1, s, si, depth + 1));
          if (z) return true;
        }
        for (size_t k = si; k <= s.size(); ++k) {
          KISTE_ASSIGN_OR_RETURN(bool m, match_at(p, next, s, k, depth + 1));
          if (m) return true;
        }
        return false;
      }
      for (size_t k = si; k <= s.size(); ++k) {
        KISTE_ASSIGN_OR_RETURN(bool m, match_at(p, pi + 1, s, k, depth + 1));
        if (m) return true;
        if (k < s.size() && s[k] == '/') break;
      }
      return false;
    }
    if (si >= s.size()) return false;
    if (c == '?') {
      if (s[si] == '/') return false;
      ++pi;
      ++si;
      continue;
    }
    if (c == '[') {
      if (s[si] == '/') return false;
      KISTE_ASSIGN_OR_RETURN(auto r, match_class(p, pi + 1, s[si]));
      if (!r.first) return false;
      pi = r.second;
      ++si;
      continue;
    }
    if (c == '\\') {
      if (pi + 1 >= p.size()) return fail(Errc::InvalidArgument, "syntax error in pattern: trailing `\\`");
      c = p[++pi];
    }
    if (s[si] != c) return false;
    ++pi;
    ++si;
  }
  return si == s.size();
}

Status validate_pattern(std::string_view p) {
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      if (++i >= p.size()) return fail(Errc::InvalidArgument, "syntax error in pattern: trailing `\\`");
    } else if (p[i] == '[') {
      size_t j = i + 1;
      if (j < p.size() && (p[j] == '^' || p[j] == '!')) ++j;
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') j += (p[j] == '\\') ? 2 : 1;
      if (j >= p.size()) return fail(Errc::InvalidArgument, "syntax error in pattern: unterminated `[`");
      i = j;
    }
  }
  return {};
}

}  // namespace

Result<bool> glob_match(std::string_view pattern, std::string_view path) {
  KISTE_TRY(validate_pattern(pattern));
  return match_at(pattern, 0, path, 0, 0);
}

std::string clean_rel(std::string_view p) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view seg = p.substr(i, j - i);
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.push_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (auto s : parts) {
    if (!out.empty()) out += '/';
    out.append(s);
  }
  return out;
}

Result<IgnoreMatcher> IgnoreMatcher::parse(std::string_view text) {
  IgnoreMatcher m;
  int line = 0;
  for (std::string_view l : split(text, '\n')) {
    ++line;
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ' || l.back() == '\t')) l.remove_suffix(1);
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    if (l.empty() || l.front() == '#') continue;
    Pattern pat;
    if (l.front() == '!') {
      pat.exclusion = true;
      l.remove_prefix(1);
      while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
      if (l.empty()) return failf(Errc::InvalidArgument, "ignore file line {}: illegal exclusion pattern `!`", line);
    }
    pat.glob = clean_rel(l);
    if (pat.glob.empty()) continue;  // "/" or "." would ignore nothing Docker keeps
    // Validate once so bad patterns fail early.
    auto v = glob_match(pat.glob, "");
    if (!v) return failf(Errc::InvalidArgument, "ignore file line {}: pattern `{}`: {}", line, pat.glob, v.error().message);
    m.has_exclusions_ = m.has_exclusions_ || pat.exclusion;
    m.patterns_.push_back(std::move(pat));
  }
  return m;
}

Result<IgnoreMatcher> IgnoreMatcher::load(const std::filesystem::path& dir) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd dirfd, sys::open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
  for (const char* name : {".containerignore", ".dockerignore"}) {
    auto p = dir / name;
    auto fd = sys::open_regular_in_root(dirfd.get(), name);
    if (!fd && fd.error().sys_errno == ENOENT) continue;
    if (!fd) return std::unexpected(std::move(fd).error().with_context("build context"));
    KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_all(fd->get(), p.native(), 1 << 20));
    return with_context(parse(text), fmt::format("read {}", quote(p.string())));
  }
  return IgnoreMatcher{};
}

bool IgnoreMatcher::ignored(std::string_view rel) const {
  bool out = false;
  for (const auto& p : patterns_) {
    // A pattern matches the path itself or any of its parent directories.
    bool m = false;
    size_t end = rel.size();
    for (;;) {
      auto r = glob_match(p.glob, rel.substr(0, end));
      if (r && *r) {
        m = true;
        break;
      }
      size_t slash = rel.rfind('/', end == 0 ? 0 : end - 1);
      if (slash == std::string_view::npos || end == 0) break;
      end = slash;
    }
    if (m) out = !p.exclusion;
  }
  return out;
}

namespace {

FileStamp stamp_of(const struct stat& st) {
  return {.size = static_cast<uint64_t>(st.st_size),
          .mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
          .ctime_ns = int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec,
          .ino = static_cast<uint64_t>(st.st_ino),
          .dev = static_cast<uint64_t>(st.st_dev)};
}

Status walk(int dirfd, const std::string& prefix, const IgnoreMatcher& ig,
            std::vector<ContextEntry>& out) {
  int fd = ::dup(dirfd);
  if (fd < 0) return std::unexpected(sys_error("dup", prefix));
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return std::unexpected(sys_error("fdopendir", prefix));
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string rel = prefix.empty() ? n : prefix + "/" + n;
    KISTE_ASSIGN_OR_RETURN(struct stat st, sys::fstatat(dirfd, n, AT_SYMLINK_NOFOLLOW));
    bool ign = ig.ignored(rel);
    ContextEntry e{.path = rel, .mode = static_cast<uint32_t>(st.st_mode & 07777),
                   .size = static_cast<uint64_t>(st.st_size), .stamp = stamp_of(st)};
    if (S_ISDIR(st.st_mode)) {
      if (ign && !ig.has_exclusions()) continue;
      e.type = ContextEntry::Type::Dir;
      if (!ign) out.push_back(e);
      KISTE_ASSIGN_OR_RETURN(UniqueFd sub, sys::openat(dirfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      KISTE_TRY(walk(sub.get(), rel, ig, out));
      continue;
    }
    if (ign) continue;
    if (S_ISLNK(st.st_mode)) {
      e.type = ContextEntry::Type::Symlink;
      KISTE_ASSIGN_OR_RETURN(e.link_target, sys::readlinkat(dirfd, n));
    } else if (!S_ISREG(st.st_mode)) {
      continue;  // sockets, fifos, devices are not part of a build context
    }
    out.push_back(std::move(e));
  }
  return {};
}

}  // namespace

Result<std::vector<ContextEntry>> walk_context(const std::filesystem::path& root,
                                               std::string_view rel, const IgnoreMatcher& ig) {
  std::string r = clean_rel(rel);
  KISTE_ASSIGN_OR_RETURN(UniqueFd rootfd, sys::open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::vector<ContextEntry> out;
  if (r.empty()) {
    KISTE_TRY(walk(rootfd.get(), "", ig, out));
    return out;
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_in_root(rootfd.get(), r, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  KISTE_ASSIGN_OR_RETURN(struct stat st, sys::fstat(fd.get(), r));
  if (ig.ignored(r) && !S_ISDIR(st.st_mode)) {
    return failf(Errc::NotFound, "{} is excluded by the ignore file", quote(r));
  }
  ContextEntry e{.path = r, .mode = static_cast<uint32_t>(st.st_mode & 07777),
                 .size = static_cast<uint64_t>(st.st_size), .stamp = stamp_of(st)};
  if (S_ISDIR(st.st_mode)) {
    e.type = ContextEntry::Type::Dir;
    out.push_back(e);
    KISTE_ASSIGN_OR_RETURN(UniqueFd dfd, sys::open_in_root(rootfd.get(), r, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    KISTE_TRY(walk(dfd.get(), r, ig, out));
  } else if (S_ISLNK(st.st_mode)) {
    e.type = ContextEntry::Type::Symlink;
    KISTE_ASSIGN_OR_RETURN(e.link_target, sys::readlinkat(rootfd.get(), r));
    out.push_back(e);
  } else if (S_ISREG(st.st_mode)) {
    out.push_back(e);
  } else {
    return failf(Errc::InvalidArgument, "{} is not a regular file, directory or symlink", quote(r));
  }
  return out;
}

Result<image::Digest> hash_entries(const std::filesystem::path& root, std::string_view rel,
                                   const std::vector<ContextEntry>& entries,
                                   ContextHashCache* cache) {
  std::string base = clean_rel(rel);
  image::Hasher h;
  KISTE_ASSIGN_OR_RETURN(UniqueFd rootfd, sys::open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::vector<char> buf(1 << 16);
  for (const auto& e : entries) {
    std::string_view p = e.path;
    if (!base.empty() && p.starts_with(base)) p.remove_prefix(base.size());
    h.update(p);
    h.update(fmt::format("|{}|{:o}|", static_cast<int>(e.type), e.mode));
    if (e.type == ContextEntry::Type::Symlink) {
      h.update(e.link_target);
    } else if (e.type == ContextEntry::Type::File) {
      std::optional<image::Digest> known = cache ? cache->find(e.path, e.stamp) : std::nullopt;
      if (!known) {
        KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_regular_in_root(rootfd.get(), e.path));
        // The stamp of what is read: a file replaced since the walk is keyed by its own stat.
        KISTE_ASSIGN_OR_RETURN(struct stat st, sys::fstat(fd.get(), e.path));
        image::Hasher fh;
        for (;;) {
          KISTE_ASSIGN_OR_RETURN(size_t n, sys::read_some(fd.get(), buf.data(), buf.size(), e.path));
          if (n == 0) break;
          fh.update(std::string_view(buf.data(), n));
        }
        known = fh.finish();
        if (cache && stamp_of(st) == e.stamp) cache->put(e.path, e.stamp, *known);
      }
      h.update(known->str());
    }
    h.update(std::string_view("\n"));
  }
  return h.finish();
}

}  // namespace kiste::builder
