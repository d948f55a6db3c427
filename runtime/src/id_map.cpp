// Id maps and the --userns=auto range lease.
#include <kiste/runtime/id_map.hpp>

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <charconv>

#include <kiste/base/sys.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace {

bool parse_u32(std::string_view s, uint32_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
}

bool overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) { return a < b + bn && b < a + an; }

// The kernel's limit for lines in uid_map (since 4.15).
constexpr size_t kMaxMapLines = 340;

}  // namespace

Result<IdMapping> parse_id_mapping(std::string_view text) {
  IdMapping m;
  size_t a = text.find(':');
  size_t b = a == std::string_view::npos ? a : text.find(':', a + 1);
  if (b == std::string_view::npos || text.find(':', b + 1) != std::string_view::npos ||
      !parse_u32(text.substr(0, a), m.container_id) ||
      !parse_u32(text.substr(a + 1, b - a - 1), m.host_id) || !parse_u32(text.substr(b + 1), m.size)) {
    return failf(Errc::InvalidArgument, "id mapping {}: expected CONTAINER_ID:HOST_ID:SIZE",
                 quote(text));
  }
  if (m.size == 0) return failf(Errc::InvalidArgument, "id mapping {}: size must be positive", quote(text));
  if (uint64_t{m.container_id} + m.size > (uint64_t{1} << 32) - 1 ||
      uint64_t{m.host_id} + m.size > (uint64_t{1} << 32) - 1) {
    return failf(Errc::InvalidArgument, "id mapping {}: range ends beyond the largest id",
                 quote(text));
  }
  return m;
}

Status validate_id_map(const std::vector<IdMapping>& map, std::string_view what) {
  if (map.empty()) return failf(Errc::InvalidArgument, "{}: no mapping", what);
  if (map.size() > kMaxMapLines) {
    return failf(Errc::InvalidArgument, "{}: {} mappings, the kernel takes at most {}", what,
                 map.size(), kMaxMapLines);
  }
  for (size_t i = 0; i < map.size(); ++i) {
    const IdMapping& x = map[i];
    if (x.size == 0) return failf(Errc::InvalidArgument, "{}: empty range", what);
    for (size_t j = 0; j < i; ++j) {
      const IdMapping& y = map[j];
      if (overlaps(x.container_id, x.size, y.container_id, y.size)) {
        return failf(Errc::InvalidArgument, "{}: container ids {}:{} and {}:{} overlap", what,
                     y.container_id, y.size, x.container_id, x.size);
      }
      if (overlaps(x.host_id, x.size, y.host_id, y.size)) {
        return failf(Errc::InvalidArgument, "{}: host ids {}:{} and {}:{} overlap", what, y.host_id,
                     y.size, x.host_id, x.size);
      }
    }
  }
  return {};
}

std::string format_id_map(const std::vector<IdMapping>& map) {
  std::string out;
  for (const IdMapping& m : map) out += fmt::format("{} {} {}\n", m.container_id, m.host_id, m.size);
  return out;
}

std::optional<uint32_t> map_to_host(const std::vector<IdMapping>& map, uint32_t id) {
  for (const IdMapping& m : map) {
    if (id >= m.container_id && id - m.container_id < m.size) return m.host_id + (id - m.container_id);
  }
  return std::nullopt;
}

std::vector<SubIdRange> parse_subid(std::string_view text) {
  std::vector<SubIdRange> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line.front() == '#') continue;
    size_t a = line.find(':');
    size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    SubIdRange r;
    if (b == std::string_view::npos || a == 0 || !parse_u32(line.substr(a + 1, b - a - 1), r.start) ||
        !parse_u32(line.substr(b + 1), r.count) || r.count == 0) {
      continue;
    }
    r.owner = std::string(line.substr(0, a));
    out.push_back(std::move(r));
  }
  return out;
}

Result<IdRangeLease> IdRangeLease::acquire(const fs::path& lock_dir, const IdRangeSource& source) {
  auto read_ranges = [](const fs::path& f) -> Result<std::vector<SubIdRange>> {
    auto text = sys::read_file(f, 1 << 22);
    if (!text) {
      if (text.error().sys_errno == ENOENT) return std::vector<SubIdRange>{};
      return std::unexpected(std::move(text).error());
    }
    return parse_subid(*text);
  };
  KISTE_ASSIGN_OR_RETURN(auto subuid, read_ranges(source.subuid));
  KISTE_ASSIGN_OR_RETURN(auto subgid, read_ranges(source.subgid));

  KISTE_TRY(sys::mkdir_all(lock_dir, 0700));
  // Takes the range if no running container holds it (nullopt: held).
  auto try_range = [&](uint32_t u, uint32_t g) -> Result<std::optional<IdRangeLease>> {
    fs::path lock = lock_dir / fmt::format("range-{}-{}", u, g);
    KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
      return std::optional<IdRangeLease>(IdRangeLease(u, g, std::move(fd)));
    }
    if (errno != EWOULDBLOCK) return std::unexpected(sys_error("flock", lock.native()));
    return std::optional<IdRangeLease>();
  };
  auto chunks_of = [&](const std::vector<SubIdRange>& ranges) {
    std::vector<uint32_t> out;
    for (const SubIdRange& r : ranges) {
      if (r.owner != source.user) continue;
      for (uint64_t s = r.start; s + kAutoRangeSize <= uint64_t{r.start} + r.count; s += kAutoRangeSize) {
        out.push_back(static_cast<uint32_t>(s));
      }
    }
    return out;
  };
  auto uchunks = chunks_of(subuid), gchunks = chunks_of(subgid);
  size_t tried = 0;
  if (!uchunks.empty() && !gchunks.empty()) {
    // The `containers` user's ranges, paired in order.
    for (size_t i = 0; i < std::min(uchunks.size(), gchunks.size()); ++i, ++tried) {
      KISTE_ASSIGN_OR_RETURN(auto lease, try_range(uchunks[i], gchunks[i]));
      if (lease) return std::move(*lease);
    }
  } else {
    // kiste's own ranges from fallback_base up, skipping any range the files give to anyone,
    // up to the largest id a file system keeps (2^32-1 is "no id").
    auto taken = [&](uint64_t s) {
      for (const auto* list : {&subuid, &subgid}) {
        for (const SubIdRange& r : *list) {
          if (overlaps(s, kAutoRangeSize, r.start, r.count)) return true;
        }
      }
      return false;
    };
    for (uint64_t s = source.fallback_base; s + kAutoRangeSize < (uint64_t{1} << 32) - 1;
         s += kAutoRangeSize) {
      if (taken(s)) continue;
      ++tried;
      KISTE_ASSIGN_OR_RETURN(auto lease, try_range(static_cast<uint32_t>(s), static_cast<uint32_t>(s)));
      if (lease) return std::move(*lease);
    }
  }
  if (tried == 0) {
    return failf(Errc::Unavailable, "userns auto: no {}-wide id range for {} in {} and {}",
                 kAutoRangeSize, quote(source.user), quote(source.subuid.native()),
                 quote(source.subgid.native()));
  }
  return failf(Errc::Unavailable, "userns auto: all {} id ranges are in use", tried);
}

}  // namespace kiste::runtime
