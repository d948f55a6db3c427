// Builder features through the library API, as root: ADD URL (through the registry client's real
// HTTP stack against a small loopback server), COPY --parents, COPY into an existing directory,
// RUN --mount=type=tmpfs and type=ssh, and a --cache-from import whose layer lies about its
// diff_id.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <kiste/base/unique_fd.hpp>
#include <kiste/registry/fetch_url.hpp>

#include "builder_fixture.hpp"

namespace kiste::builder {
namespace {

using namespace test;  // NOLINT: the fixture

// Serves fixed bodies on 127.0.0.1 (HTTP/1.0, one request per connection) with a Last-Modified
// header; anything else is a 404. Counts requests per path.
class FileServer {
 public:
  explicit FileServer(std::map<std::string, std::string> files) : files_(std::move(files)) {
    fd_ = UniqueFd(kiste::testing::listen_on_loopback(&port_));
    thread_ = std::thread([this] { serve(); });
  }
  ~FileServer() {
    stop_ = true;
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::string url(const std::string& path) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  int requests(const std::string& path) {
    std::lock_guard l(mu_);
    return hits_[path];
  }
  static constexpr const char* kLastModified = "Sun, 09 Sep 2001 01:46:40 GMT";  // 1000000000

 private:
  void serve() {
    while (!stop_) {
      int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      UniqueFd conn(c);
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(conn.get(), buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      size_t sp = req.find(' '), sp2 = req.find(' ', sp + 1);
      std::string path = sp == std::string::npos ? "" : req.substr(sp + 1, sp2 - sp - 1);
      std::string resp;
      {
        std::lock_guard l(mu_);
        ++hits_[path];
      }
      if (auto it = files_.find(path); it != files_.end()) {
        resp = fmt::format("HTTP/1.0 200 OK\r\nContent-Length: {}\r\nLast-Modified: {}\r\n"
                           "Connection: close\r\n\r\n{}", it->second.size(), kLastModified, it->second);
      } else {
        resp = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      }
      (void)sys::write_all(conn.get(), resp, "response");
    }
  }
  std::map<std::string, std::string> files_;
  UniqueFd fd_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, int> hits_;
};

class RegistryHttpFetcher final : public UrlFetcher {
 public:
  Result<UrlFetch> fetch(std::string_view url, image::ByteSink& out) override {
    KISTE_ASSIGN_OR_RETURN(auto r, registry::fetch_url(url, out));
    return UrlFetch{.last_modified = r.last_modified, .size = r.size};
  }
};

size_t blob_count(const image::Store& s) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator(s.root() / "blobs/sha256", ec); it != fs::directory_iterator(); ++it) ++n;
  return n;
}

TEST_F(BuilderTest, AddUrlVerifiesChecksumKeepsMode0600AndLastModified) {
  const std::string body = "downloaded " + sys::random_hex(4) + "\n";
  std::string tar_body;
  ASSERT_EQ(testing::run_shell(fmt::format("cd {} && echo x > inner && tar cf t.tar inner", tmp_.path().string())), 0);
  tar_body = *sys::read_file(tmp_ / "t.tar", 1 << 20);
  FileServer server({{"/dl/tool.txt", body}, {"/dl/a.tar", tar_body}});
  RegistryHttpFetcher fetcher;
  const std::string sum = image::Digest::of(body).str();
  write(tmp_ / "ctx/Containerfile",
        fmt::format("FROM busybox\n"
                    "ADD --checksum={} {} /opt/\n"
                    "ADD {} /named.txt\n"
                    "ADD {} /tars/\n",
                    sum, server.url("/dl/tool.txt"), server.url("/dl/tool.txt"), server.url("/dl/a.tar")));
  BuildOptions o{.timestamp = 2000000000, .url_fetcher = &fetcher};
  auto r = build(tmp_ / "ctx", o);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "opt/tool.txt"), body);
  EXPECT_EQ(read_in_image(r->manifest, "named.txt"), body);
  EXPECT_EQ(read_in_image(r->manifest, "tars/a.tar"), tar_body);  // a URL is never extracted
  EXPECT_EQ(read_in_image(r->manifest, "tars/inner"), "");
  fs::path flat = tmp_ / ("flat-" + std::string(r->manifest.digest.hex().substr(0, 8)));
  struct stat st {};
  ASSERT_EQ(::stat((flat / "opt/tool.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtime, 1000000000);  // Last-Modified (older than the build's timestamp)
  EXPECT_EQ(server.requests("/dl/tool.txt"), 2);

  // Rebuild: the checksummed ADD is a cache hit without a download; the other one downloads to
  // learn its content (as docker build does) and is then a hit too.
  auto again = build(tmp_ / "ctx", o);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->steps_run, 0);
  EXPECT_EQ(again->manifest.digest, r->manifest.digest);
  EXPECT_EQ(server.requests("/dl/tool.txt"), 3);

  // A wrong checksum is a clear error and stores nothing.
  size_t before = blob_count(*store_);
  write(tmp_ / "ctx/Containerfile",
        fmt::format("FROM busybox\nADD --checksum={} {} /opt/\n", image::Digest::of("other").str(),
                    server.url("/dl/tool.txt")));
  auto bad = build(tmp_ / "ctx", o);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find("checksum mismatch"), std::string::npos) << bad.error().to_string();
  EXPECT_NE(bad.error().to_string().find("Containerfile:2:1"), std::string::npos) << bad.error().to_string();
  EXPECT_EQ(blob_count(*store_), before);

  // A 404, a git source, --checksum on a local file: errors that say why.
  write(tmp_ / "ctx/Containerfile", fmt::format("FROM busybox\nADD {} /x\n", server.url("/missing")));
  auto missing = build(tmp_ / "ctx", o);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("404"), std::string::npos) << missing.error().to_string();
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nADD git@github.com:moby/moby.git /src\n");
  auto git = build(tmp_ / "ctx", o);
  ASSERT_FALSE(git);
  EXPECT_NE(git.error().to_string().find("git sources are not supported"), std::string::npos) << git.error().to_string();
  write(tmp_ / "ctx/f", "f");
  write(tmp_ / "ctx/Containerfile", fmt::format("FROM busybox\nADD --checksum={} f /f\n", sum));
  auto local = build(tmp_ / "ctx", o);
  ASSERT_FALSE(local);
  EXPECT_NE(local.error().to_string().find("--checksum needs exactly one http(s) source"), std::string::npos);
}

