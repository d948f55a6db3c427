#include "side_job.hpp"

#include <sched.h>

namespace kiste::runtime::detail {

bool SideJob::start(std::function<void()> job) {
  join();
  job_ = std::move(job);
  pthread_attr_t attr;
  if (::pthread_attr_init(&attr) != 0) return false;
  cpu_set_t cpus;
  const int here = ::sched_getcpu();
  if (here >= 0 && ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 1 &&
      CPU_ISSET(here, &cpus)) {
    CPU_CLR(here, &cpus);
    (void)::pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
  }
  auto entry = [](void* self) -> void* {
    static_cast<SideJob*>(self)->job_();
    return nullptr;
  };
  started_ = ::pthread_create(&thread_, &attr, entry, this) == 0;
  ::pthread_attr_destroy(&attr);
  return started_;
}

void SideJob::join() {
  if (started_) ::pthread_join(thread_, nullptr);
  started_ = false;
}

}  // namespace kiste::runtime::detail
