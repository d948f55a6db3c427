// Deterministic packing: round trips through extract_layer, identical digests from different
// trees/mtimes/owners/creation orders, normalised headers, fixed gzip header.

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/layer_extract.hpp>
#include <kiste/image/layer_writer.hpp>
#include "temp_tree.hpp"

#include "tar_builder.hpp"
#include "tree_listing.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;
using testing::list_tree;
using testing::StringSink;

void write(const fs::path& p, std::string_view s) { std::ofstream(p) << s; }

void set_mtime(const fs::path& p, int64_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << p;
}

// Builds the same logical tree; `reverse` creates entries in another order, `t` sets mtimes.
void make_tree(const fs::path& d, bool reverse, int64_t t, uid_t owner) {
  std::vector<std::function<void()>> steps = {
      [&] { fs::create_directories(d / "etc/conf.d"); },
      [&] { fs::create_directories(d / "usr/bin"); },
      [&] { fs::create_directories(d / "a-b"); },
  };
  for (auto& s : steps) s();
  std::vector<std::pair<std::string, std::string>> files = {
      {"etc/hosts", "127.0.0.1 localhost\n"}, {"etc/conf.d/x", std::string(300000, 'x')},
      {"usr/bin/tool", "#!/bin/sh\necho hi\n"}, {"a-b/z", "z"}, {"a.txt", "a"}, {"empty", ""}};
  if (reverse) std::reverse(files.begin(), files.end());
  for (auto& [p, c] : files) write(d / p, c);
  ::chmod((d / "usr/bin/tool").c_str(), 0755);
  ::chmod((d / "etc/hosts").c_str(), 0644);
  ::chmod((d / "etc/conf.d/x").c_str(), 0600);
  ::chmod((d / "a.txt").c_str(), 0644);
  ::chmod((d / "a-b/z").c_str(), 0644);
  ::chmod((d / "empty").c_str(), 0644);
  for (const char* dir : {"etc", "etc/conf.d", "usr", "usr/bin", "a-b"}) ::chmod((d / dir).c_str(), 0755);
  fs::create_symlink("../etc/hosts", d / "usr/hosts-link");
  fs::create_hard_link(d / "usr/bin/tool", d / "usr/bin/tool2");
  ::setxattr((d / "a.txt").c_str(), "user.kiste", "v", 1, 0);
  for (auto it = fs::recursive_directory_iterator(d); it != fs::recursive_directory_iterator(); ++it) {
    if (::geteuid() == 0) ::lchown(it->path().c_str(), owner, owner);
    set_mtime(it->path(), t);
  }
}

Result<LayerResult> pack(const fs::path& d, PackOptions o, std::string* bytes = nullptr) {
  StringSink out;
  auto r = write_layer(d, out, o);
  if (bytes) *bytes = out.data;
  return r;
}

