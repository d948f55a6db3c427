#pragma once
// gzip compression into a ByteSink with a fixed header (no name, mtime 0), so the same bytes
// give the same blob on every machine.
#include <zlib.h>

#include <string>

#include <kiste/image/blob_io.hpp>

namespace kiste::image::detail {

class GzipSink final : public ByteSink {
 public:
  explicit GzipSink(ByteSink& out, int level = Z_DEFAULT_COMPRESSION);
  ~GzipSink() override;
  GzipSink(const GzipSink&) = delete;
  GzipSink& operator=(const GzipSink&) = delete;
  [[nodiscard]] Status write(std::string_view bytes) override;
  // Flushes the trailer; no writes afterwards.
  [[nodiscard]] Status finish();

 private:
  [[nodiscard]] Status pump(int flush);
  ByteSink& out_;
  z_stream zs_{};
  std::string buf_;
  bool finished_ = false;
};

}  // namespace kiste::image::detail
