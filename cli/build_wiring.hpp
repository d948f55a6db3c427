#pragma once
// What `kiste build` and `promote --require-rebuild` (its scratch-store rebuild) share: base
// images from a store, else pulled through the registry client (the builder never links the
// registry), and RUN output kept off stdout.
#include <kiste/builder/builder.hpp>
#include <kiste/image/store.hpp>

#include "globals.hpp"
#include "registry_flags.hpp"

namespace kiste::cli {

// FROM images come from the store, else are pulled (like docker build) into the store of `g`.
class PullingImageProvider final : public builder::BaseImageProvider {
 public:
  PullingImageProvider(const Globals& g, const RegistryFlags& rf, const image::Store& store)
      : g_(g), rf_(rf), local_(store) {}
  Result<image::ManifestBlob> resolve(const image::Reference& ref,
                                      const image::Platform& platform) override;

 private:
  const Globals& g_;
  const RegistryFlags& rf_;
  builder::StoreImageProvider local_;
};

// RUN output goes to stderr with the progress (stdout carries only the image digest), or nowhere
// with -q: fds 1 and 2 are pointed elsewhere while a step runs, then restored.
class OutputRedirect final : public builder::RunExecutor {
 public:
  OutputRedirect(builder::RunExecutor& inner, bool quiet) : inner_(inner), quiet_(quiet) {}
  Result<int> run(const builder::RunRequest& req) override;

 private:
  builder::RunExecutor& inner_;
  bool quiet_;
};

}  // namespace kiste::cli
