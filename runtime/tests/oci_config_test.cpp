#include <sys/mount.h>
#include <sys/resource.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <kiste/runtime/oci_config.hpp>
#include <kiste/runtime/oci_runtime.hpp>

namespace kiste::runtime::oci {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

// runc spec's config.json (runc 1.1), the shape most engines start from.
json runc_spec() {
  return json::parse(R"({
    "ociVersion": "1.0.2-dev",
    "process": {"terminal": true, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
      "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      "cwd": "/",
      "capabilities": {"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]},
      "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
      "noNewPrivileges": true},
    "root": {"path": "rootfs", "readonly": true},
    "hostname": "runc",
    "mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
      {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
      {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
      {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
      {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
      {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}],
    "linux": {
      "resources": {"devices": [{"allow": false, "access": "rwm"}]},
      "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
      "maskedPaths": ["/proc/acpi", "/proc/kcore"],
      "readonlyPaths": ["/proc/bus", "/proc/sys"]}
  })");
}

Result<BundleConfig> parse(const json& j) { return parse_config(j.dump(), "/b"); }

TEST(OciConfig, RuncSpecMapsToTheSpec) {
  auto c = parse(runc_spec());
  ASSERT_TRUE(c) << c.error().to_string();
  const ContainerSpec& s = c->spec;
  EXPECT_EQ(s.root.rootfs, "/b/rootfs");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_EQ(s.hostname, "runc");
  EXPECT_EQ(s.process.args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(s.process.terminal);
  EXPECT_TRUE(s.process.no_new_privileges);
  EXPECT_EQ(s.process.capabilities.bounding, (1ULL << 29) | (1ULL << 5) | (1ULL << 10));
  EXPECT_EQ(s.process.capabilities.ambient, s.process.capabilities.bounding);
  ASSERT_EQ(s.process.rlimits.size(), 1u);
  EXPECT_EQ(s.process.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_TRUE(s.mounts.empty());  // all seven are the standard kernel filesystems
  EXPECT_TRUE(s.namespaces.network);
  EXPECT_FALSE(s.namespaces.cgroup);
  EXPECT_TRUE(s.seccomp.unconfined);  // no linux.seccomp: none, as runc
  EXPECT_EQ(s.masked_paths, (std::vector<std::string>{"/proc/acpi", "/proc/kcore"}));
  EXPECT_TRUE(s.resources.device_rules.empty());
}

TEST(OciConfig, OwnSpecVerbOutputParses) {
  auto c = parse_config(default_config_json(), "/b");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->spec.process.capabilities.bounding, kDockerDefaultCaps);
  EXPECT_FALSE(c->spec.process.no_new_privileges);
  EXPECT_TRUE(c->spec.namespaces.cgroup);
  EXPECT_EQ(c->spec.masked_paths, docker_masked_paths());
}

TEST(OciConfig, MountsBindsAndTmpfs) {
  json j = runc_spec();
  j["mounts"].push_back({{"destination", "/etc/hosts"}, {"type", "bind"}, {"source", "/run/h"},
                         {"options", {"rbind", "ro", "nosuid", "nodev", "rprivate"}}});
  j["mounts"].push_back({{"destination", "/data"}, {"source", "vol"}, {"options", {"bind", "rslave"}}});
  j["mounts"].push_back({{"destination", "/run"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                         {"options", {"noexec", "size=1m", "mode=755"}}});
  auto c = parse(j);
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_EQ(c->spec.mounts.size(), 3u);
  const MountSpec& hosts = c->spec.mounts[0];
  EXPECT_EQ(hosts.kind, MountKind::Bind);
  EXPECT_EQ(hosts.source, "/run/h");
  EXPECT_TRUE(hosts.readonly);
  EXPECT_EQ(hosts.flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV));
  EXPECT_EQ(c->spec.mounts[1].source, "/b/vol");  // relative to the bundle
  EXPECT_EQ(c->spec.mounts[1].propagation, Propagation::RSlave);
  EXPECT_EQ(c->spec.mounts[2].kind, MountKind::Tmpfs);
  EXPECT_EQ(c->spec.mounts[2].tmpfs_options, "size=1m,mode=755");
  EXPECT_EQ(c->spec.mounts[2].flags, static_cast<unsigned long>(MS_NOEXEC));
}

TEST(OciConfig, ResourcesSeccompSysctlHooks) {
  json j = runc_spec();
  j["linux"]["resources"]["memory"] = {{"limit", 67108864}};
  j["linux"]["resources"]["pids"] = {{"limit", 100}};
  j["linux"]["resources"]["cpu"] = {{"quota", 50000}, {"period", 100000}, {"shares", 512}};
  j["linux"]["resources"]["devices"].push_back({{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 200}, {"access", "rwm"}});
  j["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                           {"architectures", {"SCMP_ARCH_X86_64"}},
                           {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
  j["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}, {"kernel.shmmax", "65536"}};
  j["linux"]["cgroupsPath"] = "/ci/job1";
  j["process"]["oomScoreAdj"] = 500;
  j["hooks"] = {{"prestart", {{{"path", "/bin/true"}, {"args", {"true", "x"}}, {"timeout", 5}}}},
                {"poststop", {{{"path", "/bin/false"}}}}};
  j["annotations"] = {{"a", "b"}};
  auto c = parse(j);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->spec.resources.memory, 67108864);
  EXPECT_EQ(c->spec.resources.pids, 100);
  EXPECT_EQ(c->spec.resources.cpu_quota, 50000);
  EXPECT_EQ(c->spec.resources.cpu_shares, 512u);
  ASSERT_EQ(c->spec.resources.device_rules.size(), 1u);
  EXPECT_EQ(c->spec.resources.device_rules[0].to_string(), "c 10:200 rwm");
  EXPECT_FALSE(c->spec.seccomp.unconfined);
  EXPECT_THAT(c->spec.seccomp.profile_json, HasSubstr("mkdir"));
  EXPECT_EQ(c->spec.sysctls.size(), 2u);
  EXPECT_EQ(c->spec.process.oom_score_adj, 500);
  EXPECT_EQ(c->cgroups_path, "/ci/job1");
  ASSERT_EQ(c->hooks.prestart.size(), 1u);
  EXPECT_EQ(c->hooks.prestart[0].timeout, 5);
  EXPECT_EQ(c->annotations.size(), 1u);
  auto back = parse_hooks(hooks_to_json(c->hooks));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, c->hooks);
}

TEST(OciConfig, NamespacePathsAreJoined) {
  json j = runc_spec();
  j["linux"]["namespaces"][1] = {{"type", "network"}, {"path", "/run/netns/x"}};
  j["linux"]["namespaces"][3] = {{"type", "uts"}, {"path", "/proc/7/ns/uts"}};
  j["linux"]["namespaces"].push_back({{"type", "cgroup"}, {"path", "/proc/7/ns/cgroup"}});
  auto c = parse(j);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->spec.namespaces.network_path, "/run/netns/x");
  EXPECT_EQ(c->spec.namespaces.uts_path, "/proc/7/ns/uts");
  EXPECT_EQ(c->spec.namespaces.cgroup_path, "/proc/7/ns/cgroup");
  EXPECT_TRUE(c->spec.namespaces.cgroup);
  j["linux"]["namespaces"][0] = {{"type", "pid"}, {"path", "/proc/7/ns/pid"}};
  j["linux"]["namespaces"][4] = {{"type", "mount"}, {"path", "/proc/7/ns/mnt"}};
  c = parse(j);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->spec.namespaces.pid_path, "/proc/7/ns/pid");
  EXPECT_EQ(c->spec.namespaces.mount_path, "/proc/7/ns/mnt");
}

TEST(OciConfig, AUserNamespaceTakesTheMappings) {
  json j = runc_spec();
  j["linux"]["namespaces"].push_back({{"type", "user"}});
  j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  j["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 200000}, {"size", 1}},
                               {{"containerID", 5}, {"hostID", 300005}, {"size", 2}}};
  auto c = parse(j);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->spec.userns.mode, UsernsMode::Private);
  EXPECT_EQ(c->spec.userns.uid_map, (std::vector<IdMapping>{{0, 100000, 65536}}));
  EXPECT_EQ(c->spec.userns.gid_map, (std::vector<IdMapping>{{0, 200000, 1}, {5, 300005, 2}}));
  EXPECT_EQ(parse(runc_spec())->spec.userns.mode, UsernsMode::Host);
}

// Hostile or unsupported configs: each is refused with one line that names the field.
TEST(OciConfig, BadInputIsRefusedNamingTheField) {
  struct Case {
    std::string name;
    std::function<void(json&)> change;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"array", [](json& j) { j = json::array(); }, "must be a JSON object"},
      {"version", [](json& j) { j["ociVersion"] = "2.0.0"; }, "ociVersion"},
      {"version type", [](json& j) { j["ociVersion"] = 1; }, "ociVersion: must be a string"},
      {"no root", [](json& j) { j.erase("root"); }, "root: is required"},
      {"root path type", [](json& j) { j["root"]["path"] = json::array(); }, "root.path: must be a string"},
      {"no args", [](json& j) { j["process"]["args"] = json::array(); }, "process.args"},
      {"arg type", [](json& j) { j["process"]["args"] = {1}; }, "process.args"},
      {"nul", [](json& j) { j["process"]["cwd"] = std::string("/a\0b", 4); }, "NUL"},
      {"cwd", [](json& j) { j["process"]["cwd"] = "tmp"; }, "process.cwd"},
      {"env", [](json& j) { j["process"]["env"] = {"NOEQUALS"}; }, "process.env"},
      {"uid", [](json& j) { j["process"]["user"]["uid"] = -1; }, "process.user.uid"},
      {"uid huge", [](json& j) { j["process"]["user"]["uid"] = 1e30; }, "process.user.uid"},
      {"cap", [](json& j) { j["process"]["capabilities"]["bounding"] = {"CAP_NOPE"}; }, "unknown capability"},
      {"rlimit", [](json& j) { j["process"]["rlimits"] = {{{"type", "RLIMIT_X"}, {"hard", 1}, {"soft", 1}}}; }, "unknown type"},
      {"rlimit soft", [](json& j) { j["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"hard", 1}, {"soft", 2}}}; }, "soft is above hard"},
      {"oom", [](json& j) { j["process"]["oomScoreAdj"] = 5000; }, "oomScoreAdj"},
      {"userns no maps", [](json& j) { j["linux"]["namespaces"].push_back({{"type", "user"}}); }, "linux.uidMappings: a new user namespace needs both"},
      {"userns join", [](json& j) { j["linux"]["namespaces"].push_back({{"type", "user"}, {"path", "/proc/1/ns/user"}}); }, "joining an existing user namespace"},
      {"uidmap", [](json& j) { j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}}; }, "linux.uidMappings: given without a new user namespace"},
      {"uidmap size", [](json& j) {
         j["linux"]["namespaces"].push_back({{"type", "user"}});
         j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 0}}};
         j["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
       }, "linux.uidMappings[].size: must be positive"},
      {"uidmap overlap", [](json& j) {
         j["linux"]["namespaces"].push_back({{"type", "user"}});
         j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 10}}, {{"containerID", 5}, {"hostID", 5000}, {"size", 10}}};
         j["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
       }, "linux.uidMappings"},
      {"dup ns", [](json& j) { j["linux"]["namespaces"].push_back({{"type", "pid"}}); }, "given twice"},
      {"host pid", [](json& j) { j["linux"]["namespaces"].erase(0); }, "host's pid namespace"},
      {"join relative", [](json& j) { j["linux"]["namespaces"][0]["path"] = "proc/1/ns/pid"; }, "must be absolute"},
      {"ns type", [](json& j) { j["linux"]["namespaces"].push_back({{"type", "bogus"}}); }, "unknown namespace"},
      {"mount escape", [](json& j) { j["mounts"].push_back({{"destination", "/../etc"}, {"type", "tmpfs"}}); }, "would leave the root"},
      {"mount type", [](json& j) { j["mounts"].push_back({{"destination", "/n"}, {"type", "nfs"}, {"source", "x"}}); }, "mount type"},
      {"mount option", [](json& j) { j["mounts"].push_back({{"destination", "/n"}, {"type", "bind"}, {"source", "/x"}, {"options", {"rshared"}}}); }, "rshared"},
      {"bind no source", [](json& j) { j["mounts"].push_back({{"destination", "/n"}, {"type", "bind"}}); }, "needs a source"},
      {"idmap", [](json& j) { j["mounts"].push_back({{"destination", "/n"}, {"type", "bind"}, {"source", "/x"}, {"uidMappings", json::array()}}); }, "idmapped"},
      {"notify", [](json& j) { j["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", {{{"names", {"open"}}, {"action", "SCMP_ACT_NOTIFY"}}}}}; }, "SCMP_ACT_NOTIFY"},
      {"listener", [](json& j) { j["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"listenerPath", "/run/agent.sock"}}; }, "listenerPath"},
      {"seccomp action", [](json& j) { j["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_NOPE"}}; }, "linux.seccomp"},
      {"sysctl host", [](json& j) { j["linux"]["sysctl"] = {{"kernel.hostname_x", "1"}}; }, "not namespaced"},
      {"sysctl type", [](json& j) { j["linux"]["sysctl"] = {{"net.ipv4.ip_forward", 1}}; }, "must be a string"},
      {"devices deny", [](json& j) {
         j["linux"]["resources"]["devices"].push_back({{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwm"}});
         j["linux"]["resources"]["devices"].push_back({{"allow", false}, {"type", "c"}, {"major", 1}, {"access", "r"}});
       }, "narrows an earlier allow"},
      {"device access", [](json& j) { j["linux"]["resources"]["devices"].push_back({{"allow", true}, {"access", "rwx"}}); }, "rwm"},
      {"blkio", [](json& j) { j["linux"]["resources"]["blockIO"] = {{"weight", 10}}; }, "blockIO"},
      {"cpus", [](json& j) { j["linux"]["resources"]["cpu"] = {{"cpus", "0-1"}}; }, "cpu.cpus"},
      {"memory type", [](json& j) { j["linux"]["resources"]["memory"] = {{"limit", "1g"}}; }, "memory.limit"},
      {"hook path", [](json& j) { j["hooks"] = {{"prestart", {{{"path", "rel"}}}}}; }, "hooks.prestart[].path"},
      {"hook timeout", [](json& j) { j["hooks"] = {{"startContainer", {{{"path", "/bin/true"}, {"timeout", 0}}}}}; }, "hooks.startContainer[].timeout"},
      {"linux devices", [](json& j) { j["linux"]["devices"] = {{{"path", "/dev/fuse"}}}; }, "linux.devices[].type"},
      {"device type", [](json& j) { j["linux"]["devices"] = {{{"path", "/dev/p"}, {"type", "s"}}}; }, "must be c, u, b or p"},
      {"device rel", [](json& j) { j["linux"]["devices"] = {{{"path", "dev/x"}, {"type", "c"}, {"major", 1}, {"minor", 1}}}; }, "absolute"},
      {"device mode", [](json& j) { j["linux"]["devices"] = {{{"path", "/dev/x"}, {"type", "c"}, {"major", 1}, {"minor", 1}, {"fileMode", 0100666}}}; }, "fileMode"},
      {"annotation", [](json& j) { j["annotations"] = {{"a", 1}}; }, "annotations.a"},
      {"propagation", [](json& j) { j["linux"]["rootfsPropagation"] = "shared"; }, "rootfsPropagation"},
      {"hostname", [](json& j) { j["hostname"] = std::string(100, 'h'); }, "hostname"},
  };
  for (const Case& c : cases) {
    json j = runc_spec();
    c.change(j);
    auto r = parse(j);
    ASSERT_FALSE(r) << c.name;
    EXPECT_THAT(r.error().to_string(), HasSubstr(c.expect)) << c.name;
    EXPECT_EQ(r.error().to_string().find('\n'), std::string::npos) << c.name;
  }
  EXPECT_FALSE(parse_config("{", "/b"));
  EXPECT_FALSE(parse_config(std::string(5 << 20, ' '), "/b"));
}

// What docker 20.10 writes: blockIO weight 0 (unset) and a deny of fuse (c 10:229) that no
// allow rule covers (a no-op where everything else is denied).
TEST(OciConfig, DockersResourcesParse) {
  json j = runc_spec();
  j["linux"]["resources"] = json::parse(R"({"devices":[{"allow":false,"access":"rwm"},
      {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
      {"allow":true,"type":"c","major":5,"minor":1,"access":"rwm"},
      {"allow":false,"type":"c","major":10,"minor":229,"access":"rwm"}],
      "memory":{"disableOOMKiller":false},"cpu":{"shares":0},"blockIO":{"weight":0}})");
  auto c = parse(j);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->spec.resources.device_rules,
            (std::vector<DeviceRule>{{.type = 'c', .major = 1, .minor = 5, .access = "rwm"},
                                     {.type = 'c', .major = 5, .minor = 1, .access = "rwm"}}));
  EXPECT_FALSE(c->spec.resources.cpu_shares);
}

TEST(OciConfig, DeviceNodes) {
  json j = runc_spec();
  j["linux"]["devices"] = json::parse(R"([{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438,"uid":0,"gid":0},
      {"path":"/dev/loop7","type":"b","major":7,"minor":7,"fileMode":432,"gid":6},
      {"path":"/dev/fifo","type":"p","fileMode":420}])");
  auto c = parse(j);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->spec.devices,
            (std::vector<DeviceNode>{{.path = "/dev/fuse", .type = DeviceType::Char, .major = 10, .minor = 229, .mode = 0666},
                                     {.path = "/dev/loop7", .type = DeviceType::Block, .major = 7, .minor = 7, .mode = 0660, .gid = 6},
                                     {.path = "/dev/fifo", .type = DeviceType::Fifo, .mode = 0644}}));
}