TEST_F(BuilderTest, CopyParentsAndIntoExistingDirectory) {
  write(tmp_ / "ctx/a/b/c.txt", "C");
  write(tmp_ / "ctx/x/y.txt", "Y");
  write(tmp_ / "ctx/src/pkg/m.txt", "M");
  write(tmp_ / "ctx/f.txt", "F");
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\n"
        "COPY --parents a/b/c.txt x/y.txt /dst/\n"
        "COPY --parents ./src/./pkg/m.txt /piv\n"
        "COPY --parents a/ /tree/\n"
        "COPY f.txt /etc\n"      // an existing directory, no trailing slash: copied into it
        "COPY f.txt /newfile\n"  // no such path: the file itself
        "COPY f.txt /bin/sh\n"); // an existing file: replaced
  auto r = build(tmp_ / "ctx");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "dst/a/b/c.txt"), "C");
  EXPECT_EQ(read_in_image(r->manifest, "dst/x/y.txt"), "Y");
  EXPECT_EQ(read_in_image(r->manifest, "piv/pkg/m.txt"), "M");
  EXPECT_EQ(read_in_image(r->manifest, "tree/a/b/c.txt"), "C");
  EXPECT_EQ(read_in_image(r->manifest, "etc/f.txt"), "F");
  EXPECT_NE(read_in_image(r->manifest, "etc/passwd"), "");
  EXPECT_EQ(read_in_image(r->manifest, "newfile"), "F");
  EXPECT_EQ(read_in_image(r->manifest, "bin/sh"), "F");
}

