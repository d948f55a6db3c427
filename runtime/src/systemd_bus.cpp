#include "systemd_bus.hpp"

#include <dlfcn.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include <cerrno>
#include <cstring>

namespace kiste::runtime::detail {

// The sd-bus functions kiste uses, from libsystemd.so.0 (loaded once, never unloaded). Not in the
// anonymous namespace: SystemdBus::Impl holds a pointer to it (-Wsubobject-linkage in a unity
// batch).
struct SdBusApi {
  decltype(&::sd_bus_open_system) open_system;
  decltype(&::sd_bus_open_user) open_user;
  decltype(&::sd_bus_flush_close_unref) flush_close_unref;
  decltype(&::sd_bus_call_method) call_method;
  decltype(&::sd_bus_call) call;
  decltype(&::sd_bus_message_new_method_call) new_method_call;
  decltype(&::sd_bus_message_append) append;
  decltype(&::sd_bus_message_open_container) open_container;
  decltype(&::sd_bus_message_close_container) close_container;
  decltype(&::sd_bus_message_read) read;
  decltype(&::sd_bus_message_unref) message_unref;
  decltype(&::sd_bus_match_signal) match_signal;
  decltype(&::sd_bus_slot_unref) slot_unref;
  decltype(&::sd_bus_process) process;
  decltype(&::sd_bus_wait) wait;
  decltype(&::sd_bus_error_free) error_free;
  decltype(&::sd_bus_error_has_name) error_has_name;
};

namespace {

Result<const SdBusApi*> load_api() {
  static SdBusApi api{};
  static std::string load_error;
  static bool loaded = [] {
    void* h = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = ::dlerror();
      load_error = e ? e : "dlopen failed";
      return false;
    }
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
      if (fn == nullptr) {
        ok = false;
        load_error = std::string("no symbol ") + name;
      }
    };
    sym(api.open_system, "sd_bus_open_system");
    sym(api.open_user, "sd_bus_open_user");
    sym(api.flush_close_unref, "sd_bus_flush_close_unref");
    sym(api.call_method, "sd_bus_call_method");
    sym(api.call, "sd_bus_call");
    sym(api.new_method_call, "sd_bus_message_new_method_call");
    sym(api.append, "sd_bus_message_append");
    sym(api.open_container, "sd_bus_message_open_container");
    sym(api.close_container, "sd_bus_message_close_container");
    sym(api.read, "sd_bus_message_read");
    sym(api.message_unref, "sd_bus_message_unref");
    sym(api.match_signal, "sd_bus_match_signal");
    sym(api.slot_unref, "sd_bus_slot_unref");
    sym(api.process, "sd_bus_process");
    sym(api.wait, "sd_bus_wait");
    sym(api.error_free, "sd_bus_error_free");
    sym(api.error_has_name, "sd_bus_error_has_name");
    return ok;
  }();
  if (!loaded) {
    return failf(Errc::Unsupported, "cgroup manager systemd: load libsystemd.so.0: {}", load_error);
  }
  return &api;
}

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
constexpr uint64_t kJobTimeoutUsec = 30'000'000;

uint64_t now_usec() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace

struct SystemdBus::Impl {
  const SdBusApi* api = nullptr;
  sd_bus* bus = nullptr;
  sd_bus_slot* slot = nullptr;
  // JobRemoved signals seen: (job object path, result).
  std::vector<std::pair<std::string, std::string>> removed;

  ~Impl() {
    if (slot != nullptr) api->slot_unref(slot);
    if (bus != nullptr) api->flush_close_unref(bus);
  }

  static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    uint32_t id = 0;
    const char *job = nullptr, *unit = nullptr, *result = nullptr;
    if (self->api->read(m, "uoss", &id, &job, &unit, &result) >= 0 && job && result) {
      self->removed.emplace_back(job, result);
    }
    return 0;
  }

  Error bus_error(std::string_view what, int r, const sd_bus_error& e) const {
    std::string reason = e.message != nullptr ? e.message : std::strerror(-r);
    return Error{.code = Errc::System,
                 .message = fmt::format("cgroup manager systemd: {}: {}", what, reason),
                 .sys_errno = -r};
  }

  // Waits for JobRemoved of `job`; "done" is success.
  Status wait_job(const std::string& job, std::string_view what) {
    const uint64_t deadline = now_usec() + kJobTimeoutUsec;
    while (true) {
      for (const auto& [path, result] : removed) {
        if (path != job) continue;
        if (result == "done") return {};
        return failf(Errc::System, "cgroup manager systemd: {}: the job ended with `{}`", what,
                     result);
      }
      int r = api->process(bus, nullptr);
      if (r < 0) {
        return failf(Errc::System, "cgroup manager systemd: {}: bus: {}", what, std::strerror(-r));
      }
      if (r > 0) continue;
      const uint64_t now = now_usec();
      if (now >= deadline) {
        return failf(Errc::Unavailable, "cgroup manager systemd: {}: no answer from systemd in 30 s",
                     what);
      }
      r = api->wait(bus, deadline - now);
      if (r < 0 && r != -EINTR) {
        return failf(Errc::System, "cgroup manager systemd: {}: bus: {}", what, std::strerror(-r));
      }
    }
  }
};