// `update --resources`: a LinuxResources object alone.
TEST(OciConfig, LinuxResourcesAlone) {
  // (docker's update: zeros for what it does not change)
  auto r = parse_linux_resources(R"({"memory":{"limit":67108864,"reservation":0,"swap":134217728,"kernel":0},)"
                                 R"("cpu":{"shares":0,"quota":20000,"period":100000},"pids":{"limit":9},"blockIO":{"weight":0}})");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->memory, 67108864);
  EXPECT_EQ(r->memory_swap, 134217728);
  EXPECT_EQ(r->cpu_quota, 20000);
  EXPECT_EQ(r->cpu_period, 100000u);
  EXPECT_EQ(r->pids, 9);
  for (std::string_view bad : {"[]", "{", R"({"memory":{"reservation":5}})", R"({"cpu":{"cpus":"0"}})",
                               R"({"memory":{"limit":"1g"}})"}) {
    auto e = parse_linux_resources(bad);
    EXPECT_FALSE(e) << bad;
  }
  EXPECT_THAT(parse_linux_resources(R"({"memory":{"reservation":5}})").error().to_string(),
              StartsWith("linux.resources.memory.reservation: is not supported"));
}

TEST(OciConfig, LabelsAreIgnoredWithAWarning) {
  json j = runc_spec();
  j["process"]["apparmorProfile"] = "docker-default";
  auto c = parse(j);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_THAT(c->warnings[0], HasSubstr("apparmorProfile"));
}

