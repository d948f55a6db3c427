#pragma once
// User-namespace id maps: podman-style `--uidmap CTR:HOST:N` parsing and validation, the
// /proc/<pid>/uid_map text, /etc/subuid parsing, and the lease of a free 65536-wide range for
// `--userns=auto` (a flock per range under the kiste root: two containers that run at the same
// time never share a range; a dead kiste's lease ends with it).
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime {

inline constexpr uint32_t kAutoRangeSize = 65536;

// "0:100000:65536" -> {0, 100000, 65536}.
[[nodiscard]] Result<IdMapping> parse_id_mapping(std::string_view text);
// Checks a whole map: 1..340 lines, no empty or overflowing range, no overlap on either side.
[[nodiscard]] Status validate_id_map(const std::vector<IdMapping>& map, std::string_view what);
// The text the kernel takes in /proc/<pid>/uid_map.
[[nodiscard]] std::string format_id_map(const std::vector<IdMapping>& map);
// The host id that container id `id` maps to (nullopt when unmapped).
[[nodiscard]] std::optional<uint32_t> map_to_host(const std::vector<IdMapping>& map, uint32_t id);

// One line of /etc/subuid or /etc/subgid ("name:start:count").
struct SubIdRange {
  std::string owner;
  uint32_t start = 0;
  uint32_t count = 0;
};
// Malformed lines are skipped.
[[nodiscard]] std::vector<SubIdRange> parse_subid(std::string_view text);

struct IdRangeSource {
  std::filesystem::path subuid = "/etc/subuid";
  std::filesystem::path subgid = "/etc/subgid";
  std::string user = "containers";  // ranges of this user are used when both files list it
  uint32_t fallback_base = 100000;   // otherwise kiste picks ranges from here up, skipping
                                     // every range the files give to anyone
};

// A leased range: held (flock on `<lock_dir>/range-<uid>-<gid>`) until destruction.
class IdRangeLease {
 public:
  [[nodiscard]] static Result<IdRangeLease> acquire(const std::filesystem::path& lock_dir,
                                                    const IdRangeSource& source = {});
  [[nodiscard]] uint32_t uid_base() const { return uid_base_; }
  [[nodiscard]] uint32_t gid_base() const { return gid_base_; }
  [[nodiscard]] std::vector<IdMapping> uid_map() const { return {{0, uid_base_, kAutoRangeSize}}; }
  [[nodiscard]] std::vector<IdMapping> gid_map() const { return {{0, gid_base_, kAutoRangeSize}}; }

 private:
  IdRangeLease(uint32_t u, uint32_t g, UniqueFd fd) : uid_base_(u), gid_base_(g), lock_(std::move(fd)) {}
  uint32_t uid_base_ = 0, gid_base_ = 0;
  UniqueFd lock_;
};

}  // namespace kiste::runtime
