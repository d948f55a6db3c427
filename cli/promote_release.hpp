#pragma once
// `kiste promote` for whole releases (--release FILE, several SRC DEST pairs, --dry-run,
// --release-index) and the trust settings it shares with the single-image promote. Wiring only:
// the phases are registry::Release, the policy trust::Policy.
#include <functional>
#include <string>
#include <vector>

#include <kiste/image/reference.hpp>
#include <kiste/registry/client.hpp>

#include "globals.hpp"
#include "rebuild_gate.hpp"
#include "registry_flags.hpp"

namespace kiste::cli {

struct PromoteTrust {
  std::string sign_by;            // re-sign for the destination identity with this key
  std::string sign_identity;      // instead of the destination reference
  std::string require_signed_by;  // the source must carry a signature by this public key
};

// The source gate of a promotion: the policy (--policy, $KISTE_POLICY, policy.json) for the image
// under its destination name, --require-signed-by under its source name. Empty when neither
// applies. Settled before a byte moves.
using PromoteGate = std::function<Status(registry::Client& src_client, const image::Reference& src,
                                         const image::Reference& dst, const image::Digest& digest)>;
[[nodiscard]] Result<PromoteGate> promote_gate(const RegistryFlags& rf, const PromoteTrust& pt);

struct ReleaseFlags {
  std::string file;        // --release FILE
  bool dry_run = false;    // --dry-run
  std::string index;       // --release-index REF
  std::string expect;      // --expect-digest (one image only)
  bool no_signatures = false;
  bool quiet = false;
  int jobs = 8;
};

// Whether the command line asks for the release path rather than the single-image one.
[[nodiscard]] bool wants_release(const ReleaseFlags& f, const std::vector<std::string>& args);

// With --require-rebuild, every image is rebuilt (one after the other, after every signature
// check and before any blob moves) from its own `context` in the release file (relative paths
// from the file's directory), else from --context; the release file's `containerfile` and
// `buildArgs` go over -f and --build-arg.
[[nodiscard]] Status do_promote_release(const Globals& g, const RegistryFlags& rf,
                                        const ReleaseFlags& f, const PromoteTrust& pt,
                                        const RebuildFlags& rb,
                                        const std::vector<std::string>& args);

}  // namespace kiste::cli