SystemdBus::SystemdBus(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SystemdBus::SystemdBus(SystemdBus&&) noexcept = default;
SystemdBus& SystemdBus::operator=(SystemdBus&&) noexcept = default;
SystemdBus::~SystemdBus() = default;

Result<SystemdBus> SystemdBus::connect(SystemdInstance instance) {
  KISTE_ASSIGN_OR_RETURN(const SdBusApi* api, load_api());
  auto impl = std::make_unique<Impl>();
  impl->api = api;
  const bool user = instance == SystemdInstance::User;
  int r = user ? api->open_user(&impl->bus) : api->open_system(&impl->bus);
  if (r < 0) {
    impl->bus = nullptr;
    if (user) {
      return failf(Errc::Unavailable,
                   "cgroup manager systemd: connect to your user bus: {} (is your systemd user "
                   "manager running? `loginctl enable-linger` starts it)",
                   std::strerror(-r));
    }
    return failf(Errc::Unavailable,
                 "cgroup manager systemd: connect to the system bus: {} (is systemd running? "
                 "--cgroup-manager=cgroupfs does without it)",
                 std::strerror(-r));
  }
  r = api->match_signal(impl->bus, &impl->slot, kDest, kPath, kManager, "JobRemoved",
                        &Impl::on_job_removed, impl.get());
  if (r < 0) {
    return failf(Errc::System, "cgroup manager systemd: watch JobRemoved: {}", std::strerror(-r));
  }
  sd_bus_error err = SD_BUS_ERROR_NULL;
  r = api->call_method(impl->bus, kDest, kPath, kManager, "Subscribe", &err, nullptr, "");
  if (r < 0) {
    Error e = impl->bus_error("subscribe", r, err);
    api->error_free(&err);
    return std::unexpected(std::move(e));
  }
  return SystemdBus(std::move(impl));
}

Status SystemdBus::start_scope(std::string_view unit, std::string_view slice, pid_t pid,
                               const std::vector<std::pair<std::string, uint64_t>>& props) {
  const SdBusApi& api = *impl_->api;
  sd_bus* bus = impl_->bus;
  const std::string unit_s(unit), slice_s(slice);
  const std::string what = fmt::format("start {} in {}", unit_s, slice_s);
  sd_bus_message* m = nullptr;
  int r = api.new_method_call(bus, &m, kDest, kPath, kManager, "StartTransientUnit");
  auto ok = [&r](int v) {
    if (r >= 0) r = v;
  };
  if (r >= 0) {
    ok(api.append(m, "ss", unit_s.c_str(), "fail"));
    ok(api.open_container(m, 'a', "(sv)"));
    const std::string description = fmt::format("kiste container {}", unit_s);
    ok(api.append(m, "(sv)", "Description", "s", description.c_str()));
    ok(api.append(m, "(sv)", "Slice", "s", slice_s.c_str()));
    ok(api.append(m, "(sv)", "Delegate", "b", 1));
    ok(api.append(m, "(sv)", "DefaultDependencies", "b", 0));
    ok(api.append(m, "(sv)", "CollectMode", "s", "inactive-or-failed"));
    ok(api.append(m, "(sv)", "PIDs", "au", 1, static_cast<uint32_t>(pid)));
    for (const auto& [name, value] : props) {
      ok(api.append(m, "(sv)", name.c_str(), "t", value));
    }
    ok(api.close_container(m));
    ok(api.append(m, "a(sa(sv))", 0));
  }
  if (r < 0) {
    if (m != nullptr) api.message_unref(m);
    return failf(Errc::System, "cgroup manager systemd: {}: build the request: {}", what,
                 std::strerror(-r));
  }
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  r = api.call(bus, m, kJobTimeoutUsec, &err, &reply);
  api.message_unref(m);
  if (r < 0) {
    Error e = impl_->bus_error(what, r, err);
    api.error_free(&err);
    return std::unexpected(std::move(e));
  }
  const char* job = nullptr;
  r = api.read(reply, "o", &job);
  std::string job_s = r >= 0 && job ? job : "";
  api.message_unref(reply);
  if (job_s.empty()) return failf(Errc::System, "cgroup manager systemd: {}: no job in the reply", what);
  return impl_->wait_job(job_s, what);
}

Status SystemdBus::attach_process(std::string_view unit, pid_t pid) {
  const SdBusApi& api = *impl_->api;
  const std::string unit_s(unit);
  sd_bus_error err = SD_BUS_ERROR_NULL;
  int r = api.call_method(impl_->bus, kDest, kPath, kManager, "AttachProcessesToUnit", &err,
                          nullptr, "ssau", unit_s.c_str(), "", 1, static_cast<uint32_t>(pid));
  if (r < 0) {
    Error e = impl_->bus_error(fmt::format("move process {} into {}", pid, unit_s), r, err);
    api.error_free(&err);
    return std::unexpected(std::move(e));
  }
  return {};
}

Status SystemdBus::stop_unit(std::string_view unit) {
  const SdBusApi& api = *impl_->api;
  const std::string unit_s(unit);
  const std::string what = fmt::format("stop {}", unit_s);
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = api.call_method(impl_->bus, kDest, kPath, kManager, "StopUnit", &err, &reply, "ss",
                          unit_s.c_str(), "replace");
  if (r < 0) {
    const bool gone = api.error_has_name(&err, "org.freedesktop.systemd1.NoSuchUnit") > 0;
    Error e = impl_->bus_error(what, r, err);
    api.error_free(&err);
    if (gone) return {};
    return std::unexpected(std::move(e));
  }
  const char* job = nullptr;
  std::string job_s = api.read(reply, "o", &job) >= 0 && job ? job : "";
  api.message_unref(reply);
  Status waited = job_s.empty() ? Status{} : impl_->wait_job(job_s, what);
  // A scope whose processes were killed may be left "failed": forget it (CollectMode does too).
  err = SD_BUS_ERROR_NULL;
  (void)api.call_method(impl_->bus, kDest, kPath, kManager, "ResetFailedUnit", &err, nullptr, "s",
                        unit_s.c_str());
  api.error_free(&err);
  return waited;
}

}  // namespace kiste::runtime::detail
