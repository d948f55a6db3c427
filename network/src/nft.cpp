#include <kiste/network/nft.hpp>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <kiste/base/dynamic_library.hpp>
#include <kiste/base/unique_fd.hpp>

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

Result<bool> kiste_chain_exists(std::string_view chain) {
  constexpr std::string_view table = kNftTable.substr(kNftTable.find(' ') + 1);  // "kiste"
  if (chain.size() > NFT_NAME_MAXLEN - 1) return false;  // no such chain can exist
  alignas(nlmsghdr) char req[256] = {};
  auto* nlh = reinterpret_cast<nlmsghdr*>(req);
  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = 1;
  auto* nfg = reinterpret_cast<nfgenmsg*>(NLMSG_DATA(nlh));
  nfg->nfgen_family = NFPROTO_INET;
  nfg->version = NFNETLINK_V0;
  size_t len = NLMSG_LENGTH(sizeof(nfgenmsg));
  for (auto [type, value] : {std::pair{NFTA_CHAIN_TABLE, table}, std::pair{NFTA_CHAIN_NAME, chain}}) {
    auto* a = reinterpret_cast<nlattr*>(req + NLMSG_ALIGN(len));
    a->nla_type = static_cast<uint16_t>(type);
    a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + value.size() + 1);  // NUL-terminated
    std::memcpy(reinterpret_cast<char*>(a) + NLA_HDRLEN, value.data(), value.size());
    len = NLMSG_ALIGN(len) + NLA_ALIGN(a->nla_len);
  }
  nlh->nlmsg_len = static_cast<uint32_t>(len);
  UniqueFd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!s) return std::unexpected(sys_error("socket", "NETLINK_NETFILTER"));
  sockaddr_nl kernel{.nl_family = AF_NETLINK};
  if (::sendto(s.get(), req, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    return std::unexpected(sys_error("nfnetlink GETCHAIN", chain));
  }
  // The chain (NEWCHAIN) and then the ack, or only an error (ENOENT: no such table or chain).
  alignas(nlmsghdr) char buf[8192];
  bool found = false;
  for (;;) {
    ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(sys_error("nfnetlink GETCHAIN", chain));
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR) {
        found = found || h->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN);
        continue;
      }
      const int err = -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
      if (err == 0) return found;
      if (err == ENOENT) return false;
      return std::unexpected(sys_error_code(err, "nfnetlink GETCHAIN", chain));
    }
  }
}

}  // namespace kiste::network
