// kiste cp's copy: docker's rules for where things land, and a container whose symlinks point
// out of its root (`/etc -> /`, `../..`, absolute links to host files) never makes it read or
// write outside that root; with openat2 and with its userspace fallback. A plain directory
// stands in for the container's root (what /proc/PID/root or the overlay gives cp): no root.
#include <fcntl.h>

#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/container_copy.hpp>

namespace kiste::runtime {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  auto s = sys::read_file(p);
  return s ? *s : "<missing>";
}

class ContainerCopy : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    sys::set_openat2_disabled(GetParam());
    auto t = TempDir::create(fs::temp_directory_path(), "kiste-cp-");
    ASSERT_TRUE(t);
    tmp_.emplace(std::move(*t));
    root_ = tmp_->path() / "root";
    host_ = tmp_->path() / "host";
    ASSERT_TRUE(sys::mkdir_all(root_ / "data" / "sub"));
    ASSERT_TRUE(sys::mkdir_all(host_));
    ASSERT_TRUE(sys::write_file_atomic(root_ / "data" / "a.txt", "in-a"));
    ASSERT_TRUE(sys::write_file_atomic(root_ / "data" / "sub" / "b.txt", "in-b"));
    fs::create_symlink("/etc/passwd", root_ / "data" / "pw");  // a link, copied as a link
    // The hostile part: /etc is the container's root, /up climbs out, /out names a host dir.
    fs::create_directory_symlink("/", root_ / "etc");
    fs::create_directory_symlink("../..", root_ / "up");
    ASSERT_TRUE(sys::mkdir_all(tmp_->path() / "outside"));
    fs::create_directory_symlink(tmp_->path() / "outside", root_ / "out");
    ASSERT_TRUE(sys::write_file_atomic(tmp_->path() / "secret", "host-secret"));
    fs::create_symlink(tmp_->path() / "secret", root_ / "victim");
    auto fd = sys::open(root_, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_TRUE(fd);
    root_fd_ = std::move(*fd);
  }
  void TearDown() override { sys::set_openat2_disabled(false); }
  CopyEnd in(std::string path) const { return {.root_fd = root_fd_.get(), .path = std::move(path)}; }
  CopyEnd out(const fs::path& p) const { return {.path = p.native()}; }

  std::optional<TempDir> tmp_;
  fs::path root_, host_;
  UniqueFd root_fd_;
};

TEST_P(ContainerCopy, FilesAndDirectoriesLandWhereDockerPutsThem) {
  // A file to a new name, then into an existing directory.
  ASSERT_TRUE(copy_path(in("/data/a.txt"), out(host_ / "x.txt")));
  EXPECT_EQ(read(host_ / "x.txt"), "in-a");
  ASSERT_TRUE(copy_path(in("data/a.txt"), out(host_)));
  EXPECT_EQ(read(host_ / "a.txt"), "in-a");
  // A directory to a new name (made), into an existing one (under its name), and its contents.
  auto st = copy_path(in("/data"), out(host_ / "copy"));
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(read(host_ / "copy" / "sub" / "b.txt"), "in-b");
  EXPECT_EQ(st->files, 2u);
  EXPECT_EQ(st->links, 1u);
  EXPECT_TRUE(fs::is_symlink(host_ / "copy" / "pw"));
  EXPECT_EQ(fs::read_symlink(host_ / "copy" / "pw"), "/etc/passwd");
  ASSERT_TRUE(copy_path(in("/data"), out(host_ / "copy")));
  EXPECT_EQ(read(host_ / "copy" / "data" / "a.txt"), "in-a");
  ASSERT_TRUE(sys::mkdir_all(host_ / "flat"));
  ASSERT_TRUE(copy_path(in("/data/."), out(host_ / "flat")));
  EXPECT_EQ(read(host_ / "flat" / "a.txt"), "in-a");
  EXPECT_FALSE(fs::exists(host_ / "flat" / "data"));
  // Into the container: a host file replaces one there.
  ASSERT_TRUE(sys::write_file_atomic(host_ / "a.txt", "from-host"));
  ASSERT_TRUE(copy_path(out(host_ / "a.txt"), in("/data/")));
  EXPECT_EQ(read(root_ / "data" / "a.txt"), "from-host");

  // Bad requests: one error each, nothing made.
  auto e = copy_path(in("/data/a.txt"), out(host_ / "nodir" / ""));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().to_string(), fmt::format("copy to `{}/nodir/`: no such directory", host_.native()));
  e = copy_path(in("/data"), out(host_ / "x.txt"));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().to_string(), fmt::format("copy to `{}/x.txt`: cannot copy a directory to a file", host_.native()));
  e = copy_path(in("/nosuch"), out(host_ / "y"));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().to_string(), "copy `/nosuch`: no such file or directory");
  e = copy_path(in("/data/a.txt"), out(host_ / "no" / "parent"));
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().to_string().find("does not exist"), std::string::npos) << e.error().to_string();
  EXPECT_FALSE(fs::exists(host_ / "y"));
  EXPECT_FALSE(fs::exists(host_ / "no"));
}

