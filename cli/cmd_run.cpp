// kiste run: docker-style options -> runtime::make_spec -> runtime::run_container. Wiring only.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <memory>

#include <kiste/base/sys.hpp>
#include <kiste/image/root_layout.hpp>
#include <kiste/image/store.hpp>
#include <kiste/image/store_layers.hpp>
#include <kiste/network/dns.hpp>
#include <kiste/network/dns_config.hpp>
#include <kiste/network/pasta.hpp>
#include <kiste/network/publish.hpp>
#include <kiste/runtime/binfmt.hpp>
#include <kiste/registry/access.hpp>
#include <kiste/registry/transport.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/container_store.hpp>
#include <kiste/runtime/json_log.hpp>
#include <kiste/runtime/monitor.hpp>
#include <kiste/runtime/rootless.hpp>
#include <kiste/runtime/runner.hpp>
#include <kiste/runtime/run_options.hpp>
#include <kiste/runtime/volume.hpp>

#include "cli_args.hpp"
#include "globals.hpp"
#include "run_network.hpp"
#include "progress.hpp"
#include "registry_flags.hpp"

extern char** environ;

namespace kiste::cli {

namespace fs = std::filesystem;

// What `run IMAGE` needs from the store: the snapshot dirs (bottom first) and the config's
// process defaults.
struct ImageForRun {
  std::vector<fs::path> lower_dirs;
  runtime::ImageProcessDefaults defaults;
  std::vector<std::string> exposed_ports;         // "80/tcp", for -P
  std::optional<image::HealthConfig> healthcheck;  // the config's Healthcheck
  std::string stop_signal;                          // the config's StopSignal
};

Result<runtime::CgroupPlacement> cgroup_placement(const std::string& manager,
                                                const std::string& parent, bool limits_asked) {
  runtime::CgroupPlacement p{.parent = parent};
  std::string name = manager;
  if (const char* env = std::getenv("KISTE_CGROUP_MANAGER"); name.empty() && env != nullptr) name = env;
  if (!name.empty()) {
    KISTE_ASSIGN_OR_RETURN(p.manager, runtime::parse_cgroup_manager(name));
    // Rootless, the systemd that makes scopes is the user's own.
    if (runtime::running_rootless()) p.systemd = runtime::SystemdInstance::User;
  } else if (runtime::running_rootless()) {
    // A scope of the user's own systemd where it delegates one; else no cgroup: say so once,
    // and refuse limits (runtime::first_limit_flag) rather than ignore them.
    const runtime::CgroupMode mode = runtime::detect_cgroup_mode().value_or(runtime::CgroupMode::Legacy);
    const auto env = [](const char* n) -> const char* { return std::getenv(n); };
    runtime::CgroupPlacement r = runtime::rootless_cgroup_placement(
        mode, runtime::default_cgroup_manager(mode) == runtime::CgroupManager::Systemd, env);
    p.manager = r.manager;
    p.systemd = r.systemd;
    p.no_cgroup_reason = std::move(r.no_cgroup_reason);
    static bool warned = false;
    if (p.manager == runtime::CgroupManager::None && !limits_asked && !warned) {
      warned = true;
      std::fprintf(stderr, "kiste: warning: running without cgroup limits: %s\n", p.no_cgroup_reason.c_str());
    }
  }
  return p;
}

namespace {

bool asks_for_limits(const runtime::RunOptions& o) {
  return !o.memory.empty() || !o.memory_swap.empty() || !o.cpus.empty() || o.cpu_shares ||
         o.pids_limit;
}

// IMAGE -> the store entry -> snapshots (unpacked on first use) + the config's process defaults.
// The caller holds a store lease from here until the runner's marker names the snapshots.
// `platform` (--platform) must be what the image is: kiste runs no image as another platform.
Result<ImageForRun> open_image_for_run(const image::Store& store, std::string_view ref,
                                       const std::optional<image::Platform>& platform) {
  auto entry = store.resolve(ref);
  if (!entry) return std::unexpected(std::move(entry).error());
  // The first run after a pull unpacks the layers: shown on a terminal, as pull shows its blobs.
  const bool tty = isatty(STDERR_FILENO) != 0;
  LineProgress progress(!tty, tty);
  auto layers = image::prepare_layers(store, *entry, platform.value_or(image::Platform::host()),
                                      tty ? &progress : nullptr);
  if (layers && platform) {
    const image::ImageConfig& c = layers->config;
    auto ok = image::check_platform({.os = c.os, .architecture = c.architecture, .variant = c.variant},
                                    *platform);
    if (!ok) layers = std::unexpected(std::move(ok).error());
  }
  if (layers) {
    // A foreign image runs under qemu-user through a binfmt_misc handler, or not at all.
    const image::ImageConfig& c = layers->config;
    auto can = runtime::check_execution({.os = c.os, .architecture = c.architecture, .variant = c.variant});
    if (!can) layers = std::unexpected(std::move(can).error());
  }
  if (!layers) {
    return std::unexpected(std::move(layers).error().with_context(fmt::format("image {}", quote(ref))));
  }
  ImageForRun out;
  out.lower_dirs = std::move(layers->lower_dirs);
  const image::ContainerDefaults& c = layers->config.config;
  out.defaults.entrypoint = c.entrypoint.value_or(std::vector<std::string>{});
  out.defaults.cmd = c.cmd.value_or(std::vector<std::string>{});
  out.defaults.env = c.env;
  out.defaults.working_dir = c.working_dir;
  out.defaults.user = c.user;
  out.exposed_ports = c.exposed_ports;
  out.healthcheck = c.healthcheck;
  out.stop_signal = c.stop_signal;
  if (out.lower_dirs.empty()) {
    return failf(Errc::InvalidArgument, "image {}: has no layers to run", quote(ref));
  }
  return out;
}

struct RunArgs {
  runtime::RunOptions opts;
  std::string rootfs;
  bool rm = false;
  std::string cgroup_manager;
  std::string cgroup_parent;
  std::string ip;  // --ip on a bridge network
  std::vector<std::string> publish;  // -p
  bool publish_all = false;          // -P: every EXPOSEd port to a free host port
  bool publish_bypass_firewall = false;  // also DNAT, past the host's input chain
  network::DnsOverrides dns;           // --dns, --dns-search, --dns-option
  std::vector<std::string> add_hosts;  // --add-host
  std::vector<std::string> aliases;    // --network-alias
  // -d and the options of a detached container.
  bool detach = false;
  std::string name;
  std::string restart;
  std::string stop_signal;
  std::optional<int> stop_timeout;
  runtime::HealthFlags health;
  std::vector<std::string> log_opts;
  std::string monitor_id;  // hidden: this process is that container's monitor
  std::string platform;  // --platform: what the image must be
  std::string pull = "missing";  // --pull missing|always|never (docker's default)
  bool quiet = false;            // -q: no pull progress
  RegistryFlags registry;        // --tls-verify, --cert-dir, --authfile (as podman run)
};

// --pull: the image `name` into the store when it is missing (docker's default) or always, or
// never. Only the `run` the user typed pulls: a detached container's monitor (and its restarts)
// runs what was there when `run -d` returned.
Status pull_for_run(const Globals& g, const RunArgs& a, const std::string& name) {
  if (a.pull != "missing" && a.pull != "always" && a.pull != "never") {
    return failf(Errc::InvalidArgument, "--pull {}: want missing, always or never", quote(a.pull));
  }
  if (a.pull != "always") {
    auto store = image::Store::open(g.root, {.create = false});
    Error missing;
    if (store) {
      auto entry = store->resolve(name);
      if (entry) return {};
      missing = std::move(entry).error();
    } else {
      missing = std::move(store).error();
    }
    if (missing.code != Errc::NotFound) return std::unexpected(std::move(missing));
    if (a.pull == "never") {
      return failf(Errc::NotFound, "image {}: not in the store, and --pull never", quote(name));
    }
  }
  KISTE_ASSIGN_OR_RETURN(image::Reference ref,
                         with_context(registry::parse_docker_ref(name), fmt::format("image {}", quote(name))));
  image::CopyOptions opts;
  if (!a.platform.empty()) {
    KISTE_ASSIGN_OR_RETURN(opts.platform, with_context(image::Platform::parse(a.platform), "--platform"));
  }
  if (!a.quiet && a.pull != "always") {
    std::fprintf(stderr, "Unable to find image '%s' locally\n", name.c_str());
  }
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(g.root));
  LineProgress progress(a.quiet, isatty(STDERR_FILENO) != 0);  // on stderr: stdout is the run's
  opts.progress = &progress;
  auto pulled = registry::pull_image(store, ref, a.registry.access(), opts);
  if (!pulled) return std::unexpected(std::move(pulled).error().with_context(fmt::format("pulling {}", ref.str())));
  if (!a.quiet) std::fprintf(stderr, "Status: pulled %s (%s)\n", ref.str().c_str(), pulled->top.digest.str().c_str());
  return {};
}

// The lower dirs and defaults of `run`'s image (or --rootfs), and a store lease while they are
// in use; `positional` loses the IMAGE word.
Result<ImageForRun> image_for_run(const Globals& g, const RunArgs& a,
                                  std::vector<std::string>& positional,
                                  std::optional<FileLock>& lease) {
  ImageForRun image;
  if (!a.rootfs.empty()) {
    std::error_code ec;
    fs::path dir = fs::absolute(a.rootfs, ec);
    if (ec || !fs::is_directory(dir, ec)) {
      return failf(Errc::NotFound, "rootfs {}: not a directory", quote(a.rootfs));
    }
    image.lower_dirs.push_back(dir.lexically_normal());
    return image;
  }
  if (positional.empty()) return fail(Errc::InvalidArgument, "run: give an IMAGE or --rootfs DIR");
  KISTE_ASSIGN_OR_RETURN(auto store, image::Store::open(g.root, {.create = false}));
  KISTE_ASSIGN_OR_RETURN(lease, store.writer_lease());
  std::optional<image::Platform> platform;
  if (!a.platform.empty()) {
    KISTE_ASSIGN_OR_RETURN(platform, with_context(image::Platform::parse(a.platform), "--platform"));
  }
  KISTE_ASSIGN_OR_RETURN(image, open_image_for_run(store, positional.front(), platform));
  positional.erase(positional.begin());
  return image;
}

// --network container:X: the network namespace of X's init, held open by the start (a pid reused
// after this cannot change which namespace the runtime enters), as docker requires X running.
Status join_container_network(const Globals& g, runtime::ContainerSpec& spec, runtime::PreparedStart& out) {
  const runtime::ContainerStore store(g.root);
  const std::string what = fmt::format("network {}", quote("container:" + spec.network_name));
  KISTE_ASSIGN_OR_RETURN(std::string id, with_context(store.resolve(spec.network_name), what));
  KISTE_ASSIGN_OR_RETURN(runtime::ContainerState s, with_context(store.load(id), what));
  if (s.status != "running" || s.pid <= 0 || !store.monitor_alive(id)) {
    return failf(Errc::InvalidArgument, "{}: container {} is not running", what, quote(s.name));
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd ns, with_context(sys::open(fmt::format("/proc/{}/ns/net", s.pid),
                                                            O_RDONLY | O_CLOEXEC), what));
  spec.namespaces.network_path = fmt::format("/proc/self/fd/{}", ns.get());
  out.resources = std::make_shared<UniqueFd>(std::move(ns));
  return {};
}

// What one start holds of its network until the container is gone (PreparedStart::resources).
struct Attached {
  std::optional<RunNetwork> net;
  std::optional<network::PortProxy> proxy;  // network/publish.hpp says why a proxy
  std::optional<network::PublishedNat> nat;  // --publish-bypass-firewall
  std::unique_ptr<network::DnsResponder> dns;  // goes first: it reads net's leases
  std::optional<network::Pasta> pasta;         // --network pasta
  fs::path ports_file;  // a detached container's bound ports, for `kiste port`
  ~Attached() {
    if (!ports_file.empty()) ::unlink(ports_file.c_str());
  }
};

// -p and -P as mappings (host port 0: a free one, chosen when bound).
Result<std::vector<network::PortMapping>> published_ports(const RunArgs& a,
                                                          const std::vector<std::string>& exposed_ports) {
  std::vector<network::PortMapping> maps;
  for (const std::string& p : a.publish) {
    KISTE_ASSIGN_OR_RETURN(auto m, network::parse_publish(p));
    maps.push_back(m);
  }
  if (a.publish_all) {
    for (const std::string& e : exposed_ports) {
      auto m = network::parse_publish(e);
      if (!m) return std::unexpected(m.error().with_context("-P: the image's EXPOSE"));
      maps.push_back(*m);  // host port 0: a free one
    }
  }
  return maps;
}

// A detached container's bound ports, for `kiste port` (its monitor writes them).
Status write_ports_file(const Globals& g, const RunArgs& a, const std::string& id,
                        const std::vector<network::PortMapping>& maps, Attached& held) {
  if (a.monitor_id.empty()) return {};
  std::string text;
  for (const network::PortMapping& m : maps) {
    text += fmt::format("{}/{} -> {}:{}\n", m.container_port, m.protocol,
                        m.host_ip ? m.host_ip->to_string() : "0.0.0.0", m.host_port);
  }
  fs::path file = runtime::ContainerStore(g.root).dir(id) / "ports";
  KISTE_TRY(sys::write_file_atomic(file, text, 0644));
  held.ports_file = file;
  return {};
}

// --network pasta: user-mode networking (network/pasta.hpp), rootless kiste's network. The
// published ports are chosen (and found free) before the container exists; the network_ready
// hook starts pasta on the container's namespace, and pasta goes with `out.resources`.
Status attach_pasta(const Globals& g, const RunArgs& a, const std::string& id,
                    const std::vector<std::string>& exposed_ports, runtime::PreparedStart& out) {
  const char* flag = !a.ip.empty()               ? "--ip"
                     : !a.aliases.empty()        ? "--network-alias"
                     : a.publish_bypass_firewall ? "--publish-bypass-firewall"
                                                 : nullptr;
  if (flag != nullptr) {
    return failf(Errc::InvalidArgument, "{} needs a bridge network (not --network pasta)", flag);
  }
  // pasta run by the host's root drops to `nobody` and then cannot enter the namespace (podman
  // has pasta for rootless containers only, too); root has bridge networks.
  if (!runtime::running_rootless()) {
    return fail(Errc::Unsupported, "network pasta: user-mode networking is for rootless kiste; as root "
                                   "use a bridge network (--network NAME)");
  }
  KISTE_TRY(network::check_dns_overrides(a.dns));
  auto held = std::make_shared<Attached>();
  runtime::ContainerSpec& spec = out.spec;
  for (const std::string& h : a.add_hosts) {
    if (h.ends_with(":host-gateway") || h.ends_with("=host-gateway")) {
      return failf(Errc::InvalidArgument,
                   "--add-host {}: with --network pasta the container does not reach the host's own "
                   "services (pasta maps no gateway to the host)",
                   quote(h));
    }
    KISTE_ASSIGN_OR_RETURN(auto line, network::add_host_line(h, network::IpAddress{}));
    spec.extra_hosts.push_back(std::move(line));
  }
  spec.resolv_conf = network::apply_dns_overrides(RunNetwork::resolv_conf(), a.dns);
  KISTE_ASSIGN_OR_RETURN(auto maps, published_ports(a, exposed_ports));
  KISTE_TRY(network::choose_free_ports(maps));
  KISTE_TRY(write_ports_file(g, a, id, maps, *held));
  Attached* h = held.get();  // alive as long as out.resources
  out.network_ready = [h, maps = std::move(maps)](int netns_fd) -> Status {
    KISTE_ASSIGN_OR_RETURN(auto pasta, network::Pasta::start(netns_fd, maps));
    h->pasta.emplace(std::move(pasta));
    return {};
  };
  out.resources = std::move(held);
  return {};
}

// The container's place on its bridge network and its published ports, for one start: the
// address is leased and the ports bound before the container exists (a port in use fails first),
// the veth is connected by the network_ready hook, and both go when `out.resources` does.
Status attach_network(const Globals& g, const RunArgs& a, const std::string& id,
                      const std::vector<std::string>& exposed_ports, runtime::PreparedStart& out) {
  runtime::ContainerSpec& spec = out.spec;
  if (spec.network == runtime::NetworkMode::Container) KISTE_TRY(join_container_network(g, spec, out));
  if (spec.network == runtime::NetworkMode::Pasta) return attach_pasta(g, a, id, exposed_ports, out);
  if (spec.network == runtime::NetworkMode::Bridge && runtime::running_rootless()) {
    return failf(Errc::Unsupported,
                 "network {}: bridge networks need root (rootless kiste has --network pasta, none "
                 "and host)",
                 quote(spec.network_name));
  }
  if (spec.network != runtime::NetworkMode::Bridge) {
    const char* flag = !a.ip.empty()                ? "--ip"
                       : !a.publish.empty()         ? "-p"
                       : a.publish_all              ? "-P"
                       : a.publish_bypass_firewall  ? "--publish-bypass-firewall"
                       : !a.dns.servers.empty()     ? "--dns"
                       : !a.dns.search.empty()      ? "--dns-search"
                       : !a.dns.options.empty()     ? "--dns-option"
                       : !a.add_hosts.empty()       ? "--add-host"
                       : !a.aliases.empty()         ? "--network-alias"
                                                    : nullptr;
    if (flag == nullptr) return {};
    return fail(Errc::InvalidArgument, fmt::format("{} needs --network NAME (a bridge network)", flag));
  }
  KISTE_TRY(network::check_dns_overrides(a.dns));
  auto held = std::make_shared<Attached>();
  std::vector<std::string> names = a.aliases;
  if (!a.name.empty()) names.insert(names.begin(), a.name);
  for (const std::string& n : a.aliases) {
    if (!network::dns_name(n)) return failf(Errc::InvalidArgument, "--network-alias {}: not a DNS name", quote(n));
  }
  if (!a.aliases.empty() && spec.network_name == network::Networks::kDefault) {
    return fail(Errc::InvalidArgument, "--network-alias: the default network has no container DNS; "
                                       "use a network of your own (`kiste network create`)");
  }
  KISTE_ASSIGN_OR_RETURN(auto n, RunNetwork::prepare(g, spec.network_name, id, a.ip, spec.hostname, names));
  held->net.emplace(std::move(n));
  spec.extra_hosts = held->net->extra_hosts();
  for (const std::string& h : a.add_hosts) {
    KISTE_ASSIGN_OR_RETURN(auto line, network::add_host_line(h, held->net->gateway()));
    spec.extra_hosts.push_back(std::move(line));
  }
  std::string resolv = network::apply_dns_overrides(RunNetwork::resolv_conf(), a.dns);
  std::vector<network::IpAddress> upstream = network::resolv_conf_nameservers(resolv);
  spec.resolv_conf = held->net->has_dns() ? network::embedded_dns_resolv_conf(resolv) : resolv;
  KISTE_ASSIGN_OR_RETURN(auto maps, published_ports(a, exposed_ports));
  if (maps.empty() && a.publish_bypass_firewall) {
    return fail(Errc::InvalidArgument, "--publish-bypass-firewall: no port is published (-p or -P)");
  }
  if (!maps.empty()) {
    KISTE_ASSIGN_OR_RETURN(auto proxy, network::PortProxy::start(std::move(maps), held->net->address()));
    held->proxy.emplace(std::move(proxy));
    if (a.publish_bypass_firewall) {
      KISTE_TRY(sys::write_file_atomic(published_nat_marker(g), "", 0644));
      KISTE_ASSIGN_OR_RETURN(auto nat, network::PublishedNat::add(held->proxy->mappings(), held->net->address(),
                                                                      held->net->address6()));
      held->nat.emplace(std::move(nat));
    }
    KISTE_TRY(write_ports_file(g, a, id, held->proxy->mappings(), *held));
  }
  Attached* h = held.get();  // alive as long as out.resources
  out.network_ready = [h, upstream = std::move(upstream)](int netns_fd) -> Status {
    KISTE_TRY(h->net->connect(netns_fd));
    if (!h->net->has_dns()) return {};
    RunNetwork* net = &*h->net;
    KISTE_ASSIGN_OR_RETURN(h->dns, network::DnsResponder::start(
                                       netns_fd, [net](std::string_view name) { return net->lookup(name); },
                                       upstream));
    return {};
  };
  // The veth and the lease go as soon as the container ended (the proxy and DNS stay until
  // `out.resources` does: they only serve the container).
  out.network_exited = [h] { h->net->disconnect(); };
  out.resources = std::move(held);
  return {};
}

// Everything one start of container `id` needs: the image resolved and the spec made.
Result<runtime::PreparedStart> prepare_start(const Globals& g, const RunArgs& a,
                                             std::vector<std::string> positional,
                                             const runtime::Runner& runner, const std::string& id) {
  runtime::PreparedStart out;
  KISTE_ASSIGN_OR_RETURN(ImageForRun image, image_for_run(g, a, positional, out.lease));
  runtime::RunOptions opts = a.opts;
  opts.command = std::move(positional);
  runtime::MakeSpecInput in{.id = id,
                            .lower_dirs = image.lower_dirs,
                            .container_dir = runner.container_dir(id),
                            .image = image.defaults,
                            .host_env = environ,
                            .volumes_dir = image::RootLayout(g.root).volumes(),
                            .init_binary =
                                opts.init ? runtime::default_init_binary() : fs::path()};
  KISTE_ASSIGN_OR_RETURN(out.spec, runtime::make_spec(opts, in));
  out.spec.root.volatile_upper = a.rm;
  KISTE_TRY(attach_network(g, a, id, image.exposed_ports, out));
  return out;
}

int run_command(Globals& g, RunArgs& a, std::vector<std::string> positional) {
  const runtime::HealthFlags& h = a.health;
  if (!a.log_opts.empty()) {
    return report(Error{.code = Errc::InvalidArgument,
                        .message = "--log-opt: a foreground container's output goes to the terminal; use -d"});
  }
  if (h.cmd || h.interval || h.timeout || h.start_period || h.retries) {
    return report(Error{.code = Errc::InvalidArgument,
                        .message = "--health-*: healthchecks run in detached containers (-d)"});
  }
  if (a.rootfs.empty() && !positional.empty()) {
    if (auto pulled = pull_for_run(g, a, positional.front()); !pulled) return report(pulled.error());
  }
  auto placement = cgroup_placement(a.cgroup_manager, a.cgroup_parent, asks_for_limits(a.opts));
  if (!placement) return report(placement.error());
  runtime::Runner runner({.root = g.root, .cgroups = *placement});
  const std::string id = runtime::Runner::new_id();
  auto prepared = prepare_start(g, a, std::move(positional), runner, id);
  if (!prepared) return report(prepared.error());
  runtime::ContainerSpec& spec = prepared->spec;
  if (auto warning = runtime::sys_admin_warning(spec); !warning.empty()) {
    std::fprintf(stderr, "kiste: warning: %s\n", warning.c_str());
  }
  // Leftovers of containers whose kiste was SIGKILLed (only running containers have a marker:
  // one short readdir).
  if (auto stale = runner.sweep(); stale) {
    for (const auto& p : stale->problems) std::fprintf(stderr, "kiste: warning: %s\n", p.c_str());
  }
  // A container kept after exit (no --rm) is named, on stderr so `$(kiste run …)` stays the
  // command's output; `kiste prune` removes it once it has exited.
  if (!a.rm) std::fprintf(stderr, "%s\n", id.c_str());
  runtime::StartOptions start{.remove = a.rm,
                              .store_lease = prepared->lease ? &*prepared->lease : nullptr,
                              .network_ready = prepared->network_ready,
                              .exited = prepared->network_exited};
  auto result = runner.run(spec, start);
  if (!result) return report(result.error());
  if (!result->exec_error.empty()) {
    std::fprintf(stderr, "kiste: error: %s\n", result->exec_error.c_str());
    return result->exit_code;
  }
  if (result->oom_killed) {
    std::fprintf(stderr, "kiste: error: %s\n", result->oom_message().c_str());
  }
  return result->exit_code;
}

// `kiste run …` as this process was called: the words after `run` (what the monitor re-reads).
std::vector<std::string> run_words() {
  auto text = sys::read_file("/proc/self/cmdline");
  std::vector<std::string> words;
  if (!text) return words;
  for (size_t start = 0; start < text->size();) {
    size_t end = text->find('\0', start);
    if (end == std::string::npos) end = text->size();
    words.emplace_back(text->substr(start, end - start));
    start = end + 1;
  }
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i] == "--root" || words[i] == "--log-level") {
      ++i;
    } else if (words[i] == "run") {
      return {words.begin() + static_cast<long>(i) + 1, words.end()};
    }
  }
  return {};
}

}  // namespace

