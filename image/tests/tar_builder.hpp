#pragma once
// Test-only: builds (hostile) tar streams in memory with libarchive's writer, so no binary
// fixture is ever checked in.

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <kiste/image/blob_io.hpp>

namespace kiste::image::testing {

class StringSink final : public ByteSink {
 public:
  Status write(std::string_view b) override {
    data.append(b);
    return {};
  }
  std::string data;
};

struct Meta {
  unsigned mode = 0644;
  int64_t uid = 0, gid = 0;
  int64_t mtime = 1'600'000'000;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class TarBuilder {
 public:
  TarBuilder() {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    archive_write_set_bytes_in_last_block(a_, 1);
    archive_write_open(a_, this, nullptr, &TarBuilder::write_cb, nullptr);
  }
  ~TarBuilder() {
    if (a_ != nullptr) archive_write_free(a_);
  }
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

  TarBuilder& file(std::string_view path, std::string_view content, Meta m = {}) {
    return add(path, AE_IFREG, m, content, nullptr, nullptr, 0, static_cast<int64_t>(content.size()));
  }
  TarBuilder& dir(std::string_view path, Meta m = {.mode = 0755}) {
    return add(path, AE_IFDIR, m, {}, nullptr, nullptr, 0, 0);
  }
  TarBuilder& symlink(std::string_view path, std::string_view target, Meta m = {.mode = 0777}) {
    std::string t(target);
    return add(path, AE_IFLNK, m, {}, t.c_str(), nullptr, 0, 0);
  }
  TarBuilder& hardlink(std::string_view path, std::string_view target, Meta m = {}) {
    std::string t(target);
    return add(path, AE_IFREG, m, {}, nullptr, t.c_str(), 0, 0);
  }
  TarBuilder& device(std::string_view path, bool block, unsigned maj, unsigned min, Meta m = {}) {
    return add(path, block ? AE_IFBLK : AE_IFCHR, m, {}, nullptr, nullptr,
               makedev_(maj, min), 0);
  }
  TarBuilder& fifo(std::string_view path, Meta m = {}) {
    return add(path, AE_IFIFO, m, {}, nullptr, nullptr, 0, 0);
  }

  // Finishes the archive and returns the tar bytes.
  std::string finish() {
    archive_write_close(a_);
    archive_write_free(a_);
    a_ = nullptr;
    return std::move(out_);
  }

 private:
  static dev_t makedev_(unsigned maj, unsigned min) {
    return (static_cast<dev_t>(maj) << 8) | min;  // archive_entry_set_rdevmajor below instead
  }
  TarBuilder& add(std::string_view path, unsigned type, const Meta& m, std::string_view content,
                  const char* symlink, const char* hardlink, dev_t rdev, int64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_copy_pathname(e, std::string(path).c_str());
    if (hardlink != nullptr) {
      archive_entry_copy_hardlink(e, hardlink);
    } else {
      archive_entry_set_filetype(e, type);
    }
    archive_entry_set_perm(e, m.mode);
    archive_entry_set_uid(e, m.uid);
    archive_entry_set_gid(e, m.gid);
    archive_entry_set_mtime(e, m.mtime, 0);
    if (symlink != nullptr) archive_entry_copy_symlink(e, symlink);
    if (type == AE_IFCHR || type == AE_IFBLK) {
      archive_entry_set_rdevmajor(e, static_cast<dev_t>(rdev >> 8));
      archive_entry_set_rdevminor(e, static_cast<dev_t>(rdev & 0xff));
    }
    for (const auto& [k, v] : m.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    archive_entry_set_size(e, size);
    archive_write_header(a_, e);
    if (!content.empty()) archive_write_data(a_, content.data(), content.size());
    archive_entry_free(e);
    return *this;
  }
  static la_ssize_t write_cb(archive*, void* self, const void* buf, size_t n) {
    static_cast<TarBuilder*>(self)->out_.append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  archive* a_ = nullptr;
  std::string out_;
};

// A raw 512-byte ustar header, written by hand so a test can claim anything (sizes in base-256
// when they do not fit in octal).
inline std::string raw_header(std::string_view name, char type, uint64_t size) {
  auto octal = [](char* dst, size_t width, uint64_t v) {
    std::string s = fmt::format("{:0{}o}", v, width - 1);
    std::memcpy(dst, s.data(), width - 1);
    dst[width - 1] = '\0';
  };
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
  octal(h.data() + 100, 8, 0644);
  octal(h.data() + 108, 8, 0);
  octal(h.data() + 116, 8, 0);
  if (size < (uint64_t{1} << 33)) {
    octal(h.data() + 124, 12, size);
  } else {
    h[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
  }
  octal(h.data() + 136, 12, 0);
  h[156] = type;
  std::memcpy(h.data() + 257, "ustar\0" "00", 8);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  octal(h.data() + 148, 7, sum);
  return h;
}

}  // namespace kiste::image::testing
