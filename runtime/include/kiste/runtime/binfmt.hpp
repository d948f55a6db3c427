#pragma once
// Can this host run an image's programs? Natively, or through a binfmt_misc handler (qemu-user)
// that has the F (fix-binary) flag: the kernel opens such a handler's interpreter when it is
// registered, so it works inside a container's mount namespace, where the interpreter's host
// path does not exist. kiste never registers handlers itself; it names what is missing.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/image/platform.hpp>

namespace kiste::runtime {

inline constexpr std::string_view kBinfmtMiscDir = "/proc/sys/fs/binfmt_misc";

// One entry of binfmt_misc (the file /proc/sys/fs/binfmt_misc/NAME).
struct BinfmtHandler {
  std::string name;
  bool enabled = false;
  std::string interpreter;
  std::string flags;  // "PF", "OCF", …
  int offset = 0;
  std::string magic;  // raw bytes (magic handlers only; empty for extension handlers)
  std::string mask;   // raw bytes, as long as magic (all 0xff when the entry shows none)

  [[nodiscard]] bool fix_binary() const { return flags.find('F') != std::string::npos; }
  // Whether the kernel would hand `header` (the first bytes of a file) to this handler.
  [[nodiscard]] bool matches(std::string_view header) const;
};

// Parses the text of a binfmt_misc entry ("enabled\ninterpreter …\nflags: PF\noffset 0\nmagic
// 7f45…\nmask ff…\n").
[[nodiscard]] Result<BinfmtHandler> parse_binfmt_handler(std::string_view name,
                                                         std::string_view text);

// How a platform's programs run here.
enum class Execution { Native, Emulated };

struct ExecutionCheck {
  Execution how = Execution::Native;
  std::string handler;  // the binfmt_misc entry that runs them (Emulated)
};

// qemu's name for an architecture ("aarch64" for arm64); nullopt when kiste knows no ELF
// machine for it.
[[nodiscard]] std::optional<std::string> qemu_arch(const image::Platform& p);

// Native when `host` runs `image`'s programs itself (the same architecture, or 386 on amd64);
// else Emulated when an enabled F-flag handler in `binfmt_dir` takes `image`'s ELF executables.
// Otherwise an Unsupported error, one line, naming Debian's qemu-user-static and binfmt-support
// and the update-binfmts command that registers the handler.
[[nodiscard]] Result<ExecutionCheck> check_execution(
    const image::Platform& image, const image::Platform& host = image::Platform::host(),
    const std::filesystem::path& binfmt_dir = kBinfmtMiscDir);

}  // namespace kiste::runtime