Result<std::vector<fs::path>> container_lower_dirs(const Globals& g, const runtime::ContainerState& s,
                                                  std::optional<FileLock>& lease) {
  const bool rootfs = std::any_of(s.run_args.begin(), s.run_args.end(), [](const std::string& w) {
    return w == "--rootfs" || w.starts_with("--rootfs=");
  });
  RunArgs a;
  std::vector<std::string> positional;
  if (rootfs) {
    a.rootfs = s.image;
  } else {
    positional.push_back(s.image);
  }
  KISTE_ASSIGN_OR_RETURN(ImageForRun image, image_for_run(g, a, positional, lease));
  return image.lower_dirs;
}

int start_monitor(const Globals& g, const std::string& id, const std::vector<std::string>& run_args) {
  auto exe = sys::readlinkat(AT_FDCWD, "/proc/self/exe");
  if (!exe) return report(exe.error());
  std::vector<std::string> argv{*exe, "--root", g.root.native(), "--log-level", g.log_level,
                                "run", "--monitor", id};
  argv.insert(argv.end(), run_args.begin(), run_args.end());
  auto started = runtime::spawn_monitor(runtime::ContainerStore(g.root), id, argv);
  if (!started) return report(started.error());
  if (!started->started) {
    std::fprintf(stderr, "kiste: error: %s\n", started->message.c_str());
    return started->exit_code;
  }
  return 0;
}

