#pragma once
// nftables through libnftables (Debian's libnftables1, loaded on first use): kiste writes its
// rules in nft's own language, in its own tables only, as one transaction per change, so a
// change is all or nothing and another program's tables are never read or touched.
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>

namespace kiste::network {

// kiste's one table; no other is ever read or written.
inline constexpr std::string_view kNftTable = "inet kiste";

// Whether chain `chain` of kiste's table exists: one nfnetlink GETCHAIN request (no libnftables
// context, no cache of the table), so each container start can afford the check. A missing table
// is `false` too.
[[nodiscard]] Result<bool> kiste_chain_exists(std::string_view chain);

class Nft {
 public:
  [[nodiscard]] static Result<Nft> open();
  Nft(Nft&&) noexcept;
  Nft& operator=(Nft&&) noexcept;
  ~Nft();

  // Runs `commands` (one transaction); the error is nft's first message line, with `what`.
  [[nodiscard]] Status run(std::string_view commands, std::string_view what);
  // Runs a listing command ("list table inet kiste") and returns its output; with json = true in
  // nft's JSON form.
  [[nodiscard]] Result<std::string> query(std::string_view command, bool json = false);

 private:
  explicit Nft(void* ctx) : ctx_(ctx) {}
  void* ctx_ = nullptr;  // struct nft_ctx*
};

}  // namespace kiste::network
