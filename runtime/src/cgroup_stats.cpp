#include <kiste/runtime/cgroup_stats.hpp>

#include <sys/stat.h>

#include <charconv>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include <kiste/base/sys.hpp>

namespace kiste::runtime {

namespace {

namespace fs = std::filesystem;

std::optional<uint64_t> parse_u64(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<std::string> read_small(const fs::path& file) {
  std::error_code ec;
  if (file.empty() || !fs::exists(file, ec)) return std::nullopt;
  auto text = sys::read_file(file, 1 << 16);
  if (!text) return std::nullopt;
  return std::move(*text);
}

std::optional<uint64_t> read_u64(const fs::path& dir, const char* name) {
  if (dir.empty()) return std::nullopt;
  auto text = read_small(dir / name);
  return text ? parse_u64(*text) : std::nullopt;
}

// The value of `key` in a flat-keyed file (memory.stat, cpu.stat).
std::optional<uint64_t> read_key(const fs::path& dir, const char* name, std::string_view key) {
  if (dir.empty()) return std::nullopt;
  auto text = read_small(dir / name);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  for (std::string k, v; in >> k >> v;) {
    if (k == key) return parse_u64(v);
  }
  return std::nullopt;
}

// usage minus the inactive file cache, as docker's CLI computes it.
std::optional<uint64_t> without_cache(std::optional<uint64_t> usage, std::optional<uint64_t> inactive) {
  if (usage && inactive && *inactive < *usage) return *usage - *inactive;
  return usage;
}

// BLOCK I/O: v1's "MAJ:MIN Read|Write N" lines, or v2 io.stat's "MAJ:MIN rbytes=N wbytes=N …".
void read_block(const StatsCgroups& d, StatsSample& s) {
  if (!d.blkio.empty()) {
    for (const char* name : {"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"}) {
      auto text = read_small(d.blkio / name);
      if (!text) continue;
      uint64_t r = 0, w = 0;
      std::istringstream in(*text);
      for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string dev, op, v;
        if (!(f >> dev >> op >> v) || dev.find(':') == std::string::npos) continue;
        auto n = parse_u64(v);
        if (n && op == "Read") r += *n;
        if (n && op == "Write") w += *n;
      }
      s.block_read = r;
      s.block_write = w;
      return;
    }
    return;
  }
  auto text = d.unified.empty() ? std::nullopt : read_small(d.unified / "io.stat");
  if (!text) return;
  uint64_t r = 0, w = 0;
  std::istringstream in(*text);
  for (std::string word; in >> word;) {
    auto take = [&](std::string_view key, uint64_t& sum) {
      if (word.starts_with(key)) {
        if (auto n = parse_u64(std::string_view(word).substr(key.size()))) sum += *n;
      }
    };
    take("rbytes=", r);
    take("wbytes=", w);
  }
  s.block_read = r;
  s.block_write = w;
}

}  // namespace

Result<StatsCgroups> stats_cgroups(std::string_view proc_cgroup, const fs::path& cgroup_root) {
  StatsCgroups out;
  std::error_code ec;
  bool any = false;
  std::istringstream in{std::string(proc_cgroup)};
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string ctrls = line.substr(a + 1, b - a - 1);
    std::string rel = line.substr(b + 1);
    if (rel.starts_with('/')) rel.erase(0, 1);
    if (rel.find("..") != std::string::npos) continue;
    any = true;
    if (ctrls.empty()) {
      const fs::path unified = cgroup_root / "unified";
      out.unified = (fs::is_directory(unified, ec) ? unified : cgroup_root) / rel;
      continue;
    }
    std::istringstream names(ctrls);
    for (std::string c; std::getline(names, c, ',');) {
      const fs::path dir = cgroup_root / ctrls / rel;  // "cpu,cpuacct" is mounted as one dir
      if (c == "memory") out.memory = dir;
      if (c == "cpuacct") out.cpuacct = dir;
      if (c == "pids") out.pids = dir;
      if (c == "blkio") out.blkio = dir;
    }
  }
  if (!any) return fail(Errc::InvalidArgument, "read cgroups: no cgroup line");
  return out;
}

Result<StatsSample> read_stats(const StatsCgroups& d) {
  StatsSample s;
  if (!d.memory.empty()) {
    s.memory_usage = without_cache(read_u64(d.memory, "memory.usage_in_bytes"),
                                   read_key(d.memory, "memory.stat", "total_inactive_file"));
    s.memory_limit = read_u64(d.memory, "memory.limit_in_bytes");
    // v1's "no limit" is the largest page-aligned value below 2^63.
    if (s.memory_limit && *s.memory_limit >= (uint64_t{1} << 62)) s.memory_limit.reset();
  } else {
    s.memory_usage = without_cache(read_u64(d.unified, "memory.current"),
                                   read_key(d.unified, "memory.stat", "inactive_file"));
    s.memory_limit = read_u64(d.unified, "memory.max");  // "max" does not parse: unlimited
  }
  if (!d.cpuacct.empty()) {
    s.cpu_usage_ns = read_u64(d.cpuacct, "cpuacct.usage");
  } else if (auto us = read_key(d.unified, "cpu.stat", "usage_usec")) {
    s.cpu_usage_ns = *us * 1000;
  }
  s.pids = read_u64(d.pids.empty() ? d.unified : d.pids, "pids.current");
  read_block(d, s);
  if (!s.memory_usage && !s.cpu_usage_ns && !s.pids) {
    return fail(Errc::NotFound, "read cgroup stats: no memory, cpu or pids file in the container's cgroups");
  }
  return s;
}

Result<StatsSample> container_stats(pid_t init) {
  const std::string what = fmt::format("/proc/{}/cgroup", init);
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(what, 1 << 16));
  KISTE_ASSIGN_OR_RETURN(StatsCgroups dirs, stats_cgroups(text, "/sys/fs/cgroup"));
  return read_stats(dirs);
}

Result<NetTotals> parse_net_dev(std::string_view text) {
  NetTotals t;
  bool any = false;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::istringstream name_in(line.substr(0, colon));
    std::string name;
    name_in >> name;
    if (name.empty() || name.find('|') != std::string::npos) continue;  // the header lines
    std::istringstream fields(line.substr(colon + 1));
    uint64_t v[9] = {};
    for (auto& x : v) {
      if (!(fields >> x)) return failf(Errc::InvalidArgument, "read network counters: bad line for {}", name);
    }
    any = true;
    if (name == "lo") continue;
    t.rx += v[0];
    t.tx += v[8];
  }
  if (!any) return fail(Errc::InvalidArgument, "read network counters: no interface");
  return t;
}

Result<std::optional<NetTotals>> container_net(pid_t init) {
  struct stat theirs {}, ours {};
  const std::string ns = fmt::format("/proc/{}/ns/net", init);
  if (::stat(ns.c_str(), &theirs) != 0) return std::unexpected(sys_error("stat", ns));
  if (::stat("/proc/self/ns/net", &ours) == 0 && theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev) {
    return std::optional<NetTotals>();
  }
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(fmt::format("/proc/{}/net/dev", init), 1 << 20));
  KISTE_ASSIGN_OR_RETURN(NetTotals t, parse_net_dev(text));
  return std::optional(t);
}

}  // namespace kiste::runtime