namespace {

// run -d: the record, then the monitor (a re-executed kiste) that runs the container; prints the
// id once the command was exec'd, or the start error with its exit status.
int run_detached(Globals& g, RunArgs& a, std::vector<std::string> positional) {
  if (a.opts.tty || a.opts.interactive) {
    return report(Error{.code = Errc::Unsupported,
                        .message = "run -d: a detached container has no stdin or terminal yet (-i, -t); "
                                   "`kiste attach` streams its output"});
  }
  runtime::ContainerState st;
  auto restart = runtime::parse_restart_policy(a.restart);
  if (!restart) return report(restart.error());
  st.restart = *restart;
  if (!a.stop_signal.empty()) {
    auto sig = runtime::parse_signal(a.stop_signal);
    if (!sig) return report(sig.error().with_context("--stop-signal"));
    st.stop_signal = *sig;
  }
  if (a.stop_timeout) st.stop_timeout = *a.stop_timeout;
  st.auto_remove = a.rm;
  auto log_opts = runtime::parse_log_options(a.log_opts);
  if (!log_opts) return report(log_opts.error());
  st.log = *log_opts;
  if (!a.name.empty()) {
    if (auto ok = runtime::validate_container_name(a.name); !ok) return report(ok.error());
  }
  // A missing image is pulled or fails here, before any record exists (as docker's run does).
  if (a.rootfs.empty() && !positional.empty()) {
    if (auto pulled = pull_for_run(g, a, positional.front()); !pulled) return report(pulled.error());
  }
  std::optional<FileLock> lease;
  std::vector<std::string> rest = positional;
  auto image = image_for_run(g, a, rest, lease);
  if (!image) return report(image.error());
  lease.reset();
  st.id = runtime::Runner::new_id();
  st.name = a.name;
  st.image = a.rootfs.empty() ? positional.front() : a.rootfs;
  // The image's HEALTHCHECK and STOPSIGNAL, under the flags (docker's order).
  auto health = runtime::resolve_health(image->healthcheck, a.health);
  if (!health) return report(health.error());
  st.health = *health;
  if (a.stop_signal.empty() && !image->stop_signal.empty()) {
    auto sig = runtime::parse_signal(image->stop_signal);
    if (!sig) return report(sig.error().with_context(fmt::format("image {}: StopSignal", quote(st.image))));
    st.stop_signal = *sig;
  }
  st.command = rest;
  st.created = runtime::rfc3339_now();
  st.run_args = run_words();
  const runtime::ContainerStore store(g.root);
  auto created = store.create(st);
  if (!created) return report(created.error());
  if (int code = start_monitor(g, st.id, st.run_args); code != 0) return code;
  std::printf("%s\n", st.id.c_str());
  return 0;
}

// The hidden `run --monitor ID …`: this process is the monitor of container ID.
int run_monitor_command(Globals& g, RunArgs& a, std::vector<std::string> positional) {
  auto placement = cgroup_placement(a.cgroup_manager, a.cgroup_parent, asks_for_limits(a.opts));
  runtime::MonitorOptions mo{.runner = {.root = g.root, .cgroups = placement.value_or(runtime::CgroupPlacement{})},
                             .id = a.monitor_id};
  const runtime::Runner runner(mo.runner);
  mo.prepare = [&]() -> Result<runtime::PreparedStart> {
    KISTE_TRY(placement);
    return prepare_start(g, a, positional, runner, a.monitor_id);
  };
  return runtime::run_monitor(mo);
}

}  // namespace

