#include <kiste/network/leases.hpp>

#include <algorithm>
#include <charconv>
#include <set>

#include <unistd.h>

#include <kiste/base/file_lock.hpp>
#include <kiste/base/sys.hpp>

#include <fmt/ranges.h>

namespace kiste::network {

namespace {

struct LeaseTable {
  std::optional<IpAddress> last;  // the address handed out last (round-robin start)
  std::vector<Lease> leases;
};

std::filesystem::path lock_path(const std::filesystem::path& p) {
  return std::filesystem::path(p.string() + ".lock");
}

Result<LeaseTable> read_table(const std::filesystem::path& path) {
  LeaseTable t;
  auto text = sys::read_file(path, 16 << 20);
  if (!text) {
    if (text.error().sys_errno == ENOENT) return t;
    return std::unexpected(std::move(text).error());
  }
  size_t pos = 0;
  int line_no = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    std::string_view line(text->data() + pos, (nl == std::string::npos ? text->size() : nl) - pos);
    pos = nl == std::string::npos ? text->size() : nl + 1;
    ++line_no;
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) {
      return failf(Errc::Corrupt, "lease file {} line {}: no owner", quote(path.string()), line_no);
    }
    auto addr = IpAddress::parse(line.substr(0, sp));
    if (!addr) {
      return failf(Errc::Corrupt, "lease file {} line {}: {}", quote(path.string()), line_no,
                   addr.error().message);
    }
    std::string_view rest = line.substr(sp + 1);
    size_t sp2 = rest.find(' ');
    std::string_view owner = rest.substr(0, sp2);
    pid_t pid = 0;
    std::vector<std::string> names;
    if (sp2 != std::string_view::npos) {
      std::string_view p = rest.substr(sp2 + 1);
      size_t sp3 = p.find(' ');
      std::from_chars(p.data(), p.data() + p.size(), pid);
      for (std::string_view n = sp3 == p.npos ? std::string_view() : p.substr(sp3 + 1); !n.empty();) {
        size_t comma = n.find(',');
        if (comma != 0) names.emplace_back(n.substr(0, comma));
        n = comma == n.npos ? std::string_view() : n.substr(comma + 1);
      }
    }
    if (owner == "#last") {
      t.last = *addr;
    } else {
      t.leases.push_back({*addr, std::string(owner), pid, std::move(names)});
    }
  }
  return t;
}

Status write_table(const std::filesystem::path& path, const LeaseTable& t) {
  std::string out;
  if (t.last) out += fmt::format("{} #last\n", t.last->to_string());
  for (const Lease& l : t.leases) {
    out += fmt::format("{} {} {}", l.address.to_string(), l.owner, l.pid);
    if (!l.names.empty()) out += fmt::format(" {}", fmt::join(l.names, ","));
    out += '\n';
  }
  // No fsync: after a power loss every lease is stale anyway (its pid is gone), and the next
  // lease reclaims it; the atomic replace keeps readers from a half-written file.
  return sys::write_file_atomic(path, out, 0600, sys::Sync::No);
}

}  // namespace

Result<IpAddress> LeaseFile::acquire(std::string_view owner, const std::optional<IpAddress>& wanted,
                                     const LeaseAliveFn& alive,
                                     const std::vector<std::string>& names) {
  KISTE_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(lock_path(path_)));
  KISTE_ASSIGN_OR_RETURN(LeaseTable t, read_table(path_));
  const size_t before = t.leases.size();
  std::erase_if(t.leases, [&](const Lease& l) { return l.owner != owner && !alive(l); });
  const bool stale = t.leases.size() != before;  // reclaimed leases: the file changes anyway
  for (Lease& l : t.leases) {
    if (l.owner == owner && (!wanted || *wanted == l.address)) {
      // A re-acquire by the kiste that holds it (a run's attach after its prepare) changes
      // nothing: no rewrite.
      if (l.pid == ::getpid() && (names.empty() || names == l.names) && !stale) return l.address;
      l.pid = ::getpid();
      if (!names.empty()) l.names = names;  // a re-acquire without names keeps them
      KISTE_TRY(write_table(path_, t));
      return l.address;
    }
  }
  std::erase_if(t.leases, [&](const Lease& l) { return l.owner == owner; });
  std::set<IpAddress> taken(reserved_.begin(), reserved_.end());
  for (const Lease& l : t.leases) taken.insert(l.address);

  std::optional<IpAddress> got;
  if (wanted) {
    if (!subnet_.contains(*wanted)) {
      return failf(Errc::InvalidArgument, "address {} is not in the network's subnet {}",
                   wanted->to_string(), subnet_.to_string());
    }
    if (taken.contains(*wanted) || *wanted == subnet_.base() ||
        (subnet_.family() == Family::V4 && *wanted == subnet_.host(subnet_.host_count() + 1))) {
      return failf(Errc::AlreadyExists, "address {} is already in use in {}", wanted->to_string(),
                   subnet_.to_string());
    }
    got = *wanted;
  } else {
    uint64_t n = subnet_.host_count();
    uint64_t start = 0;  // 0-based index of the first candidate: the one after the last given
    if (t.last && subnet_.contains(*t.last)) start = subnet_.offset_of(*t.last) % n;
    // Bounded: at most one taken address per lease and reserved address before a free one.
    for (uint64_t k = 0; k < n; ++k) {
      IpAddress a = subnet_.host((start + k) % n + 1);
      if (!taken.contains(a)) {
        got = a;
        break;
      }
    }
    if (!got) {
      return failf(Errc::Unavailable, "no free address left in {} ({} in use)", subnet_.to_string(),
                   t.leases.size());
    }
  }
  t.leases.push_back({*got, std::string(owner), ::getpid(), names});
  if (!wanted) t.last = *got;
  KISTE_TRY(write_table(path_, t));
  return *got;
}

Status LeaseFile::release(std::string_view owner) {
  KISTE_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(lock_path(path_)));
  KISTE_ASSIGN_OR_RETURN(LeaseTable t, read_table(path_));
  size_t before = t.leases.size();
  std::erase_if(t.leases, [&](const Lease& l) { return l.owner == owner; });
  if (t.leases.size() == before) return {};
  return write_table(path_, t);
}

Result<std::vector<Lease>> LeaseFile::list() const {
  KISTE_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(lock_path(path_), FileLock::Mode::Shared));
  KISTE_ASSIGN_OR_RETURN(LeaseTable t, read_table(path_));
  return t.leases;
}

}  // namespace kiste::network
