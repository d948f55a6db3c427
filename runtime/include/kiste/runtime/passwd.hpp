#pragma once
// /etc/passwd and /etc/group of an image, parsed (malformed lines are skipped). Shared by
// `kiste run -u NAME` and the builder's `COPY --chown=NAME`.
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace kiste::runtime {

struct PasswdEntry {
  std::string name;
  uid_t uid;
  gid_t gid;
  std::string home;
};

struct GroupEntry {
  std::string name;
  gid_t gid;
  std::vector<std::string> members;
};

[[nodiscard]] std::vector<PasswdEntry> parse_passwd(std::string_view text);
[[nodiscard]] std::vector<GroupEntry> parse_group(std::string_view text);

}  // namespace kiste::runtime
