#include <kiste/runtime/binfmt.hpp>

#include <array>
#include <cstdint>
#include <system_error>

#include <kiste/base/split.hpp>
#include <kiste/base/sys.hpp>

namespace kiste::runtime {

namespace {

// What an ELF executable of an architecture starts with: class, byte order and e_machine.
struct ElfArch {
  std::string_view oci;   // OCI architecture
  std::string_view qemu;  // qemu-user's name (qemu-<name>-static, update-binfmts qemu-<name>)
  uint8_t elf_class;      // 1: 32-bit, 2: 64-bit
  bool big_endian;
  uint16_t machine;
};

constexpr std::array<ElfArch, 9> kElfArches{{
    {"amd64", "x86_64", 2, false, 62},
    {"arm64", "aarch64", 2, false, 183},
    {"arm", "arm", 1, false, 40},
    {"386", "i386", 1, false, 3},
    {"ppc64le", "ppc64le", 2, false, 21},
    {"s390x", "s390x", 2, true, 22},
    {"riscv64", "riscv64", 2, false, 243},
    {"mips64le", "mips64el", 2, false, 8},
    {"loong64", "loongarch64", 2, false, 258},
}};

const ElfArch* elf_arch(const image::Platform& p) {
  const std::string arch = p.normalized().architecture;
  for (const ElfArch& a : kElfArches) {
    if (a.oci == arch) return &a;
  }
  return nullptr;
}

// The first 20 bytes of a static ELF executable (ET_EXEC) for `a`: e_ident, e_type, e_machine.
std::string elf_header(const ElfArch& a) {
  std::string h(20, '\0');
  h[0] = 0x7f;
  h[1] = 'E';
  h[2] = 'L';
  h[3] = 'F';
  h[4] = static_cast<char>(a.elf_class);
  h[5] = static_cast<char>(a.big_endian ? 2 : 1);
  h[6] = 1;  // EV_CURRENT
  auto put16 = [&](size_t at, uint16_t v) {
    h[at + (a.big_endian ? 1 : 0)] = static_cast<char>(v & 0xff);
    h[at + (a.big_endian ? 0 : 1)] = static_cast<char>(v >> 8);
  };
  put16(16, 2);  // ET_EXEC
  put16(18, a.machine);
  return h;
}

Result<std::string> unhex(std::string_view name, std::string_view hex) {
  if (hex.size() % 2 != 0) return failf(Errc::Corrupt, "binfmt_misc entry {}: odd hex length", quote(name));
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return failf(Errc::Corrupt, "binfmt_misc entry {}: bad hex", quote(name));
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

bool native(const image::Platform& image, const image::Platform& host) {
  const std::string want = image.normalized().architecture;
  const std::string have = host.normalized().architecture;
  return want == have || (have == "amd64" && want == "386");
}

std::string how_to_register(const ElfArch& a) {
  return fmt::format("install Debian's qemu-user-static and binfmt-support, then register it "
                     "with `update-binfmts --enable qemu-{}`",
                     a.qemu);
}

}  // namespace

bool BinfmtHandler::matches(std::string_view header) const {
  if (magic.empty() || offset < 0) return false;
  const auto start = static_cast<size_t>(offset);
  if (start + magic.size() > header.size()) return false;
  for (size_t i = 0; i < magic.size(); ++i) {
    const auto m = static_cast<unsigned char>(i < mask.size() ? mask[i] : '\xff');
    if (((static_cast<unsigned char>(header[start + i]) ^ static_cast<unsigned char>(magic[i])) & m) != 0) {
      return false;
    }
  }
  return true;
}

Result<BinfmtHandler> parse_binfmt_handler(std::string_view name, std::string_view text) {
  BinfmtHandler h{.name = std::string(name)};
  for (std::string_view line : split(text, '\n')) {
    if (line == "enabled") {
      h.enabled = true;
    } else if (line.starts_with("interpreter ")) {
      h.interpreter = std::string(line.substr(12));
    } else if (line.starts_with("flags:")) {
      std::string_view f = line.substr(6);
      while (f.starts_with(' ')) f.remove_prefix(1);
      h.flags = std::string(f);
    } else if (line.starts_with("offset ")) {
      std::string_view v = line.substr(7);
      int n = 0;
      for (char c : v) {
        if (c < '0' || c > '9' || n > 1'000'000) return failf(Errc::Corrupt, "binfmt_misc entry {}: bad offset", quote(name));
        n = n * 10 + (c - '0');
      }
      h.offset = n;
    } else if (line.starts_with("magic ")) {
      KISTE_ASSIGN_OR_RETURN(h.magic, unhex(name, line.substr(6)));
    } else if (line.starts_with("mask ")) {
      KISTE_ASSIGN_OR_RETURN(h.mask, unhex(name, line.substr(5)));
    }
  }
  if (h.mask.empty()) h.mask.assign(h.magic.size(), '\xff');
  return h;
}

std::optional<std::string> qemu_arch(const image::Platform& p) {
  const ElfArch* a = elf_arch(p);
  if (a == nullptr) return std::nullopt;
  return std::string(a->qemu);
}

Result<ExecutionCheck> check_execution(const image::Platform& image, const image::Platform& host,
                                       const std::filesystem::path& binfmt_dir) {
  // An image that names no architecture (not valid OCI, but older tools wrote them) is taken
  // for the host's, as before.
  if (image.architecture.empty() || native(image, host)) return ExecutionCheck{};
  const std::string what = fmt::format("image is {}, this host is {}", image.normalized().str(),
                                       host.normalized().str());
  const ElfArch* a = elf_arch(image);
  if (a == nullptr) {
    return failf(Errc::Unsupported, "{}: kiste knows no emulator for architecture {}", what,
                 quote(image.architecture));
  }
  std::error_code ec;
  if (!std::filesystem::exists(binfmt_dir / "register", ec)) {
    return failf(Errc::Unsupported,
                 "{}: binfmt_misc is not mounted at {} (mount -t binfmt_misc binfmt_misc {}), so "
                 "no qemu-{} handler is registered; {}",
                 what, quote(binfmt_dir.native()), binfmt_dir.native(), a->qemu, how_to_register(*a));
  }
  const std::string header = elf_header(*a);
  std::optional<std::string> without_f;
  for (auto it = std::filesystem::directory_iterator(binfmt_dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().native();
    if (name == "register" || name == "status") continue;
    auto text = sys::read_file(it->path(), 64 * 1024);
    if (!text) continue;  // unregistered while listed
    auto h = parse_binfmt_handler(name, *text);
    if (!h || !h->enabled || !h->matches(header)) continue;
    if (h->fix_binary()) return ExecutionCheck{.how = Execution::Emulated, .handler = name};
    without_f = name;
  }
  if (ec) return std::unexpected(sys_error_code(ec.value(), "list", binfmt_dir.native()));
  if (without_f) {
    return failf(Errc::Unsupported,
                 "{}: the binfmt_misc handler {} runs {} programs but has no F (fix-binary) flag, "
                 "so its interpreter is not found inside a container; {}",
                 what, quote(*without_f), a->qemu, how_to_register(*a));
  }
  return failf(Errc::Unsupported, "{}: no binfmt_misc handler with the F (fix-binary) flag runs {} "
                                  "programs; {}",
               what, a->qemu, how_to_register(*a));
}

}  // namespace kiste::runtime
