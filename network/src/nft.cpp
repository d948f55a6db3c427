#include <kiste/network/nft.hpp>

#include <nftables/libnftables.h>

#include <kiste/base/dynamic_library.hpp>

namespace kiste::network {

namespace {

struct NftApi {
  decltype(&::nft_ctx_new) ctx_new;
  decltype(&::nft_ctx_free) ctx_free;
  decltype(&::nft_ctx_buffer_output) buffer_output;
  decltype(&::nft_ctx_buffer_error) buffer_error;
  decltype(&::nft_ctx_get_output_buffer) get_output_buffer;
  decltype(&::nft_ctx_get_error_buffer) get_error_buffer;
  decltype(&::nft_ctx_output_get_flags) output_get_flags;
  decltype(&::nft_ctx_output_set_flags) output_set_flags;
  decltype(&::nft_run_cmd_from_buffer) run_cmd_from_buffer;
};

Result<const NftApi*> load_nft() {
  static NftApi api{};
  static Status loaded = []() -> Status {
    KISTE_ASSIGN_OR_RETURN(DynamicLibrary lib, DynamicLibrary::open("libnftables.so.1"));
    KISTE_TRY(lib.bind("nft_ctx_new", api.ctx_new));
    KISTE_TRY(lib.bind("nft_ctx_free", api.ctx_free));
    KISTE_TRY(lib.bind("nft_ctx_buffer_output", api.buffer_output));
    KISTE_TRY(lib.bind("nft_ctx_buffer_error", api.buffer_error));
    KISTE_TRY(lib.bind("nft_ctx_get_output_buffer", api.get_output_buffer));
    KISTE_TRY(lib.bind("nft_ctx_get_error_buffer", api.get_error_buffer));
    KISTE_TRY(lib.bind("nft_ctx_output_get_flags", api.output_get_flags));
    KISTE_TRY(lib.bind("nft_ctx_output_set_flags", api.output_set_flags));
    KISTE_TRY(lib.bind("nft_run_cmd_from_buffer", api.run_cmd_from_buffer));
    return {};
  }();
  if (!loaded) return std::unexpected(loaded.error());
  return &api;
}

const NftApi& api() { return **load_nft(); }

// nft's error buffer holds the message, an input line and a caret line: keep the message (for
// a multi-line buffer the input line it shows is not always the offending one).
std::string first_line(const char* text) {
  std::string_view s = text != nullptr ? text : "";
  while (!s.empty() && (s.front() == '\n' || s.front() == ' ')) s.remove_prefix(1);
  std::string_view line = s.substr(0, s.find('\n'));
  if (line.empty()) return "nft failed without a message";
  if (line.starts_with("Error: ")) line.remove_prefix(7);
  return std::string(line);
}

}  // namespace

Result<Nft> Nft::open() {
  KISTE_ASSIGN_OR_RETURN(const NftApi* a, load_nft());
  struct nft_ctx* ctx = a->ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) return fail(Errc::System, "nft_ctx_new failed");
  a->buffer_output(ctx);
  a->buffer_error(ctx);
  return Nft(ctx);
}

Nft::Nft(Nft&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}
Nft& Nft::operator=(Nft&& o) noexcept {
  std::swap(ctx_, o.ctx_);
  return *this;
}
Nft::~Nft() {
  if (ctx_ != nullptr) api().ctx_free(static_cast<struct nft_ctx*>(ctx_));
}

Status Nft::run(std::string_view commands, std::string_view what) {
  auto* ctx = static_cast<struct nft_ctx*>(ctx_);
  std::string buf(commands);
  if (api().run_cmd_from_buffer(ctx, buf.c_str()) != 0) {
    return failf(Errc::System, "{}: nft: {}", what, first_line(api().get_error_buffer(ctx)));
  }
  return {};
}

Result<std::string> Nft::query(std::string_view command, bool json) {
  auto* ctx = static_cast<struct nft_ctx*>(ctx_);
  unsigned flags = api().output_get_flags(ctx);
  api().output_set_flags(ctx, json ? (flags | NFT_CTX_OUTPUT_JSON) : (flags & ~NFT_CTX_OUTPUT_JSON));
  std::string buf(command);
  int rc = api().run_cmd_from_buffer(ctx, buf.c_str());
  api().output_set_flags(ctx, flags);
  if (rc != 0) {
    return failf(Errc::System, "{}: nft: {}", command, first_line(api().get_error_buffer(ctx)));
  }
  const char* out = api().get_output_buffer(ctx);
  return std::string(out != nullptr ? out : "");
}

}  // namespace kiste::network
