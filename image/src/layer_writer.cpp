#include <kiste/image/layer_writer.hpp>

#include <fcntl.h>

#include <charconv>
#include <cstdlib>

#include <kiste/base/sys.hpp>

#include "tar_stream.hpp"

namespace kiste::image {

Result<std::optional<int64_t>> source_date_epoch_from_env() {
  const char* v = std::getenv("SOURCE_DATE_EPOCH");
  if (v == nullptr || *v == '\0') return std::optional<int64_t>{};
  std::string_view s(v);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{} || p != s.data() + s.size() || out < 0) {
    return failf(Errc::InvalidArgument, "SOURCE_DATE_EPOCH {}: not a non-negative integer",
                 quote(s));
  }
  return std::optional<int64_t>{out};
}

Result<LayerResult> write_layer(const std::filesystem::path& dir, ByteSink& out,
                                const PackOptions& options) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd root, sys::open(dir, O_RDONLY | O_DIRECTORY));
  KISTE_ASSIGN_OR_RETURN(auto tar, detail::TarStream::open(out, options));
  auto r = detail::walk_tree(root.get(), *tar, {});
  if (!r) return std::unexpected(std::move(r).error().with_context(fmt::format("pack {}", quote(dir.native()))));
  return with_context(tar->finish(), fmt::format("pack {}", quote(dir.native())));
}

}  // namespace kiste::image
