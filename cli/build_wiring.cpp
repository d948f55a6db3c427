#include "build_wiring.hpp"

#include <cstdio>

#include <fcntl.h>
#include <unistd.h>

namespace kiste::cli {

Result<image::ManifestBlob> PullingImageProvider::resolve(const image::Reference& ref,
                                                          const image::Platform& platform) {
  auto r = local_.resolve(ref, platform);
  if (r || r.error().code != Errc::NotFound) return r;
  std::fprintf(stderr, "pulling %s\n", ref.str().c_str());
  KISTE_TRY(pull_for_build(g_, rf_, ref, platform));
  return local_.resolve(ref, platform);
}

Result<int> OutputRedirect::run(const builder::RunRequest& req) {
  std::fflush(stdout);
  std::fflush(stderr);
  int saved_out = ::dup(1), saved_err = ::dup(2);
  int null_fd = quiet_ ? ::open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
  if (quiet_ && null_fd >= 0) {
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
  } else {
    ::dup2(2, 1);
  }
  auto r = inner_.run(req);
  ::dup2(saved_out, 1);
  ::dup2(saved_err, 2);
  for (int fd : {saved_out, saved_err, null_fd}) {
    if (fd >= 0) ::close(fd);
  }
  return r;
}

}  // namespace kiste::cli
