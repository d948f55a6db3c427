#include <kiste/network/address.hpp>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace kiste::network {

namespace {

// The bit `i` (0 = most significant) of an address.
bool bit(const IpAddress& a, unsigned i) { return (a.data()[i / 8] >> (7 - i % 8)) & 1; }

}  // namespace

Result<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress a;
  if (::inet_pton(AF_INET, s.c_str(), a.bytes_.data()) == 1) {
    a.family_ = Family::V4;
    return a;
  }
  if (::inet_pton(AF_INET6, s.c_str(), a.bytes_.data()) == 1) {
    a.family_ = Family::V6;
    return a;
  }
  return failf(Errc::InvalidArgument, "{} is not an IPv4 or IPv6 address", quote(text));
}

IpAddress IpAddress::v4(uint32_t host_order) {
  IpAddress a;
  uint32_t n = htonl(host_order);
  std::memcpy(a.bytes_.data(), &n, 4);
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

IpAddress IpAddress::plus(uint64_t n) const {
  IpAddress r = *this;
  for (size_t i = size(); i-- > 0 && n != 0;) {
    uint64_t sum = r.bytes_[i] + (n & 0xff);
    r.bytes_[i] = static_cast<uint8_t>(sum);
    n = (n >> 8) + (sum >> 8);
  }
  return r;
}

Result<Subnet> Subnet::make(IpAddress base, unsigned prefix) {
  unsigned width = base.is_v4() ? 32 : 128;
  if (prefix > width) {
    return failf(Errc::InvalidArgument, "prefix /{} is longer than {} bits", prefix, width);
  }
  for (unsigned i = prefix; i < width; ++i) {
    if (bit(base, i)) {
      IpAddress masked = base;
      for (unsigned j = prefix; j < width; ++j) {
        masked.bytes_[j / 8] &= static_cast<uint8_t>(~(1u << (7 - j % 8)));
      }
      return failf(Errc::InvalidArgument, "{}/{} has host bits set (did you mean {}/{}?)",
                   base.to_string(), prefix, masked.to_string(), prefix);
    }
  }
  Subnet s;
  s.base_ = base;
  s.prefix_ = prefix;
  return s;
}

Result<Subnet> Subnet::parse(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return failf(Errc::InvalidArgument, "subnet {} has no /prefix (e.g. 10.89.0.0/24)", quote(text));
  }
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) {
    return failf(Errc::InvalidArgument, "subnet {}: {}", quote(text), addr.error().message);
  }
  std::string_view p = text.substr(slash + 1);
  unsigned prefix = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (ec != std::errc{} || end != p.data() + p.size() || p.empty()) {
    return failf(Errc::InvalidArgument, "subnet {}: {} is not a prefix length", quote(text), quote(p));
  }
  auto s = make(*addr, prefix);
  if (!s) return failf(Errc::InvalidArgument, "subnet {}: {}", quote(text), s.error().message);
  return s;
}

std::string Subnet::to_string() const { return fmt::format("{}/{}", base_.to_string(), prefix_); }

bool Subnet::contains(const IpAddress& a) const {
  if (a.family() != family()) return false;
  for (unsigned i = 0; i < prefix_; ++i) {
    if (bit(a, i) != bit(base_, i)) return false;
  }
  return true;
}

bool Subnet::overlaps(const Subnet& other) const {
  if (other.family() != family()) return false;
  return prefix_ <= other.prefix_ ? contains(other.base_) : other.contains(base_);
}

uint64_t Subnet::host_count() const {
  unsigned host_bits = (base_.is_v4() ? 32 : 128) - prefix_;
  if (host_bits >= 32) host_bits = 32;
  uint64_t all = uint64_t{1} << host_bits;
  if (base_.is_v4()) return all > 2 ? all - 2 : 0;  // network and broadcast
  return all > 1 ? all - 1 : 0;                      // the subnet-router anycast address
}

IpAddress Subnet::host(uint64_t n) const { return base_.plus(n); }

uint64_t Subnet::offset_of(const IpAddress& a) const {
  uint64_t hi = 0;
  uint64_t lo = 0;
  size_t from = a.size() > 8 ? a.size() - 8 : 0;
  for (size_t i = from; i < a.size(); ++i) {
    hi = (hi << 8) | a.data()[i];
    lo = (lo << 8) | base_.data()[i];
  }
  return hi - lo;
}

Subnet Subnet::next(uint64_t n) const {
  // Adds n << (width - prefix) to the base, byte by byte from the low end.
  unsigned shift = (base_.is_v4() ? 32 : 128) - prefix_;
  Subnet s = *this;
  for (uint64_t i = 0; i < n; ++i) {
    size_t j = s.base_.size() - shift / 8;  // one past the byte the unit lands in
    uint32_t carry = 1u << (shift % 8);
    while (j-- > 0 && carry != 0) {
      uint32_t sum = s.base_.bytes_[j] + carry;
      s.base_.bytes_[j] = static_cast<uint8_t>(sum);
      carry = sum >> 8;
    }
  }
  return s;
}

}  // namespace kiste::network