TEST(OciConfig, CgroupLocation) {
  EXPECT_EQ(*cgroup_location("", "c1"), (CgroupLocation{"/kiste-runc", "c1"}));
  EXPECT_EQ(*cgroup_location("/libpod_parent/libpod-abc", "c1"), (CgroupLocation{"/libpod_parent", "libpod-abc"}));
  EXPECT_EQ(*cgroup_location("/top", "c1"), (CgroupLocation{"/", "top"}));
  EXPECT_EQ(*cgroup_location("a/b", "c1"), (CgroupLocation{"/kiste-runc/a", "b"}));
  EXPECT_EQ(*cgroup_location("machine.slice:libpod:abc", "c1"),
            (CgroupLocation{"/machine.slice", "libpod-abc.scope"}));
  EXPECT_EQ(*cgroup_location("system.slice:docker:abc", "c1"), (CgroupLocation{"/system.slice", "docker-abc.scope"}));
  EXPECT_FALSE(cgroup_location("/a/../b", "c1"));
  EXPECT_FALSE(cgroup_location("/a//b", "c1"));
  EXPECT_FALSE(cgroup_location("x.slice:p:a/b", "c1"));
  EXPECT_FALSE(cgroup_location("a:b:c:d", "c1"));
}

TEST(OciRuntime, IdsAndSignals) {
  EXPECT_TRUE(check_container_id("abc-1.2_x"));
  for (std::string_view bad : std::vector<std::string_view>{"", ".", "..", "../x", "a/b", "-a", std::string_view("a\0b", 3)}) {
    EXPECT_FALSE(check_container_id(bad)) << bad;
  }
  EXPECT_EQ(*parse_signal("TERM"), 15);
  EXPECT_EQ(*parse_signal("SIGKILL"), 9);
  EXPECT_EQ(*parse_signal("10"), 10);
  EXPECT_FALSE(parse_signal("NOPE"));
  EXPECT_FALSE(parse_signal("0"));
  EXPECT_FALSE(parse_signal("99999999999"));
}

TEST(OciConfig, FeaturesNameTheVersionRange) {
  json f = json::parse(features_json());
  EXPECT_EQ(f["ociVersionMin"], "1.0.0");
  EXPECT_TRUE(f.contains("ociVersionMax"));
  EXPECT_TRUE(f["linux"]["seccomp"]["enabled"].get<bool>());
}

}  // namespace
}  // namespace kiste::runtime::oci
