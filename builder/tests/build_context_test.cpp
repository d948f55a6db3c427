#include <kiste/builder/build_context.hpp>

#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include <unistd.h>

#include <ctime>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/builder/context_hash_cache.hpp>

namespace kiste::builder {
namespace {

bool m(std::string_view p, std::string_view s) {
  auto r = glob_match(p, s);
  EXPECT_TRUE(r) << p;
  return r && *r;
}

TEST(Glob, Basics) {
  EXPECT_TRUE(m("a", "a"));
  EXPECT_FALSE(m("a", "ab"));
  EXPECT_TRUE(m("*.go", "x.go"));
  EXPECT_FALSE(m("*.go", "d/x.go"));
  EXPECT_TRUE(m("*/*.go", "d/x.go"));
  EXPECT_TRUE(m("**/*.go", "x.go"));
  EXPECT_TRUE(m("**/*.go", "a/b/c/x.go"));
  EXPECT_TRUE(m("a/**", "a/b/c"));
  EXPECT_TRUE(m("a/**/z", "a/z"));
  EXPECT_TRUE(m("a/**/z", "a/b/c/z"));
  EXPECT_FALSE(m("a/**/z", "b/z"));
  EXPECT_TRUE(m("?.txt", "a.txt"));
  EXPECT_FALSE(m("?.txt", "/.txt"));
  EXPECT_TRUE(m("[a-c]x", "bx"));
  EXPECT_FALSE(m("[^a-c]x", "bx"));
  EXPECT_TRUE(m("[!a-c]x", "dx"));
  EXPECT_TRUE(m("\\*", "*"));
  EXPECT_FALSE(m("\\*", "a"));
  EXPECT_FALSE(glob_match("[abc", "a"));
  EXPECT_FALSE(glob_match("abc\\", "abc"));
}

TEST(CleanRel, Normalises) {
  EXPECT_EQ(clean_rel("./a//b/../c/"), "a/c");
  EXPECT_EQ(clean_rel("/x"), "x");
  EXPECT_EQ(clean_rel("."), "");
  EXPECT_EQ(clean_rel("../../etc"), "etc");
}

TEST(Ignore, DockerSemantics) {
  auto ig = IgnoreMatcher::parse("# comment\n\n*.md\n!README.md\nbuild\n**/*.tmp\n/secret\n  spaced  \n");
  ASSERT_TRUE(ig) << ig.error().to_string();
  EXPECT_TRUE(ig->ignored("x.md"));
  EXPECT_FALSE(ig->ignored("README.md"));
  EXPECT_FALSE(ig->ignored("docs/x.md"));  // *.md is anchored at the root
  EXPECT_TRUE(ig->ignored("build"));
  EXPECT_TRUE(ig->ignored("build/out/a.o"));  // parent match excludes children
  EXPECT_TRUE(ig->ignored("a.tmp"));
  EXPECT_TRUE(ig->ignored("deep/er/a.tmp"));
  EXPECT_TRUE(ig->ignored("secret"));
  EXPECT_TRUE(ig->ignored("spaced"));
  EXPECT_FALSE(ig->ignored("src/main.c"));
  EXPECT_TRUE(ig->has_exclusions());
}

TEST(Ignore, LastMatchWins) {
  auto ig = IgnoreMatcher::parse("!keep\n*\n");
  ASSERT_TRUE(ig);
  EXPECT_TRUE(ig->ignored("keep"));
  auto ig2 = IgnoreMatcher::parse("*\n!keep\n");
  ASSERT_TRUE(ig2);
  EXPECT_FALSE(ig2->ignored("keep"));
  EXPECT_TRUE(ig2->ignored("other"));
}

TEST(Ignore, Malformed) {
  EXPECT_FALSE(IgnoreMatcher::parse("!\n"));
  auto bad = IgnoreMatcher::parse("ok\n[abc\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("line 2"), std::string::npos);
}

void write(const std::filesystem::path& p, std::string_view s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

TEST(Context, WalkAndHash) {
  auto td = TempDir::create(std::filesystem::temp_directory_path(), "kiste-ctx-");
  ASSERT_TRUE(td);
  auto root = td->path();
  write(root / "a.txt", "a");
  write(root / "src/main.c", "int main;");
  write(root / "src/gen/x.o", "obj");
  write(root / "notes.md", "n");
  std::filesystem::create_symlink("a.txt", root / "link");
  write(root / ".containerignore", "**/*.o\nnotes.md\n");
  auto ig = IgnoreMatcher::load(root);
  ASSERT_TRUE(ig);
  auto all = walk_context(root, "", *ig);
  ASSERT_TRUE(all) << all.error().to_string();
  std::vector<std::string> paths;
  for (const auto& e : *all) paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{".containerignore", "a.txt", "link", "src", "src/gen",
                                             "src/main.c"}));
  auto src = walk_context(root, "src", *ig);
  ASSERT_TRUE(src);
  auto h1 = hash_entries(root, "src", *src);
  ASSERT_TRUE(h1);
  // Changing an ignored file or an mtime does not change the hash.
  write(root / "src/gen/x.o", "changed");
  std::filesystem::last_write_time(root / "src/main.c", std::filesystem::file_time_type::clock::now() - std::chrono::hours(5));
  auto h2 = hash_entries(root, "src", *walk_context(root, "src", *ig));
  ASSERT_TRUE(h2);
  EXPECT_EQ(*h1, *h2);
  // Changing content does.
  write(root / "src/main.c", "int main2;");
  auto h3 = hash_entries(root, "src", *walk_context(root, "src", *ig));
  ASSERT_TRUE(h3);
  EXPECT_NE(*h1, *h3);
  // Changing a mode does.
  std::filesystem::permissions(root / "src/main.c", std::filesystem::perms::owner_exec, std::filesystem::perm_options::add);
  auto h4 = hash_entries(root, "src", *walk_context(root, "src", *ig));
  EXPECT_NE(*h3, *h4);
  // Missing sources and escapes are errors.
  EXPECT_FALSE(walk_context(root, "nope", *ig));
  EXPECT_FALSE(walk_context(root, "notes.md", *ig));
  // `..` cannot leave the context.
  auto esc = walk_context(root, "../../../etc/passwd", *ig);
  EXPECT_FALSE(esc);
}

TEST(ContextHashCache, FindsOnlyAnUnchangedStampAndSurvivesASaveAndLoad) {
  auto td = TempDir::create(std::filesystem::temp_directory_path(), "kiste-hc-");
  ASSERT_TRUE(td);
  auto file = ContextHashCache::file_for(td->path() / "cache", "/some/context");
  EXPECT_EQ(file.parent_path(), td->path() / "cache");
  EXPECT_NE(file, ContextHashCache::file_for(td->path() / "cache", "/other/context"));
  auto c = ContextHashCache::load(file);  // missing: empty
  EXPECT_EQ(c.size(), 0u);
  const FileStamp old{.size = 3, .mtime_ns = 1'000'000'000, .ctime_ns = 1'000'000'000, .ino = 7, .dev = 1};
  const auto d = image::Digest::of("abc");
  c.put("dir/a b.txt", old, d);
  EXPECT_EQ(c.find("dir/a b.txt", old), d);
  std::vector<FileStamp> changed(5, old);
  changed[0].size = 4;
  changed[1].mtime_ns += 1;
  changed[2].ctime_ns += 1;
  changed[3].ino = 8;
  changed[4].dev = 2;
  for (size_t i = 0; i < changed.size(); ++i) EXPECT_FALSE(c.find("dir/a b.txt", changed[i])) << i;
  // Racily clean: a stamp from just now is not remembered.
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const FileStamp fresh{.size = 1, .mtime_ns = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec,
                        .ctime_ns = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec};
  c.put("fresh", fresh, d);
  EXPECT_FALSE(c.find("fresh", fresh));
  c.put("line\nbreak", old, d);  // not representable in the file: not cached
  EXPECT_FALSE(c.find("line\nbreak", old));
  ASSERT_TRUE(c.save());
  auto back = ContextHashCache::load(file);
  EXPECT_EQ(back.size(), 1u);
  EXPECT_EQ(back.find("dir/a b.txt", old), d);
  // A corrupt or foreign file is an empty cache; a corrupt line is skipped.
  auto text = *sys::read_file(file, 1 << 20);
  ASSERT_TRUE(sys::write_file_atomic(file, text + "sha256:zz 1 2 3 4 5 bad\n" + "garbage\n" +
                                               image::Digest::of("x").str() + " 1 2 3 4 5 ok\n"));
  auto partly = ContextHashCache::load(file);
  EXPECT_EQ(partly.size(), 2u);
  EXPECT_TRUE(partly.find("ok", FileStamp{.size = 1, .mtime_ns = 2, .ctime_ns = 3, .ino = 4, .dev = 5}));
  ASSERT_TRUE(sys::write_file_atomic(file, "not a cache\n"));
  EXPECT_EQ(ContextHashCache::load(file).size(), 0u);
}

TEST(ContextHashCache, HashEntriesReusesDigestsUntilAFileChanges) {
  auto td = TempDir::create(std::filesystem::temp_directory_path(), "kiste-hc-");
  ASSERT_TRUE(td);
  auto root = td->path() / "ctx";
  write(root / "a.txt", "a");
  write(root / "d/b.txt", "b");
  // Age the files past the racily-clean window (ctime cannot be set back).
  ::usleep(200'000);
  IgnoreMatcher none;
  auto file = ContextHashCache::file_for(td->path() / "cache", root);
  auto plain = hash_entries(root, "", *walk_context(root, "", none));
  ASSERT_TRUE(plain);
  {
    auto c = ContextHashCache::load(file);
    auto h = hash_entries(root, "", *walk_context(root, "", none), &c);
    ASSERT_TRUE(h);
    EXPECT_EQ(*h, *plain);  // the cache never changes the result
    EXPECT_EQ(c.hits(), 0u);
    ASSERT_TRUE(c.save());
  }
  auto c = ContextHashCache::load(file);
  auto again = hash_entries(root, "", *walk_context(root, "", none), &c);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *plain);
  EXPECT_EQ(c.hits(), 2u);  // neither file was read
  // Same size, new content: the stamp changed, so it is hashed again.
  write(root / "a.txt", "z");
  auto changed = hash_entries(root, "", *walk_context(root, "", none), &c);
  ASSERT_TRUE(changed);
  EXPECT_NE(*changed, *plain);
  EXPECT_EQ(c.hits(), 3u);  // only d/b.txt came from the cache
  EXPECT_EQ(*changed, *hash_entries(root, "", *walk_context(root, "", none)));
}

}  // namespace
}  // namespace kiste::builder
