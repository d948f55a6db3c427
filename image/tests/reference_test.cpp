#include <kiste/image/reference.hpp>

#include <gtest/gtest.h>

namespace kiste::image {
namespace {

const std::string kD = "sha256:" + std::string(64, 'f');

struct Case {
  std::string in;
  std::string want;  // normalised str(), or "" when the reference must be rejected
};

// Cases after docker/distribution's reference tests, normalised the way docker does.
const Case kCases[] = {
    {"busybox", "docker.io/library/busybox:latest"},
    {"busybox:1.36", "docker.io/library/busybox:1.36"},
    {"library/busybox", "docker.io/library/busybox:latest"},
    {"docker.io/busybox", "docker.io/library/busybox:latest"},
    {"index.docker.io/busybox", "docker.io/library/busybox:latest"},
    {"registry-1.docker.io/library/busybox:x", "docker.io/library/busybox:x"},
    {"user/repo", "docker.io/user/repo:latest"},
    {"docker.io/user/repo:tag", "docker.io/user/repo:tag"},
    {"localhost/foo", "localhost/foo:latest"},
    {"localhost:5000/foo", "localhost:5000/foo:latest"},
    {"localhost:5000/foo/bar:1.0", "localhost:5000/foo/bar:1.0"},
    {"127.0.0.1:5000/a/b/c/d", "127.0.0.1:5000/a/b/c/d:latest"},
    {"ghcr.io/owner/image:v1.2.3", "ghcr.io/owner/image:v1.2.3"},
    {"quay.io/a-b/c_d:_tag", "quay.io/a-b/c_d:_tag"},
    {"example.com/a__b/c.d/e---f", "example.com/a__b/c.d/e---f:latest"},
    {"busybox@" + kD, "docker.io/library/busybox@" + kD},
    {"busybox:1@" + kD, "docker.io/library/busybox:1@" + kD},
    {"localhost:5000/x@" + kD, "localhost:5000/x@" + kD},
    {"Foo.com/bar", "Foo.com/bar:latest"},
    {"FOO/bar", "FOO/bar:latest"},  // uppercase first component is a registry host
    {"[::1]:5000/img", "[::1]:5000/img:latest"},
    {"a:" + std::string(128, 't'), "docker.io/library/a:" + std::string(128, 't')},
    {"sub.domain.example.com:443/org/team/app:2024.01.02-rc_1",
     "sub.domain.example.com:443/org/team/app:2024.01.02-rc_1"},
    {"xn--bcher-kva.example/x", "xn--bcher-kva.example/x:latest"},
    {"a/b/c/d/e/f", "docker.io/a/b/c/d/e/f:latest"},
    // rejected
    {"", ""},
    {"Busybox", ""},
    {"user/Repo", ""},
    {"busybox:", ""},
    {"busybox:-tag", ""},
    {"busybox:.tag", ""},
    {"busybox:" + std::string(129, 't'), ""},
    {"busybox@sha256:../../x", ""},
    {"busybox@sha256:abc", ""},
    {"busybox@" + std::string("sha256:") + std::string(64, 'F'), ""},
    {"a//b", ""},
    {"/a", ""},
    {"a/", ""},
    {"-a", ""},
    {"a-", ""},
    {"a..b", ""},
    {"a.-b", ""},
    {"a___b", ""},
    {"localhost:port/x", ""},
    {"localhost:123456/x", ""},
    {"-host.com/x", ""},
    {"host.com:5000/", ""},
    {"a:b:c", ""},
    {"has space", ""},
    {"emoji/\xf0\x9f\x90\xb3", ""},
    {"example.com/" + std::string(250, 'a'), ""},
};

TEST(Reference, TableOfDockerCases) {
  for (const auto& c : kCases) {
    auto r = Reference::parse(c.in);
    if (c.want.empty()) {
      EXPECT_FALSE(r) << "accepted: " << c.in << " -> " << (r ? r->str() : "");
      if (!r) {
        EXPECT_EQ(r.error().code, Errc::InvalidArgument);
        EXPECT_EQ(r.error().to_string().find('\n'), std::string::npos);
      }
    } else {
      ASSERT_TRUE(r) << c.in << ": " << r.error().to_string();
      EXPECT_EQ(r->str(), c.want) << c.in;
    }
  }
  EXPECT_GE(std::size(kCases), 40u);
}

TEST(Reference, Parts) {
  auto r = Reference::parse("localhost:5000/team/app:1.0").value();
  EXPECT_EQ(r.registry(), "localhost:5000");
  EXPECT_EQ(r.repository(), "team/app");
  EXPECT_EQ(r.tag().value(), "1.0");
  EXPECT_FALSE(r.digest());
  EXPECT_EQ(r.identifier(), "1.0");
  EXPECT_EQ(r.familiar(), "localhost:5000/team/app:1.0");
  EXPECT_EQ(Reference::parse("busybox").value().familiar(), "busybox:latest");
  auto d = Reference::parse("busybox@" + kD).value();
  EXPECT_EQ(d.identifier(), kD);
  EXPECT_FALSE(d.tag());
  auto no_default = Reference::parse("busybox", {.default_tag = false}).value();
  EXPECT_FALSE(no_default.tag());
  EXPECT_EQ(Reference::parse("x", {.default_registry = "localhost:5000"})->str(),
            "localhost:5000/x:latest");
}

TEST(Reference, Validators) {
  EXPECT_TRUE(is_valid_tag("latest"));
  EXPECT_TRUE(is_valid_tag("sha256-" + std::string(64, 'a') + ".sig"));
  EXPECT_FALSE(is_valid_tag("../x"));
  EXPECT_TRUE(is_valid_repository("a/b-c/d.e"));
  EXPECT_FALSE(is_valid_repository("a/../b"));
}

}  // namespace
}  // namespace kiste::image
