#pragma once
// IPv4/IPv6 addresses and subnets as values: parsing with one-line errors, arithmetic for the
// address allocator, and the overlap checks `network create` needs.
#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>

namespace kiste::network {

enum class Family : uint8_t { V4, V6 };

class IpAddress {
 public:
  IpAddress() = default;
  // "192.0.2.1", "2001:db8::1"; the error names the text.
  [[nodiscard]] static Result<IpAddress> parse(std::string_view text);
  [[nodiscard]] static IpAddress v4(uint32_t host_order);

  [[nodiscard]] Family family() const { return family_; }
  [[nodiscard]] bool is_v4() const { return family_ == Family::V4; }
  // 4 or 16 bytes, network order.
  [[nodiscard]] const uint8_t* data() const { return bytes_.data(); }
  [[nodiscard]] size_t size() const { return is_v4() ? 4 : 16; }
  [[nodiscard]] std::string to_string() const;
  // The address `n` above this one (wraps within the family's width; callers bound n).
  [[nodiscard]] IpAddress plus(uint64_t n) const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  friend class Subnet;
  Family family_ = Family::V4;
  std::array<uint8_t, 16> bytes_{};
};

class Subnet {
 public:
  Subnet() = default;
  // "10.88.0.0/16", "fd00:1::/64". Host bits must be zero ("10.88.0.1/16" is refused with the
  // subnet it probably meant), as docker and podman refuse it.
  [[nodiscard]] static Result<Subnet> parse(std::string_view text);
  [[nodiscard]] static Result<Subnet> make(IpAddress base, unsigned prefix);

  [[nodiscard]] const IpAddress& base() const { return base_; }
  [[nodiscard]] unsigned prefix() const { return prefix_; }
  [[nodiscard]] Family family() const { return base_.family(); }
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] bool contains(const IpAddress& a) const;
  [[nodiscard]] bool overlaps(const Subnet& other) const;
  // Addresses a container can get: all but the network address and (IPv4) the broadcast address,
  // capped at 2^32 for IPv6 (no allocator walks further).
  [[nodiscard]] uint64_t host_count() const;
  // The n-th usable address, n in [1, host_count()]: n = 1 is the gateway by convention.
  [[nodiscard]] IpAddress host(uint64_t n) const;
  // n such that host(n) == a, for an `a` this subnet contains (the low 64 bits of a - base).
  [[nodiscard]] uint64_t offset_of(const IpAddress& a) const;
  // The subnet `n` blocks of this size above this one ("10.88.0.0/24".next(1) = 10.88.1.0/24).
  [[nodiscard]] Subnet next(uint64_t n) const;

  auto operator<=>(const Subnet&) const = default;

 private:
  IpAddress base_;
  unsigned prefix_ = 0;
};

}  // namespace kiste::network
