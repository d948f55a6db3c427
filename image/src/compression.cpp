#include <kiste/image/compression.hpp>

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace kiste::image {

namespace {

constexpr size_t kInBuf = 128 * 1024;
constexpr size_t kOutBuf = 128 * 1024;
// 1 MiB zstd jobs: ~20 MiB peak RSS with 2 workers on a 1 GiB layer (2 MiB: 28 MiB, 4: 43).
constexpr int kZstdJobSize = 1 << 20;

class PassThrough final : public BlobReader {
 public:
  explicit PassThrough(BlobReader& in) : in_(in) {}
  Result<size_t> read(void* buf, size_t len) override { return in_.read(buf, len); }

 private:
  BlobReader& in_;
};

class GzipReader final : public BlobReader {
 public:
  explicit GzipReader(BlobReader& in) : in_(in), inbuf_(kInBuf) {}
  ~GzipReader() override {
    if (initialised_) inflateEnd(&zs_);
  }

  Result<size_t> read(void* buf, size_t len) override {
    if (len == 0) return size_t{0};
    if (!initialised_) {
      zs_ = {};
      if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) {
        return fail(Errc::System, "gzip: inflateInit2 failed");
      }
      initialised_ = true;
    }
    const uInt want = static_cast<uInt>(std::min<size_t>(len, 1u << 30));
    zs_.next_out = static_cast<Bytef*>(buf);
    zs_.avail_out = want;
    while (zs_.avail_out == want) {
      if (zs_.avail_in == 0 && !eof_) KISTE_TRY(fill());
      if (member_done_) {
        if (zs_.avail_in == 0) return size_t{0};  // clean end after the last member
        // Another member follows (concatenated gzip), or trailing garbage (fails below).
        if (inflateReset(&zs_) != Z_OK) return fail(Errc::System, "gzip: inflateReset failed");
        member_done_ = false;
      }
      if (zs_.avail_in == 0) return fail(Errc::Corrupt, "gzip: stream truncated");
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_done_ = true;
        continue;
      }
      if (rc == Z_BUF_ERROR) continue;  // needs more input
      if (rc != Z_OK) {
        return failf(Errc::Corrupt, "gzip: {}", zs_.msg ? zs_.msg : "invalid compressed data");
      }
    }
    return size_t{want - zs_.avail_out};
  }

 private:
  Status fill() {
    KISTE_ASSIGN_OR_RETURN(size_t n, in_.read(inbuf_.data(), inbuf_.size()));
    if (n == 0) eof_ = true;
    zs_.next_in = inbuf_.data();
    zs_.avail_in = static_cast<uInt>(n);
    return {};
  }

  BlobReader& in_;
  std::vector<Bytef> inbuf_;
  z_stream zs_{};
  bool initialised_ = false;
  bool eof_ = false;
  bool member_done_ = false;
};

class ZstdReader final : public BlobReader {
 public:
  explicit ZstdReader(BlobReader& in) : in_(in), inbuf_(ZSTD_DStreamInSize()) {
    ds_ = ZSTD_createDStream();
    // Bound the window (and so the memory) a hostile frame may ask for: 128 MiB.
    ZSTD_DCtx_setParameter(ds_, ZSTD_d_windowLogMax, 27);
  }
  ~ZstdReader() override { ZSTD_freeDStream(ds_); }

  Result<size_t> read(void* buf, size_t len) override {
    if (ds_ == nullptr) return fail(Errc::System, "zstd: cannot allocate a decoder");
    ZSTD_outBuffer out{buf, len, 0};
    while (out.pos == 0 && len > 0) {
      if (in_pos_ == in_size_ && !eof_) {
        KISTE_ASSIGN_OR_RETURN(size_t n, in_.read(inbuf_.data(), inbuf_.size()));
        in_size_ = n;
        in_pos_ = 0;
        if (n == 0) eof_ = true;
      }
      // Called even without new input: the decoder may still hold output.
      ZSTD_inBuffer in{inbuf_.data(), in_size_, in_pos_};
      size_t out_before = out.pos;
      size_t rc = ZSTD_decompressStream(ds_, &out, &in);
      bool progress = in.pos != in_pos_ || out.pos != out_before;
      in_pos_ = in.pos;
      if (ZSTD_isError(rc)) return failf(Errc::Corrupt, "zstd: {}", ZSTD_getErrorName(rc));
      if (progress) frame_open_ = rc != 0;
      if (eof_ && out.pos == 0 && in_pos_ == in_size_) {
        if (frame_open_ || !saw_frame_) return fail(Errc::Corrupt, "zstd: stream truncated");
        return size_t{0};
      }
      saw_frame_ = true;
    }
    return out.pos;
  }