// kiste volume create|ls|rm: named volumes (<root>/volumes/NAME/_data), as docker keeps them.
void register_volume_commands(CLI::App& app, Globals& g) {
  auto* vol = app.add_subcommand("volume", "Manage named volumes (-v NAME:/path)");
  vol->require_subcommand(1);
  auto names = std::make_shared<std::vector<std::string>>();
  vol->add_subcommand("create", "Create named volumes")
      ->callback([&g, names] {
        for (const auto& n : *names) {
          (void)value_or_exit(runtime::ensure_volume(image::RootLayout(g.root).volumes(), n));
          std::printf("%s\n", n.c_str());
        }
      })
      ->add_option("NAME", *names, "volume names")
      ->required();
  vol->add_subcommand("ls", "List named volumes")->callback([&g] {
    auto list = runtime::list_volumes(image::RootLayout(g.root).volumes());
    if (!list) throw CLI::RuntimeError(report(list.error()));
    for (const auto& n : *list) std::printf("%s\n", n.c_str());
  });
  auto rm_names = std::make_shared<std::vector<std::string>>();
  vol->add_subcommand("rm", "Remove named volumes and their data")
      ->callback([&g, rm_names] {
        for (const auto& n : *rm_names) exit_on_error(runtime::remove_volume(image::RootLayout(g.root).volumes(), n));
      })
      ->add_option("NAME", *rm_names, "volume names")
      ->required();
}

