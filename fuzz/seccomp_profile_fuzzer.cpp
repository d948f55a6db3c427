// Docker seccomp profiles (runtime/seccomp_profile.hpp): parse, and compile what parses with
// libseccomp for this machine's architecture (the parent's half of `--security-opt seccomp=`).
// Nothing is installed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <kiste/runtime/seccomp_profile.hpp>

namespace rt = kiste::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto p = rt::SeccompProfile::parse(json);
  if (!p) return 0;
  // A fixed kernel and capability set keep the run deterministic.
  rt::SeccompCompileOptions opts{.capabilities = 0xa80425fb, .kernel_release = "6.1.0"};
  (void)rt::compile_seccomp(*p, opts);
  opts.capabilities = ~uint64_t{0};
  opts.kernel_release = "4.4.0";
  (void)rt::compile_seccomp(*p, opts);
  return 0;
}
