#pragma once
// `kiste promote --require-rebuild`: where the builder (a scratch-store rebuild from the source's
// recorded provenance) meets the registry (the source image and its attestations). The only
// place that sees both, as trust_gate.cpp is for signatures.
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/builder/attestation.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/registry/client.hpp>

#include "globals.hpp"
#include "registry_flags.hpp"

namespace kiste::cli {

struct RebuildFlags {
  bool require = false;            // --require-rebuild
  std::string context;             // --context DIR
  std::string file;                // -f FILE (default: the provenance's, in the context)
  std::vector<std::string> build_args;  // --build-arg K=V (over the provenance's)
  bool attest = false;             // --attest-rebuild
};

// What a rebuild that matched used: for the rebuilder attestation.
struct RebuildOutcome {
  builder::ProvenanceInputs inputs;          // as the rebuild recorded them
  std::optional<image::Digest> provenance;   // the source's provenance artifact, if it had one
};

// Rebuilds `src` (whose manifest digest is `digest`, read through `sc`) from the context in a
// scratch store under the store's tmp/ (removed afterwards, also on failure), with the build
// args, SOURCE_DATE_EPOCH, target, platform and base image digests of the source's kiste
// provenance when it has one. Refuses unless the rebuilt manifest digest is `digest`, naming the
// first layer (index and both digests) and the first file in it that differs.
[[nodiscard]] Result<RebuildOutcome> check_rebuild(const Globals& g, const RegistryFlags& rf,
                                   const RebuildFlags& f, registry::Client& sc,
                                   const image::Reference& src, const image::Digest& digest);

// `--attest-rebuild`: the rebuilder's statement about `digest`, pushed to `dest`'s repository as
// a referrer of the promoted image.
[[nodiscard]] Status attest_rebuild(registry::Client& dc, const image::Reference& dest,
                                    const image::Digest& digest, const RebuildOutcome& outcome);

}  // namespace kiste::cli
