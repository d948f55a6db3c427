#include <kiste/base/error.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kiste {

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::NotFound: return "not found";
    case Errc::AlreadyExists: return "already exists";
    case Errc::PermissionDenied: return "permission denied";
    case Errc::Corrupt: return "corrupt";
    case Errc::Unsupported: return "unsupported";
    case Errc::Unavailable: return "unavailable";
    case Errc::Registry: return "registry";
    case Errc::System: return "system";
    case Errc::Cancelled: return "cancelled";
  }
  return "unknown";
}

Error Error::with_context(std::string what) && {
  context.push_back(std::move(what));
  return std::move(*this);
}

Error Error::with_context(std::string what) const& {
  Error copy = *this;
  return std::move(copy).with_context(std::move(what));
}

std::string Error::to_string() const {
  std::string out;
  for (auto it = context.rbegin(); it != context.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  out += message;
  // Keep it one line whatever a remote party put into the message.
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

Errc errc_from_errno(int err) {
  switch (err) {
    case ENOENT: case ENOTDIR: case ESRCH: return Errc::NotFound;
    case EEXIST: case ENOTEMPTY: return Errc::AlreadyExists;
    case EACCES: case EPERM: case EROFS: return Errc::PermissionDenied;
    case EINVAL: case ENAMETOOLONG: case ELOOP: case EXDEV: return Errc::InvalidArgument;
    case ENOSYS: case EOPNOTSUPP: return Errc::Unsupported;
    case EAGAIN: case EINTR: case EBUSY: case ETIMEDOUT: return Errc::Unavailable;
    default: return Errc::System;
  }
}

Error sys_error_code(int err, std::string_view call, std::string_view object) {
  std::string msg(call);
  if (!object.empty()) {
    msg += ' ';
    msg += quote(object);
  }
  msg += ": ";
  msg += std::strerror(err);
  return Error{.code = errc_from_errno(err), .message = std::move(msg), .sys_errno = err};
}

Error sys_error(std::string_view call, std::string_view object) {
  return sys_error_code(errno, call, object);
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '`';
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  out += '`';
  return out;
}

void check_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "kiste: internal check failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace kiste