TEST(LayerWriter, SameTreeSameDigestAcrossPathsMtimesOwnersAndOrder) {
  testing::TempTree t1, t2;
  make_tree(t1.path(), false, 1'700'000'000, 1000);
  make_tree(t2.path(), true, 1'800'000'000, 2000);
  for (auto c : {media_type::Compression::Gzip, media_type::Compression::Zstd,
                 media_type::Compression::None}) {
    PackOptions o{.compress = {.compression = c}, .source_date_epoch = 1'600'000'000};
    auto a = pack(t1.path(), o);
    PackOptions o2 = o;
    o2.compress.threads = 1;  // zstd output must not depend on the worker count
    auto b = pack(t2.path(), o2);
    ASSERT_TRUE(a) << a.error().to_string();
    ASSERT_TRUE(b) << b.error().to_string();
    EXPECT_EQ(a->digest, b->digest);
    EXPECT_EQ(a->diff_id, b->diff_id);
    EXPECT_EQ(a->size, b->size);
  }
  // Without the clamp, different mtimes give different layers.
  auto a = pack(t1.path(), {});
  auto b = pack(t2.path(), {});
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->diff_id, b->diff_id);
}

TEST(LayerWriter, HeadersAreNormalisedAndSorted) {
  testing::TempTree t;
  make_tree(t.path(), false, 1'900'000'000, 1234);
  std::string bytes;
  auto r = pack(t.path(), {.compress = {.compression = media_type::Compression::None},
                           .source_date_epoch = 1'600'000'000},
                &bytes);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->media_type, media_type::kOciLayerTar);
  EXPECT_EQ(r->diff_id, r->digest);
  EXPECT_EQ(r->diff_id, Digest::of(bytes));
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK);
  archive_entry* e;
  std::vector<std::string> names;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    names.push_back(archive_entry_pathname(e));
    EXPECT_EQ(archive_entry_uid(e), 0);
    EXPECT_EQ(archive_entry_gid(e), 0);
    const char* uname = archive_entry_uname(e);
    EXPECT_TRUE(uname == nullptr || *uname == '\0') << uname;
    EXPECT_EQ(archive_entry_mtime(e), 1'600'000'000);
    EXPECT_FALSE(archive_entry_atime_is_set(e));
    EXPECT_FALSE(archive_entry_ctime_is_set(e));
    if (names.back() == "usr/bin/tool2") {
      ASSERT_NE(archive_entry_hardlink(e), nullptr);
      EXPECT_STREQ(archive_entry_hardlink(e), "usr/bin/tool");
    }
    if (names.back() == "a.txt") {
      archive_entry_xattr_reset(e);
      const char* k;
      const void* v;
      size_t n;
      std::set<std::string> keys;
      while (archive_entry_xattr_next(e, &k, &v, &n) == ARCHIVE_OK) keys.insert(k);
      EXPECT_EQ(keys, std::set<std::string>{"user.kiste"});
    }
  }
  archive_read_free(a);
  std::vector<std::string> expected = {"a-b/", "a-b/z", "a.txt", "empty", "etc/", "etc/conf.d/",
                                       "etc/conf.d/x", "etc/hosts", "usr/", "usr/bin/",
                                       "usr/bin/tool", "usr/bin/tool2", "usr/hosts-link"};
  EXPECT_EQ(names, expected);
}

TEST(LayerWriter, GzipHeaderIsFixed) {
  testing::TempTree t;
  write(t / "f", "x");
  std::string bytes;
  ASSERT_TRUE(pack(t.path(), {}, &bytes));
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x8b);
  EXPECT_EQ(bytes[3], 0) << "no FNAME/FEXTRA/FCOMMENT";
  EXPECT_EQ(bytes.substr(4, 4), std::string(4, '\0')) << "mtime 0";
  EXPECT_EQ(bytes[9], 3) << "OS = Unix";
}

TEST(LayerWriter, RoundTripThroughExtract) {
  testing::TempTree src, dst;
  make_tree(src.path(), false, 1'700'000'000, 0);
  for (auto c : {media_type::Compression::Gzip, media_type::Compression::Zstd}) {
    testing::TempTree out;
    std::string bytes;
    auto r = pack(src.path(), {.compress = {.compression = c}, .keep_owners = true}, &bytes);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->digest, Digest::of(bytes));
    EXPECT_EQ(r->size, bytes.size());
    UniqueFd fd = std::move(*sys::open(out.path(), O_RDONLY | O_DIRECTORY));
    StringReader reader(bytes);
    auto x = extract_layer(reader, c, fd.get(), {.expected_diff_id = r->diff_id});
    ASSERT_TRUE(x) << x.error().to_string();
    EXPECT_EQ(list_tree(out.path(), {.mtimes = true}), list_tree(src.path(), {.mtimes = true}));
    char v[4];
    EXPECT_EQ(::getxattr((out / "a.txt").c_str(), "user.kiste", v, sizeof v), 1);
  }
}

TEST(LayerWriter, SourceDateEpochFromEnv) {
  ::setenv("SOURCE_DATE_EPOCH", "123", 1);
  auto r = source_date_epoch_from_env();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 123);
  ::setenv("SOURCE_DATE_EPOCH", "12x", 1);
  EXPECT_FALSE(source_date_epoch_from_env());
  ::unsetenv("SOURCE_DATE_EPOCH");
  auto none = source_date_epoch_from_env();
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST(LayerWriter, MissingDirectoryIsAClearError) {
  StringSink out;
  auto r = write_layer("/nonexistent/kiste-dir", out, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("/nonexistent/kiste-dir"), std::string::npos);
}

TEST(LayerWriter, InvalidLevelIsRefused) {
  testing::TempTree t;
  EXPECT_FALSE(pack(t.path(), {.compress = {.level = 12}}));
  EXPECT_FALSE(pack(t.path(), {.compress = {.compression = media_type::Compression::Zstd, .level = 30}}));
}

}  // namespace
}  // namespace kiste::image

namespace kiste::image {
namespace {

TEST(Compression, ParallelGzipIsDeterministicAndValidAcrossBatches) {
  // Several batches of 128 KiB blocks, compressible and incompressible parts.
  std::string data;
  for (int i = 0; i < 40000; ++i) data += fmt::format("line {} of the kiste layer test\n", i % 977);
  std::string noise = sys::random_hex(600000);
  data += noise;
  std::string first;
  for (int threads : {1, 2, 3}) {
    StringSink out;
    auto sink = CompressingSink::create(out, {.compression = media_type::Compression::Gzip,
                                              .threads = threads});
    ASSERT_TRUE(sink);
    // Odd write sizes so block boundaries never align with writes.
    for (size_t pos = 0; pos < data.size(); pos += 77777) {
      ASSERT_TRUE((*sink)->write(std::string_view(data).substr(pos, 77777)));
    }
    ASSERT_TRUE((*sink)->finish());
    if (first.empty()) first = out.data;
    EXPECT_EQ(out.data, first) << "threads=" << threads;
    EXPECT_LT(out.data.size(), data.size());
    StringReader in(out.data);
    auto plain = make_decompressor(in, media_type::Compression::Gzip);
    auto back = read_bounded(*plain, data.size() + 1, "gzip");
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(*back == data, true);
  }
  // Empty input is a valid (empty) gzip stream.
  StringSink empty;
  auto sink = CompressingSink::create(empty, {.compression = media_type::Compression::Gzip});
  ASSERT_TRUE(sink);
  ASSERT_TRUE((*sink)->finish());
  StringReader in(empty.data);
  auto plain = make_decompressor(in, media_type::Compression::Gzip);
  auto back = read_bounded(*plain, 10, "gzip");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(back->empty());
}

TEST(Compression, ConcatenatedGzipMembersAndTrailingGarbage) {
  auto gz = [](std::string_view s) {
    StringSink out;
    auto sink = CompressingSink::create(out, {});
    EXPECT_TRUE((*sink)->write(s));
    EXPECT_TRUE((*sink)->finish());
    return out.data;
  };
  StringReader two(gz("hello ") + gz("world"));
  auto plain = make_decompressor(two, media_type::Compression::Gzip);
  auto back = read_bounded(*plain, 100, "gzip");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, "hello world");
  StringReader junk(gz("x") + "garbage!");
  auto p2 = make_decompressor(junk, media_type::Compression::Gzip);
  auto bad = read_bounded(*p2, 100, "gzip");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::Corrupt);
}

}  // namespace
}  // namespace kiste::image