 private:
  BlobReader& in_;
  std::vector<char> inbuf_;
  size_t in_size_ = 0;
  size_t in_pos_ = 0;
  ZSTD_DStream* ds_ = nullptr;
  bool eof_ = false;
  bool frame_open_ = false;
  bool saw_frame_ = false;
};

class NoneSink final : public CompressingSink {
 public:
  explicit NoneSink(ByteSink& out) : out_(out) {}
  Status write(std::string_view bytes) override { return out_.write(bytes); }
  Status finish() override { return {}; }

 private:
  ByteSink& out_;
};

// pigz-style gzip: the stream is cut into fixed 128 KiB blocks; each block is deflated on its own
// with the previous 32 KiB of input as its dictionary and ends with a sync flush (the last one
// with Z_FINISH), so the raw deflate outputs concatenate into one valid stream. Blocks of a batch
// compress in parallel; the output depends on the level only, never on the thread count.
class GzipSink final : public CompressingSink {
 public:
  GzipSink(ByteSink& out, int level, int threads)
      : out_(out), level_(level), threads_(std::max(threads, 1)) {
    cur_.reserve(kBlock);
  }

  Status write(std::string_view bytes) override {
    while (!bytes.empty()) {
      size_t n = std::min(bytes.size(), kBlock - cur_.size());
      cur_.append(bytes.substr(0, n));
      bytes.remove_prefix(n);
      if (cur_.size() == kBlock) {
        push_block();
        if (batch_.size() >= static_cast<size_t>(threads_) * 4) KISTE_TRY(flush_batch());
      }
    }
    return {};
  }

  Status finish() override {
    push_block();
    batch_.back().last = true;
    KISTE_TRY(flush_batch());
    unsigned char trailer[8];
    for (int i = 0; i < 4; ++i) trailer[i] = static_cast<unsigned char>((crc_ >> (8 * i)) & 0xff);
    for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<unsigned char>((isize_ >> (8 * i)) & 0xff);
    return out_.write(std::string_view(reinterpret_cast<char*>(trailer), sizeof trailer));
  }

 private:
  static constexpr size_t kBlock = 128 * 1024;
  static constexpr size_t kDict = 32 * 1024;

  struct Block {
    std::string in;
    std::string dict;
    std::string out;
    uLong crc = 0;
    bool last = false;
    bool ok = true;
  };

  void push_block() {
    Block b;
    b.dict = tail_;
    b.in = std::move(cur_);
    tail_ = b.in.size() >= kDict ? b.in.substr(b.in.size() - kDict) : tail_ + b.in;
    if (tail_.size() > kDict) tail_.erase(0, tail_.size() - kDict);
    batch_.push_back(std::move(b));
    cur_.clear();
    cur_.reserve(kBlock);
  }

  void compress(Block& b) const {
    z_stream zs{};
    if (deflateInit2(&zs, level_, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      b.ok = false;
      return;
    }
    if (!b.dict.empty()) {
      deflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(b.dict.data()),
                           static_cast<uInt>(b.dict.size()));
    }
    b.out.resize(deflateBound(&zs, b.in.size()) + 64);
    zs.next_in = reinterpret_cast<Bytef*>(b.in.data());
    zs.avail_in = static_cast<uInt>(b.in.size());
    zs.next_out = reinterpret_cast<Bytef*>(b.out.data());
    zs.avail_out = static_cast<uInt>(b.out.size());
    int rc = deflate(&zs, b.last ? Z_FINISH : Z_SYNC_FLUSH);
    b.ok = b.last ? rc == Z_STREAM_END : (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0);
    b.out.resize(b.out.size() - zs.avail_out);
    deflateEnd(&zs);
    b.crc = crc32(0L, reinterpret_cast<const Bytef*>(b.in.data()), static_cast<uInt>(b.in.size()));
  }

