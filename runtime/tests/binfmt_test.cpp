#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/binfmt.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::runtime {
namespace {

namespace fs = std::filesystem;

// Debian 12's qemu-user-static entry for aarch64, as /proc/sys/fs/binfmt_misc shows it.
constexpr std::string_view kDebianAarch64 =
    "enabled\n"
    "interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n"
    "flags: PF\n"
    "offset 0\n"
    "magic 7f454c460201010000000000000000000200b700\n"
    "mask ffffffffffffff00fffffffffffffffffeffffff\n";

image::Platform p(std::string_view s) { return image::Platform::parse(s).value(); }

// A binfmt_misc directory as the kernel shows it: register, status and one file per handler.
fs::path binfmt_dir(const testing::TempRoot& t, std::initializer_list<std::pair<std::string, std::string_view>> handlers) {
  fs::path d = t / "binfmt_misc";
  fs::create_directories(d);
  EXPECT_TRUE(sys::write_file_atomic(d / "register", ""));
  EXPECT_TRUE(sys::write_file_atomic(d / "status", "enabled\n"));
  for (const auto& [name, text] : handlers) EXPECT_TRUE(sys::write_file_atomic(d / name, text));
  return d;
}

TEST(Binfmt, ParsesDebiansQemuEntry) {
  auto h = parse_binfmt_handler("qemu-aarch64", kDebianAarch64);
  ASSERT_TRUE(h) << h.error().to_string();
  EXPECT_TRUE(h->enabled);
  EXPECT_TRUE(h->fix_binary());
  EXPECT_EQ(h->interpreter, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P");
  EXPECT_EQ(h->magic.size(), 20U);
  EXPECT_EQ(h->mask.size(), 20U);
  EXPECT_FALSE(parse_binfmt_handler("x", "magic 7f4\n"));
  EXPECT_FALSE(parse_binfmt_handler("x", "magic zz\n"));
}

TEST(Binfmt, NativeNeedsNoHandler) {
  testing::TempRoot t;
  fs::path none = t / "absent";  // not even mounted
  auto r = check_execution(p("linux/amd64"), p("linux/amd64"), none);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->how, Execution::Native);
  EXPECT_EQ(check_execution(p("linux/386"), p("linux/amd64"), none)->how, Execution::Native);
  EXPECT_EQ(check_execution(p("linux/arm64/v8"), p("linux/arm64"), none)->how, Execution::Native);
}

TEST(Binfmt, FindsTheFixBinaryHandlerByItsMagic) {
  testing::TempRoot t;
  // The name does not matter, the magic does: a handler named otherwise still runs aarch64.
  fs::path d = binfmt_dir(t, {{"my-arm", kDebianAarch64}});
  auto r = check_execution(p("linux/arm64"), p("linux/amd64"), d);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->how, Execution::Emulated);
  EXPECT_EQ(r->handler, "my-arm");
  // …but not s390x (another e_machine, big-endian) nor arm (32-bit).
  auto s = check_execution(p("linux/s390x"), p("linux/amd64"), d);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::Unsupported);
  EXPECT_EQ(s.error().to_string(),
            "image is linux/s390x, this host is linux/amd64: no binfmt_misc handler with the F "
            "(fix-binary) flag runs s390x programs; install Debian's qemu-user-static and "
            "binfmt-support, then register it with `update-binfmts --enable qemu-s390x`");
  EXPECT_FALSE(check_execution(p("linux/arm/v7"), p("linux/amd64"), d));
}

TEST(Binfmt, RefusesHandlersWithoutFixBinaryOrDisabled) {
  testing::TempRoot t;
  std::string no_f(kDebianAarch64);
  no_f.replace(no_f.find("flags: PF"), 9, "flags: P");
  fs::path d = binfmt_dir(t, {{"qemu-aarch64", no_f}});
  auto r = check_execution(p("linux/arm64"), p("linux/amd64"), d);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("`qemu-aarch64` runs aarch64 programs but has no F (fix-binary) flag"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("update-binfmts --enable qemu-aarch64"), std::string::npos);

  testing::TempRoot t2;
  std::string disabled(kDebianAarch64);
  disabled.replace(0, 7, "disabled");
  fs::path d2 = binfmt_dir(t2, {{"qemu-aarch64", disabled}});
  auto r2 = check_execution(p("linux/arm64"), p("linux/amd64"), d2);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("no binfmt_misc handler with the F"), std::string::npos);
}

TEST(Binfmt, SaysWhenBinfmtMiscIsNotMounted) {
  testing::TempRoot t;
  auto r = check_execution(p("linux/arm64"), p("linux/amd64"), t / "empty");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("binfmt_misc is not mounted"), std::string::npos);
  EXPECT_NE(r.error().message.find("qemu-user-static"), std::string::npos);
  auto u = check_execution(p("linux/sparc64"), p("linux/amd64"), t / "empty");
  ASSERT_FALSE(u);
  EXPECT_NE(u.error().message.find("no emulator for architecture `sparc64`"), std::string::npos);
}

TEST(Binfmt, QemuNames) {
  EXPECT_EQ(qemu_arch(p("linux/arm64")), "aarch64");
  EXPECT_EQ(qemu_arch(p("linux/amd64")), "x86_64");
  EXPECT_EQ(qemu_arch(p("linux/mips64le")), "mips64el");
  EXPECT_EQ(qemu_arch(p("linux/sparc64")), std::nullopt);
}

}  // namespace
}  // namespace kiste::runtime
