// The package databases an SBOM reads from images (hostile input) and the provenance round trip.
#include <kiste/builder/package_db.hpp>

#include <gtest/gtest.h>

#include <kiste/builder/attestation.hpp>

namespace kiste::builder {
namespace {

constexpr std::string_view kStatus =
    "Package: libc6\n"
    "Status: install ok installed\n"
    "Priority: optional\n"
    "Architecture: amd64\n"
    "Source: glibc (2.36-9)\n"
    "Version: 2.36-9+deb12u4\n"
    "Description: GNU C Library: Shared libraries\n"
    " Contains the standard libraries that are used by nearly all programs on\n"
    " the system.\n"
    "\n"
    "Package: oldpkg\n"
    "Status: deinstall ok config-files\n"
    "Version: 1.0\n"
    "\n"
    "Package: busybox\n"
    "Status: install ok installed\n"
    "Architecture: amd64\n"
    "Version: 1:1.35.0-4+b3\n";

TEST(PackageDb, DpkgStatusListsInstalledPackages) {
  auto l = parse_dpkg_status(kStatus);
  ASSERT_TRUE(l) << l.error().to_string();
  ASSERT_EQ(l->packages.size(), 2u);
  EXPECT_EQ(l->packages[0].name, "libc6");
  EXPECT_EQ(l->packages[0].version, "2.36-9+deb12u4");
  EXPECT_EQ(l->packages[0].architecture, "amd64");
  EXPECT_EQ(l->packages[0].source, "glibc");
  EXPECT_EQ(l->packages[1].name, "busybox");
  EXPECT_EQ(l->packages[1].version, "1:1.35.0-4+b3");
  EXPECT_EQ(l->skipped, 0);
}

TEST(PackageDb, ApkInstalledListsPackages) {
  auto l = parse_apk_installed(
      "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nL:MIT\no:musl\nF:lib\nR:libc.musl-x86_64.so.1\n\n"
      "P:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\no:busybox\n");
  ASSERT_TRUE(l) << l.error().to_string();
  ASSERT_EQ(l->packages.size(), 2u);
  EXPECT_EQ(l->packages[0].kind, Package::Kind::Apk);
  EXPECT_EQ(l->packages[0].name, "musl");
  EXPECT_EQ(l->packages[0].version, "1.2.4-r2");
  EXPECT_EQ(l->packages[0].license, "MIT");
  EXPECT_EQ(l->packages[1].name, "busybox");
}

TEST(PackageDb, HostileInputIsSkippedOrRefusedNeverTrusted) {
  // No name, a control character, an over-long version, a repeated field: all skipped.
  std::string text =
      "Status: install ok installed\nVersion: 1\n\n"
      "Package: a\x01" "b\nStatus: install ok installed\nVersion: 1\n\n"
      "Package: long\nStatus: install ok installed\nVersion: " + std::string(10000, '9') + "\n\n"
      "Package: twice\nPackage: again\nStatus: install ok installed\nVersion: 1\n\n"
      "Package: good\nStatus: install ok installed\nVersion: 2\n";
  auto l = parse_dpkg_status(text);
  ASSERT_TRUE(l) << l.error().to_string();
  ASSERT_EQ(l->packages.size(), 1u);
  EXPECT_EQ(l->packages[0].name, "good");
  EXPECT_EQ(l->skipped, 4);
  // Binary garbage, CRLF, no trailing newline, lone colons: no crash, nothing listed.
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 7919) % 256);
  for (auto parse : {&parse_dpkg_status, &parse_apk_installed}) {
    auto g = parse(junk);
    ASSERT_TRUE(g);
    EXPECT_TRUE(g->packages.empty());
    EXPECT_TRUE(parse(":\n:\r\n\n\n:").has_value());
    EXPECT_TRUE(parse("").value().packages.empty());
  }
  // Over the limits: an error naming the limit.
  std::string many;
  for (size_t i = 0; i <= kMaxPackages; ++i) many += "P:p\nV:1\n\n";
  auto over = parse_apk_installed(many);
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().to_string().find("more than 100000 packages"), std::string::npos);
  auto big = parse_dpkg_status(std::string(kMaxPackageDbBytes + 1, '\n'));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Errc::Corrupt);
}

TEST(Provenance, RoundTripsAndIsDeterministic) {
  ProvenanceInputs in{.containerfile = "Containerfile",
                      .containerfile_digest = image::Digest::of("FROM scratch\n"),
                      .build_args = {{"V", "1"}, {"A", "x y"}},
                      .target = "final",
                      .platform = "linux/amd64",
                      .base_images = {{"busybox:latest", image::Digest::of("b")}},
                      .source_date_epoch = 1700000000,
                      .builder_id = "https://kiste.dev/kiste@0.1.0"};
  auto img = image::Digest::of("image");
  std::string doc = provenance_json("localhost/app:1", img, in);
  EXPECT_EQ(doc, provenance_json("localhost/app:1", img, in));
  EXPECT_NE(doc.find(R"("predicateType":"https://slsa.dev/provenance/v1")"), std::string::npos);
  EXPECT_NE(doc.find(R"("_type":"https://in-toto.io/Statement/v1")"), std::string::npos);
  auto back = parse_provenance(doc);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->containerfile, in.containerfile);
  EXPECT_EQ(back->containerfile_digest, in.containerfile_digest);
  EXPECT_EQ(back->build_args, in.build_args);
  EXPECT_EQ(back->target, in.target);
  EXPECT_EQ(back->platform, in.platform);
  EXPECT_EQ(back->base_images, in.base_images);
  EXPECT_EQ(back->source_date_epoch, in.source_date_epoch);
}

TEST(Provenance, ForeignOrBrokenStatementsAreRefused) {
  for (std::string_view bad :
       {"", "[]", "{}", R"({"predicateType":"https://slsa.dev/provenance/v0.2"})",
        R"({"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"other"}}})",
        // Wrong types where strings belong (found by the package_db fuzzer: it used to throw).
        R"({"predicateType":{"a":1}})",
        R"({"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":{"SOURCE_DATE_EPOCH":0}}}})",
        R"({"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://kiste.dev/build/v1","externalParameters":{"containerfile":{"path":"C","digest":{"sha256":"zz"}}}}}})",
        R"({"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://kiste.dev/build/v1","externalParameters":{"containerfile":{"path":1}}}}})",
        R"({"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://kiste.dev/build/v1","externalParameters":{"containerfile":{"path":"../../etc/shadow","digest":{"sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}}}}}})"}) {
    auto r = parse_provenance(bad);
    EXPECT_FALSE(r) << bad;
  }
}

}  // namespace
}  // namespace kiste::builder
