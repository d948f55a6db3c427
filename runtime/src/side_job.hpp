#pragma once
// A short job on a thread of its own, placed on another CPU than the caller's where there is
// one. A new thread otherwise tends to be queued behind its creator (seen in scheduler traces
// here), and then nothing overlaps. Used for the container's namespaces before clone and for the
// container dir's removal after exit.
#include <pthread.h>

#include <functional>

namespace kiste::runtime::detail {

class SideJob {
 public:
  SideJob() = default;
  SideJob(const SideJob&) = delete;
  SideJob& operator=(const SideJob&) = delete;
  ~SideJob() { join(); }

  // Starts `job`; false (with the job not run) when no thread could be made.
  [[nodiscard]] bool start(std::function<void()> job);
  // Waits for the job; nothing when none runs.
  void join();

 private:
  std::function<void()> job_;
  pthread_t thread_{};
  bool started_ = false;
};

}  // namespace kiste::runtime::detail
