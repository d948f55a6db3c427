#pragma once
// What the two cgroup v2 drivers (cgroupfs and systemd) share once the container's cgroup
// directory exists: the device filter, the plan's writes, clone target, stats, kill and remove.
#include <filesystem>
#include <string>
#include <vector>

#include <kiste/runtime/cgroup.hpp>

namespace kiste::runtime::detail {

// Whitespace-separated words ("cpu memory pids" in cgroup.controllers).
[[nodiscard]] std::vector<std::string> words(std::string_view text);

class CgroupV2Dir : public CgroupDriver {
 public:
  [[nodiscard]] Status apply(const CgroupPlan& plan) override;
  [[nodiscard]] Status add_process(pid_t pid) override;
  [[nodiscard]] Result<UniqueFd> open_clone_target() override;
  [[nodiscard]] Result<CgroupStats> stats() override;
  [[nodiscard]] std::vector<std::filesystem::path> paths() const override {
    if (dir_.empty()) return {};
    return {dir_};
  }
  void forget() override { dir_.clear(); }

 protected:
  // The directory exists: remember it and attach the plan's device filter.
  [[nodiscard]] Status attach(const std::filesystem::path& dir, const CgroupPlan& plan);
  // Every controller the plan needs is in the directory's cgroup.controllers.
  [[nodiscard]] Status check_controllers(const CgroupPlan& plan) const;
  // cgroup.kill, then SIGKILL what is left until it is empty, then rmdir.
  [[nodiscard]] Status kill_and_remove_dir();
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace kiste::runtime::detail
