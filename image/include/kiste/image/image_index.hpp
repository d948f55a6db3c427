#pragma once
// Image indexes kiste assembles in the store: `kiste manifest create|add|remove` and the index of
// a multi-platform build. Each entry is a platform manifest already in the store, described with
// the platform its config names, so the same images give the same index bytes and digest.
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/descriptor.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/store.hpp>

namespace kiste::image {

// The index entry for the stored manifest `manifest`: its media type, digest and size, and the
// platform (os, architecture, variant) of its config. An index is refused: entries are images.
[[nodiscard]] Result<Descriptor> index_entry(const Store& store, const Descriptor& manifest);

// The entries `entry` brings to a list: itself when it names an image, or each platform image of
// the index it names that is in the store (what `manifest add` of a list adds).
[[nodiscard]] Result<std::vector<Descriptor>> index_entries_of(const Store& store,
                                                               const StoreEntry& entry);

// `index` with `entry` added: an entry with the same digest is replaced in place, any other is
// appended (order is the order of adding, as buildah keeps it).
[[nodiscard]] Index with_entry(Index index, const Descriptor& entry);
// `index` without the entry whose digest is `digest`; NotFound when it has none.
[[nodiscard]] Result<Index> without_entry(Index index, const Digest& digest);

// Writes `index` as an OCI image index blob into the store; its descriptor.
[[nodiscard]] Result<Descriptor> put_index(const Store& store, Index index);

// The index `name` names in the store (InvalidArgument when it names a single image).
[[nodiscard]] Result<ManifestBlob> read_index(const Store& store, const StoreEntry& entry);

}  // namespace kiste::image