TEST_F(BuilderTest, RunTmpfsAndSshMounts) {
  // A socket standing in for an ssh agent.
  fs::path sock = tmp_ / "agent.sock";
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(s.get(), 1), 0);
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\n"
        "RUN --mount=type=tmpfs,target=/scratch,size=1m echo x > /scratch/f && "
        "grep -q ' /scratch tmpfs ' /proc/mounts && grep ' /scratch ' /proc/mounts | grep -q size=1024k && echo ok > /tmpfs-ok\n"
        "RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK\" > /ssh-ok\n"
        "RUN --mount=type=ssh,id=other,target=/agent test ! -e /agent && echo skipped > /ssh-skip\n");
  auto r = build(tmp_ / "ctx", {.ssh = {{"default", sock}}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "tmpfs-ok"), "ok\n");
  EXPECT_EQ(read_in_image(r->manifest, "scratch/f"), "");  // the tmpfs is not in a layer
  EXPECT_EQ(read_in_image(r->manifest, "ssh-ok"), "/run/buildkit/ssh_agent.0\n");
  EXPECT_EQ(read_in_image(r->manifest, "ssh-skip"), "skipped\n");  // not required, not given
  fs::path flat = tmp_ / ("flat-" + std::string(r->manifest.digest.hex().substr(0, 8)));
  EXPECT_FALSE(fs::exists(flat / "scratch"));
  EXPECT_FALSE(fs::exists(flat / "run/buildkit"));
  // required=true without --ssh, and a path that is not a socket: errors.
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nRUN --mount=type=ssh,required true\n");
  auto need = build(tmp_ / "ctx");
  ASSERT_FALSE(need);
  EXPECT_NE(need.error().to_string().find("is required but was not given"), std::string::npos) << need.error().to_string();
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nRUN --mount=type=ssh true\n");
  auto notsock = build(tmp_ / "ctx", {.ssh = {{"default", tmp_ / "ctx/Containerfile"}}});
  ASSERT_FALSE(notsock);
  EXPECT_NE(notsock.error().to_string().find("is not a socket"), std::string::npos) << notsock.error().to_string();
}

TEST_F(BuilderTest, RuntimeFilesNeverReachALayer) {
  // Under docker build /etc/hosts and co. are bind mounts: what RUN writes to them is lost, and
  // the /etc they need is no change of the step.
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\n"
        "RUN echo 10.0.0.1 db >> /etc/hosts && echo nameserver 10.0.0.2 > /etc/resolv.conf && "
        "grep -q db /etc/hosts && echo made > /made\n"
        "RUN rm /etc/hostname && echo kept > /etc/kept\n");
  auto r = build(tmp_ / "ctx");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "made"), "made\n");
  EXPECT_EQ(read_in_image(r->manifest, "etc/kept"), "kept\n");
  fs::path flat = tmp_ / ("flat-" + std::string(r->manifest.digest.hex().substr(0, 8)));
  for (const char* f : {"etc/hosts", "etc/resolv.conf", "etc/hostname"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(flat / f))) << f;
  }
  // The first RUN changed nothing but /made: its layer has no /etc at all.
  auto layers = layers_of(r->manifest);
  ASSERT_GE(layers.size(), 3u);
  std::string listing;
  ASSERT_EQ(sh(fmt::format("tar -tf {}", store_->blob_path(layers[layers.size() - 2].digest).native()),
               &listing), 0) << listing;
  EXPECT_EQ(listing, "made\n");
}

// Copies blobs from another real store (what the registry importer does over HTTP).
class StoreImporter final : public CacheImporter {
 public:
  StoreImporter(const image::Store& from, const image::Store& to) : from_(from), to_(to) {}
  Status fetch(const image::Descriptor& d) override {
    ++fetched;
    KISTE_ASSIGN_OR_RETURN(auto r, from_.open_blob(d.digest));
    KISTE_ASSIGN_OR_RETURN(auto w, to_.blob_writer());
    std::vector<char> buf(1 << 16);
    for (;;) {
      KISTE_ASSIGN_OR_RETURN(size_t n, r->read(buf.data(), buf.size()));
      if (n == 0) break;
      KISTE_TRY(w.write(std::string_view(buf.data(), n)));
    }
    KISTE_TRY(w.commit(d.digest, d.size));
    return {};
  }
  int fetched = 0;

 private:
  const image::Store& from_;
  const image::Store& to_;
};