  Status flush_batch() {
    if (batch_.size() == 1 || threads_ == 1) {
      for (auto& b : batch_) compress(b);
    } else {
      std::atomic<size_t> next{0};
      auto work = [&] {
        for (size_t i = next++; i < batch_.size(); i = next++) compress(batch_[i]);
      };
      std::vector<std::thread> pool;
      for (int t = 1; t < threads_; ++t) pool.emplace_back(work);
      work();
      for (auto& t : pool) t.join();
    }
    if (!header_written_) {
      unsigned char xfl = level_ == 9 ? 2 : level_ == 1 ? 4 : 0;
      const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3};  // OS = Unix
      KISTE_TRY(out_.write(std::string_view(reinterpret_cast<const char*>(header), sizeof header)));
      header_written_ = true;
    }
    for (auto& b : batch_) {
      if (!b.ok) return fail(Errc::System, "gzip: deflate failed");
      KISTE_TRY(out_.write(b.out));
      crc_ = crc32_combine(crc_, b.crc, static_cast<z_off_t>(b.in.size()));
      isize_ += static_cast<uint32_t>(b.in.size());
    }
    batch_.clear();
    return {};
  }

  ByteSink& out_;
  int level_;
  int threads_;
  std::string cur_;
  std::string tail_;
  std::vector<Block> batch_;
  uLong crc_ = 0;
  uint32_t isize_ = 0;
  bool header_written_ = false;
};

class ZstdSink final : public CompressingSink {
 public:
  ZstdSink(ByteSink& out, int level, int threads) : out_(out), outbuf_(ZSTD_CStreamOutSize()) {
    cs_ = ZSTD_createCCtx();
    if (cs_ == nullptr) return;
    ZSTD_CCtx_setParameter(cs_, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cs_, ZSTD_c_checksumFlag, 1);
    // Always multi-threaded mode: its output is the same for any worker count >= 1.
    size_t rc = ZSTD_CCtx_setParameter(cs_, ZSTD_c_nbWorkers, std::max(threads, 1));
    ok_ = !ZSTD_isError(rc);
    // Fixed, small jobs: bounded memory (each worker holds a job's input and output), and the
    // output still does not depend on the worker count.
    ZSTD_CCtx_setParameter(cs_, ZSTD_c_jobSize, kZstdJobSize);
  }
  ~ZstdSink() override { ZSTD_freeCCtx(cs_); }
  [[nodiscard]] bool ok() const { return ok_; }

  Status write(std::string_view bytes) override { return pump(bytes, ZSTD_e_continue); }
  Status finish() override { return pump({}, ZSTD_e_end); }

 private:
  Status pump(std::string_view bytes, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{outbuf_.data(), outbuf_.size(), 0};
      size_t rem = ZSTD_compressStream2(cs_, &out, &in, mode);
      if (ZSTD_isError(rem)) return failf(Errc::System, "zstd: {}", ZSTD_getErrorName(rem));
      if (out.pos > 0) KISTE_TRY(out_.write(std::string_view(outbuf_.data(), out.pos)));
      if (mode == ZSTD_e_end ? rem == 0 : in.pos == in.size) return {};
    }
  }

  ByteSink& out_;
  std::vector<char> outbuf_;
  ZSTD_CCtx* cs_ = nullptr;
  bool ok_ = false;
};

// Workers for compression: as asked, else one per core up to 4 (bounds memory on big hosts).
int default_threads(int asked) {
  if (asked > 0) return asked;
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
}

}  // namespace

std::unique_ptr<BlobReader> make_decompressor(BlobReader& compressed, media_type::Compression c) {
  switch (c) {
    case media_type::Compression::Gzip:
      return std::make_unique<GzipReader>(compressed);
    case media_type::Compression::Zstd:
      return std::make_unique<ZstdReader>(compressed);
    case media_type::Compression::None:
      break;
  }
  return std::make_unique<PassThrough>(compressed);
}

Result<std::unique_ptr<CompressingSink>> CompressingSink::create(ByteSink& out,
                                                                 const CompressOptions& o) {
  switch (o.compression) {
    case media_type::Compression::Gzip: {
      int level = o.level == 0 ? 6 : o.level;
      if (level < 1 || level > 9) return failf(Errc::InvalidArgument, "gzip level {}: not 1..9", level);
      return std::make_unique<GzipSink>(out, level, default_threads(o.threads));
    }
    case media_type::Compression::Zstd: {
      int level = o.level == 0 ? 3 : o.level;
      if (level < 1 || level > 19) return failf(Errc::InvalidArgument, "zstd level {}: not 1..19", level);
      auto s = std::make_unique<ZstdSink>(out, level, default_threads(o.threads));
      if (!s->ok()) return fail(Errc::Unsupported, "zstd: multi-threaded compression unavailable");
      return s;
    }
    case media_type::Compression::None:
      break;
  }
  return std::make_unique<NoneSink>(out);
}

}  // namespace kiste::image
