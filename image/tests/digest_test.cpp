#include <kiste/image/digest.hpp>

#include <gtest/gtest.h>

namespace kiste::image {
namespace {

TEST(Digest, KnownVectors) {
  EXPECT_EQ(Digest::of("").str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Digest::of("abc", DigestAlgorithm::Sha512).hex().substr(0, 16), "ddaf35a193617aba");
  Hasher h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.bytes(), 3u);
  EXPECT_EQ(h.finish(), Digest::of("abc"));
}

TEST(Digest, StrictParse) {
  std::string good = "sha256:" + std::string(64, 'a');
  ASSERT_TRUE(Digest::parse(good));
  EXPECT_EQ(Digest::parse(good)->short_hex(), "aaaaaaaaaaaa");
  for (std::string bad : {std::string("sha256:../../x"), "sha256:" + std::string(64, 'A'),
                          "sha256:" + std::string(63, 'a'), "sha256:" + std::string(65, 'a'),
                          "md5:" + std::string(32, 'a'), std::string(64, 'a'), std::string(""),
                          "sha256:" + std::string(62, 'a') + "/a", "sha512:" + std::string(64, 'a'),
                          "sha256:" + std::string(63, 'a') + "g"}) {
    auto d = Digest::parse(bad);
    EXPECT_FALSE(d) << bad;
    if (!d) {
      EXPECT_EQ(d.error().code, Errc::InvalidArgument);
    }
  }
  EXPECT_TRUE(Digest::parse("sha512:" + std::string(128, '0')));
}

}  // namespace
}  // namespace kiste::image