TEST_F(BuilderTest, ImportedCacheReusesLayersAndRejectsALyingDiffId) {
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\nWORKDIR /app\nCOPY a.txt .\n"
        "RUN --mount=type=cache,id=counter,target=/cache echo run >> /cache/runs && cp a.txt b.txt\n");
  write(tmp_ / "ctx/a.txt", "A\n");
  auto a = build(tmp_ / "ctx");
  ASSERT_TRUE(a) << a.error().to_string();
  ASSERT_EQ(a->cache_records.size(), 3u);  // WORKDIR's directory, COPY, RUN

  auto b_store = image::Store::open(tmp_ / "rootB");
  ASSERT_TRUE(b_store);
  ASSERT_TRUE(image::import_rootfs(*b_store, busybox_tar(), *image::Reference::parse("busybox"), {.created = 0}));
  StoreImporter importer(*store_, *b_store);
  auto b = build(tmp_ / "ctx", {.cache_from = a->cache_records, .cache_importer = &importer}, &*b_store);
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->steps_run, 0);
  EXPECT_EQ(b->steps_imported, 3);
  EXPECT_EQ(importer.fetched, 3);
  EXPECT_EQ(b->manifest.digest, a->manifest.digest);
  EXPECT_FALSE(fs::exists(b_store->root() / "cache/mounts" /
                          std::string(image::Digest::of("counter").hex().substr(0, 32)) / "runs"));

  // A cache whose RUN layer claims another diff_id: the layer is refused and the step runs.
  auto c_store = image::Store::open(tmp_ / "rootC");
  ASSERT_TRUE(c_store);
  ASSERT_TRUE(image::import_rootfs(*c_store, busybox_tar(), *image::Reference::parse("busybox"), {.created = 0}));
  std::vector<CacheRecord> lying = a->cache_records;
  lying.back().layer->diff_id = image::Digest::of("not the tar");
  StoreImporter importer_c(*store_, *c_store);
  auto c = build(tmp_ / "ctx", {.cache_from = lying, .cache_importer = &importer_c}, &*c_store);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->steps_imported, 2);
  EXPECT_EQ(c->steps_run, 1);
  bool noted = false;
  for (const auto& n : c->notes) noted = noted || n.find("rejected") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(c->manifest.digest, a->manifest.digest);  // the RUN itself is reproducible
}

}  // namespace
}  // namespace kiste::builder

namespace kiste::builder::test {

// COPY --from reads the stage as a container would see it mounted (a read-only overlay of its
// layer snapshots, not a copy of its filesystem): files a later layer deleted (whiteouts) and
// directories it replaced (opaque) are gone, and symlinks resolve inside the stage's root.
TEST_F(BuilderTest, CopyFromSeesTheStageAsMountedWithoutFlatteningIt) {
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox AS one\n"
        "RUN mkdir -p /a /d /real && echo keep > /a/keep && echo gone > /a/gone && "
        "echo old > /d/old && echo in > /real/f && ln -s ../../../../../real /dirlink && "
        "ln -s /real/f /abslink\n"
        "RUN rm /a/gone && rm -rf /d && mkdir /d && echo new > /d/new\n"
        "FROM busybox\n"
        "COPY --from=one /a /a2\n"
        "COPY --from=one /d /d2\n"
        "COPY --from=one /dirlink/f /through-dirlink\n"
        "COPY --from=one /abslink /through-abslink\n");
  auto r = build(tmp_ / "ctx");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "a2/keep"), "keep\n");
  EXPECT_FALSE(fs::exists(tmp_ / ("flat-" + std::string(r->manifest.digest.hex().substr(0, 8))) / "a2/gone"));
  EXPECT_EQ(read_in_image(r->manifest, "d2/new"), "new\n");
  EXPECT_FALSE(fs::exists(tmp_ / ("flat-" + std::string(r->manifest.digest.hex().substr(0, 8))) / "d2/old"));
  // `/real` does not exist on the host: these resolve in the stage's root or not at all.
  ASSERT_FALSE(fs::exists("/real/f"));
  EXPECT_EQ(read_in_image(r->manifest, "through-dirlink"), "in\n");
  // A symlink named as the source is copied as the link itself (never followed on the host).
  const fs::path flat = tmp_ / ("flat-" + std::string(r->manifest.digest.hex().substr(0, 8)));
  std::error_code ec;
  EXPECT_EQ(fs::read_symlink(flat / "through-abslink", ec), fs::path("/real/f")) << ec.message();
  // Nothing stays mounted (TearDown) and the store's tmp/ holds nothing of the build.
  EXPECT_TRUE(fs::is_empty(store_->tmp_dir()));
}

}  // namespace kiste::builder::test