TEST_P(ContainerCopy, SymlinksInTheContainerNeverLeadOutOfItsRoot) {
  // /etc -> / : /etc/data/a.txt is the container's /data/a.txt.
  ASSERT_TRUE(copy_path(in("/etc/data/a.txt"), out(host_ / "via-etc")));
  EXPECT_EQ(read(host_ / "via-etc"), "in-a");
  // ../.. climbs no higher than the root: the host's secret beside the root is not found.
  auto e = copy_path(in("/up/secret"), out(host_ / "stolen"));
  EXPECT_FALSE(e);
  EXPECT_FALSE(fs::exists(host_ / "stolen"));
  e = copy_path(in("/out/"), out(host_ / "stolen"));  // the absolute link resolves in the root
  EXPECT_FALSE(e);
  EXPECT_FALSE(fs::exists(host_ / "stolen"));
  // Copying a link out copies the link, not the host file it names on the host.
  ASSERT_TRUE(copy_path(in("/victim"), out(host_ / "v")));
  EXPECT_TRUE(fs::is_symlink(host_ / "v"));

  // Writes: through /etc into the container's root, never the host's /etc.
  const std::string name = "kiste-cp-test-" + sys::random_hex(6);
  ASSERT_TRUE(sys::write_file_atomic(host_ / name, "planted"));
  ASSERT_TRUE(copy_path(out(host_ / name), in("/etc/")));
  EXPECT_EQ(read(root_ / name), "planted");
  EXPECT_FALSE(fs::exists(fs::path("/etc") / name));
  // Not through ../.. nor the absolute link to a host dir.
  ASSERT_TRUE(copy_path(out(host_ / name), in("/up/" + name + "-2")));  // ../.. is the root
  EXPECT_EQ(read(root_ / (name + "-2")), "planted");
  EXPECT_FALSE(fs::exists(tmp_->path() / (name + "-2")));
  EXPECT_FALSE(copy_path(out(host_ / name), in("/out/x")));
  EXPECT_TRUE(fs::is_empty(tmp_->path() / "outside"));
  // A link at the destination is replaced, not written through: the host file keeps its bytes.
  ASSERT_TRUE(copy_path(out(host_ / name), in("/victim")));
  EXPECT_FALSE(fs::is_symlink(root_ / "victim"));
  EXPECT_EQ(read(root_ / "victim"), "planted");
  EXPECT_EQ(read(tmp_->path() / "secret"), "host-secret");
  // A directory copied in whose target inside is a link to the host: refused, nothing written.
  ASSERT_TRUE(sys::mkdir_all(host_ / "tree" / "out"));
  ASSERT_TRUE(sys::write_file_atomic(host_ / "tree" / "out" / "f", "x"));
  EXPECT_FALSE(copy_path(out(host_ / "tree" / "."), in("/")));
  EXPECT_TRUE(fs::is_empty(tmp_->path() / "outside"));
}

INSTANTIATE_TEST_SUITE_P(Openat2AndFallback, ContainerCopy, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Fallback" : "Openat2"; });

}  // namespace
}  // namespace kiste::runtime