void register_run_commands(CLI::App& app, Globals& g) {
  register_volume_commands(app, g);
  add_run_command(app, g);
  register_container_commands(app, g);
}

CLI::App* add_run_command(CLI::App& app, Globals& g) {
  auto a = std::make_shared<RunArgs>();
  auto* run = app.add_subcommand("run", "Run a command in a new container");
  run->set_help_flag("--help", "show this help");
  run->footer(
      "Arguments: (IMAGE | --rootfs DIR) [COMMAND [ARG...]]  (everything after IMAGE is the command)\n"
      "Network: unlike docker, a container has no network by default: its own network namespace\n"
      "with only loopback (--network none). --network host shares the host's; --network kiste\n"
      "(or a network of `kiste network create`) puts it on a bridge with NAT, like docker's\n"
      "default. Build RUN steps get a private network namespace on that default bridge, as\n"
      "docker's (no host loopback); `kiste build --network none` gives them only loopback,\n"
      "`kiste build --network host` the host's.");
  run->prefix_command();  // everything after IMAGE (or the first command word) is the command
  auto& o = a->opts;
  run->add_option("--rootfs", a->rootfs, "run this directory as the (read-only lower) root");
  run->add_flag("--rm", a->rm, "remove the container's directories when it exits");
  run->add_flag("-d,--detach", a->detach, "run in the background (a monitor owns it) and print its id");
  run->add_option("--name", a->name, "name the container (-d)");
  run->add_option("--restart", a->restart, "no (default), on-failure[:N], always, unless-stopped (-d)");
  run->add_option("--stop-signal", a->stop_signal, "the signal `kiste stop` sends first (default TERM)");
  run->add_option("--stop-timeout", a->stop_timeout, "seconds `kiste stop` waits before SIGKILL (default 10)");
  run->add_option("--health-cmd", a->health.cmd, "command to run to check health (-d)");
  run->add_option("--health-interval", a->health.interval, "time between checks, e.g. 30s (default 30s)");
  run->add_option("--health-timeout", a->health.timeout, "a check that runs longer is killed and failed (default 30s)");
  run->add_option("--health-retries", a->health.retries, "failures in a row that make it unhealthy (default 3)");
  run->add_option("--health-start-period", a->health.start_period, "failures in this time after a start do not count");
  run->add_option("--log-opt", a->log_opts, "json-file log: max-size=SIZE, max-file=N (-d)")->allow_extra_args(false);
  run->add_flag("--no-healthcheck", a->health.none, "disable the image's HEALTHCHECK");
  run->add_option("--monitor", a->monitor_id)->group("");  // the monitor's own re-execution
  run->add_flag("-i,--interactive", o.interactive, "keep stdin connected");
  run->add_flag("-t,--tty", o.tty, "allocate a pseudo-terminal");
  run->add_option("-e,--env", o.env, "set an environment variable (KEY=VALUE or KEY)")->allow_extra_args(false);
  run->add_option("--env-file", o.env_files, "read environment variables from a file")->allow_extra_args(false);
  run->add_option("--entrypoint", o.entrypoint, "override the image's entrypoint");
  run->add_option("-w,--workdir", o.workdir, "working directory inside the container");
  run->add_option("-u,--user", o.user, "user name or uid[:gid]");
  run->add_option("-h,--hostname", o.hostname, "container hostname");
  run->add_option("--cap-add", o.cap_add, "add a capability")->allow_extra_args(false);
  run->add_option("--cap-drop", o.cap_drop, "drop a capability")->allow_extra_args(false);
  run->add_flag("--privileged", o.privileged, "all capabilities, no seccomp, no masked paths");
  run->add_option("-v,--volume", o.volumes, "bind mount HOST:CONTAINER[:ro]")->allow_extra_args(false);
  run->add_option("--mount", o.mounts, "type=bind|tmpfs,source=…,target=…[,readonly]")->allow_extra_args(false);
  run->add_option("--security-opt", o.security_opts,
                  "seccomp=PROFILE.json|unconfined, no-new-privileges")->allow_extra_args(false);
  run->add_option("--ulimit", o.ulimits, "NAME=SOFT[:HARD]")->allow_extra_args(false);
  run->add_option("--pids-limit", o.pids_limit, "maximum number of tasks (-1: unlimited)");
  run->add_option("-m,--memory", o.memory, "memory limit (e.g. 5m, 1g)");
  run->add_option("--memory-swap", o.memory_swap, "memory plus swap limit (-1: unlimited)");
  run->add_option("--cpus", o.cpus, "CPU limit (e.g. 1.5)");
  run->add_option("-c,--cpu-shares", o.cpu_shares, "relative CPU weight");
  run->add_flag("--read-only", o.read_only, "mount the root read-only");
  run->add_flag("--init", o.init, "run a small init as PID 1 that reaps zombies and forwards signals");
  run->add_option("--network,--net", o.network,
                  "none (default), host, a bridge network's name (`kiste` is the default bridge), "
                  "pasta (user-mode networking: rootless containers' network), or container:NAME|ID "
                  "(a running container's network namespace)");
  run->add_option("--ip", a->ip, "the container's IPv4 address on its bridge network");
  run->add_option("-p,--publish", a->publish,
                  "[IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]: forward a host port (needs --network NAME or pasta)")
      ->allow_extra_args(false);
  run->add_option("--dns", a->dns.servers, "a nameserver for /etc/resolv.conf (replaces the host's)")
      ->allow_extra_args(false);
  run->add_option("--dns-search", a->dns.search, "a search domain for /etc/resolv.conf (`.`: none)")
      ->allow_extra_args(false);
  run->add_option("--dns-option", a->dns.options, "a resolv.conf option, e.g. ndots:2")
      ->allow_extra_args(false);
  run->add_flag("-P,--publish-all", a->publish_all, "publish the image's EXPOSEd ports to free host ports");
  run->add_flag("--publish-bypass-firewall", a->publish_bypass_firewall,
                "also DNAT the published ports (IPv4, and IPv6 host addresses on an --ipv6 network), "
                "past the host's input firewall (as docker does)");
  run->add_option("--network-alias", a->aliases, "another name the container has in its network's DNS")
      ->allow_extra_args(false);
  run->add_option("--add-host", a->add_hosts, "NAME:IP (or NAME:host-gateway) for /etc/hosts")
      ->allow_extra_args(false);
  run->add_option("--pull", a->pull, "missing (default: pull an image the store lacks), always or never");
  run->add_flag("-q,--quiet", a->quiet, "no pull progress");
  add_registry_flags(run, a->registry);
  run->add_option("--platform", a->platform,
                  "os/arch[/variant] the image must be (an index picks it; no emulation)");
  run->add_option("--cgroup-manager", a->cgroup_manager,
                  "systemd or cgroupfs (default: systemd when it is PID 1 on a cgroup v2 host)");
  run->add_option("--cgroup-parent", a->cgroup_parent,
                  "systemd: the slice (default kiste.slice); cgroupfs: the parent cgroup (v2 default kiste)");
  run->add_option("--userns", o.userns,
                  "host (default), auto (a free 65536-id range) or keep-id (rootless: your own ids inside)");
  run->add_option("--uidmap", o.uidmap, "CONTAINER_ID:HOST_ID:SIZE user namespace uid mapping")
      ->allow_extra_args(false);
  run->add_option("--gidmap", o.gidmap, "CONTAINER_ID:HOST_ID:SIZE user namespace gid mapping")
      ->allow_extra_args(false);
  run->callback([a, run, &g] {
    if (auto bad = unknown_leading_flag(*run)) {  // CLI11 leaves flags it does not know to us
      throw CLI::RuntimeError(report(Error{.code = Errc::InvalidArgument, .message = *bad}));
    }
    int code = !a->monitor_id.empty() ? run_monitor_command(g, *a, run->remaining())
               : a->detach              ? run_detached(g, *a, run->remaining())
                                        : run_command(g, *a, run->remaining());
    if (code != 0) throw CLI::RuntimeError(code);
  });
  return run;
}

}  // namespace kiste::cli
