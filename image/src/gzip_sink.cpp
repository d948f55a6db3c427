#include "gzip_sink.hpp"

namespace kiste::image::detail {

GzipSink::GzipSink(ByteSink& out, int level) : out_(out), buf_(1 << 18, '\0') {
  // windowBits 15 + 16: gzip wrapper; zlib writes mtime 0 and no name unless told otherwise.
  KISTE_CHECK(deflateInit2(&zs_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
}

GzipSink::~GzipSink() { deflateEnd(&zs_); }

Status GzipSink::pump(int flush) {
  do {
    zs_.next_out = reinterpret_cast<Bytef*>(buf_.data());
    zs_.avail_out = static_cast<uInt>(buf_.size());
    int rc = deflate(&zs_, flush);
    if (rc == Z_STREAM_ERROR) return fail(Errc::System, "gzip: stream error");
    size_t have = buf_.size() - zs_.avail_out;
    if (have > 0) KISTE_TRY(out_.write(std::string_view(buf_.data(), have)));
    if (flush == Z_FINISH && rc == Z_STREAM_END) return {};
  } while (zs_.avail_out == 0 || (flush == Z_FINISH));
  return {};
}

Status GzipSink::write(std::string_view bytes) {
  KISTE_CHECK(!finished_);
  while (!bytes.empty()) {
    size_t chunk = std::min<size_t>(bytes.size(), 1u << 30);
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    zs_.avail_in = static_cast<uInt>(chunk);
    KISTE_TRY(pump(Z_NO_FLUSH));
    bytes.remove_prefix(chunk);
  }
  return {};
}

Status GzipSink::finish() {
  KISTE_CHECK(!finished_);
  finished_ = true;
  zs_.next_in = nullptr;
  zs_.avail_in = 0;
  return pump(Z_FINISH);
}

}  // namespace kiste::image::detail
