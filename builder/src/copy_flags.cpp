#include <kiste/builder/copy_flags.hpp>

#include <fmt/format.h>

namespace kiste::builder {

Result<uint32_t> parse_chmod(std::string_view v) {
  if (v.empty() || v.size() > 5) return failf(Errc::InvalidArgument, "--chmod={}: expected octal mode like 0755", v);
  uint32_t m = 0;
  for (char c : v) {
    if (c < '0' || c > '7') return failf(Errc::InvalidArgument, "--chmod={}: expected octal mode like 0755", v);
    m = m * 8 + static_cast<uint32_t>(c - '0');
  }
  if (m > 07777) return failf(Errc::InvalidArgument, "--chmod={}: mode out of range", v);
  return m;
}

Status apply_copy_flag(CopyFlags& out, std::string_view name, std::string_view v) {
  if (name == "from") {
    if (v.empty()) return fail(Errc::InvalidArgument, "--from needs a stage or an image");
    out.from = std::string(v);
  } else if (name == "chown") {
    if (v.empty()) return fail(Errc::InvalidArgument, "--chown needs user[:group]");
    out.chown = std::string(v);
  } else if (name == "chmod") {
    KISTE_ASSIGN_OR_RETURN(out.chmod, parse_chmod(v));
  } else if (name == "parents") {
    if (v != "" && v != "true" && v != "false") return failf(Errc::InvalidArgument, "--parents={}: expected true or false", v);
    out.parents = v != "false";
  } else if (name == "checksum") {
    auto d = image::Digest::parse(v);
    if (!d) return failf(Errc::InvalidArgument, "--checksum={}: expected sha256:<64 hex digits>", v);
    out.checksum = *d;
  } else if (name == "exclude") {
    if (v.empty()) return fail(Errc::InvalidArgument, "--exclude needs a pattern");
    out.exclude.emplace_back(v);
  } else if (name == "keep-git-dir") {
    return fail(Errc::Unsupported, "ADD of git repositories needs network access, which kiste builds do not have");
  } else if (name != "link") {
    return failf(Errc::InvalidArgument, "unknown flag --{}", name);
  }
  if (name != "link") out.key_lines.push_back(fmt::format("flag --{}={}", name, v));
  return {};
}

Result<CopyFlags> parse_copy_flags(const Instruction& ins, const ExpandWord& expand) {
  CopyFlags out;
  for (const auto& f : ins.flags) {
    KISTE_ASSIGN_OR_RETURN(std::string v, expand(f.value.value_or("")));
    KISTE_TRY(apply_copy_flag(out, f.name, v));
  }
  return out;
}

}  // namespace kiste::builder
