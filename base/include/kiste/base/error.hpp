#pragma once
// Errors travel as values: Result<T> = std::expected<T, Error>. Library code never throws for
// expected failures; context is added once per layer boundary and printed outermost first.

#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace kiste {

enum class Errc {
  InvalidArgument,
  NotFound,
  AlreadyExists,
  PermissionDenied,
  Corrupt,
  Unsupported,
  Unavailable,  // retryable
  Registry,
  System,
  Cancelled,
};

[[nodiscard]] std::string_view errc_name(Errc code);

struct Error {
  Errc code = Errc::System;
  std::string message;  // "open `/var/lib/kiste/index.json`: Permission denied"
  int sys_errno = 0;
  int http_status = 0;
  std::vector<std::string> registry_codes;
  std::vector<std::string> context;  // pushed while unwinding (innermost first)

  [[nodiscard]] Error with_context(std::string what) &&;
  [[nodiscard]] Error with_context(std::string what) const&;
  // One line: "outer: inner: message".
  [[nodiscard]] std::string to_string() const;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = Result<void>;

[[nodiscard]] inline std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected(Error{.code = code, .message = std::move(message)});
}

template <class... Args>
[[nodiscard]] std::unexpected<Error> failf(Errc code, fmt::format_string<Args...> f,
                                           Args&&... args) {
  return fail(code, fmt::format(f, std::forward<Args>(args)...));
}

// Reads errno now: "<call> `<object>`: <strerror>"; code is derived from errno.
[[nodiscard]] Error sys_error(std::string_view call, std::string_view object);
[[nodiscard]] Error sys_error_code(int err, std::string_view call, std::string_view object);
[[nodiscard]] Errc errc_from_errno(int err);

// GCC 12's std::expected has no monadic members yet, so context is added with a free function:
// `return with_context(store.open(d), "pulling `x`");`
template <class T>
[[nodiscard]] Result<T> with_context(Result<T>&& r, std::string_view what) {
  if (!r) return std::unexpected(std::move(r).error().with_context(std::string(what)));
  return std::move(r);
}

// Backtick-quote for messages: quote("/a b") -> "`/a b`".
[[nodiscard]] std::string quote(std::string_view s);

[[noreturn]] void check_failed(const char* expr, const char* file, int line);

}  // namespace kiste

#define KISTE_CONCAT_INNER(a, b) a##b
#define KISTE_CONCAT(a, b) KISTE_CONCAT_INNER(a, b)

#define KISTE_TRY(expr)                                              \
  do {                                                               \
    auto&& kiste_try_r_ = (expr);                                    \
    if (!kiste_try_r_) {                                             \
      return std::unexpected(std::move(kiste_try_r_).error());       \
    }                                                                \
  } while (0)

#define KISTE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)       \
  auto tmp = (expr);                                      \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  lhs = std::move(*tmp)

#define KISTE_ASSIGN_OR_RETURN(lhs, expr) \
  KISTE_ASSIGN_OR_RETURN_IMPL(KISTE_CONCAT(kiste_aor_, __LINE__), lhs, expr)

#define KISTE_CHECK(cond)                                              \
  do {                                                                 \
    if (!(cond)) ::kiste::check_failed(#cond, __FILE__, __LINE__);     \
  } while (0)
