#!/bin/bash
# Trust benchmark (not a test): verify + promote of one signed image under a signature policy,
# kiste vs skopeo, on a loopback docker-registry.
#   kiste:  promote --policy P REG/staging/app:1 REG/prod/<new>:1   (checks the signature for the
#           destination name, mounts the blobs)
#   skopeo: skopeo --policy P copy docker://REG/staging/app:1 docker://REG/prod/<new>:1 (checks
#           the signature for the source name, copies the blobs and the signature)
# Both under one policy.json: default reject; REG/staging and REG/prod need a GPG signature by the
# same key (prod's accepting the identity staging's signature claims: exactRepository, since every
# run promotes into a new repository).
# Usage: bench/trust.sh (or bench/run); KISTE=path BENCH_RUNS=n to override. Leaves nothing behind.
source "$(dirname "$0")/lib.sh"

for t in docker-registry skopeo gpg gpgv gpgconf hyperfine jq curl python3 /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done
[ -x "$KISTE" ] || { echo "bench: no kiste binary at $KISTE" >&2; exit 1; }

D=$(mktemp -d /tmp/kiste-bench-trust.XXXXXX)
REG_PID=
cleanup() {
  [ -d "$D/gnupg" ] && gpgconf --homedir "$D/gnupg" --kill all 2>/dev/null
  bench_stop_registry
  rm -rf "$D"
}
trap cleanup EXIT

bench_start_registry "$D"
# A 5-layer image of incompressible bytes as an OCI layout.
bench_random_layout "$D" app 8 4 2 1 1
# Debian's skopeo 1.9.3 is built with sigstore disabled, so the one kind of signature both tools
# check here is GPG simple signing: skopeo --sign-by writes it to file:// lookaside storage.
export GNUPGHOME=$D/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg --batch --passphrase '' --quick-gen-key "kiste bench <bench@example.invalid>" ed25519 sign never 2>/dev/null
FPR=$(gpg --list-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')
gpg --export "$FPR" >"$D/k.gpg"
mkdir -p "$D/registries.d"
printf 'docker:\n  %s:\n    lookaside: file://%s\n    lookaside-staging: file://%s\n' "$H" "$D/look" "$D/look" >"$D/registries.d/bench.yaml"
skopeo --insecure-policy --registries.d "$D/registries.d" copy -q --preserve-digests --dest-tls-verify=false \
  --sign-by "$FPR" "oci:$D/src-oci:app" "docker://$H/staging/app:1"
cat >"$D/policy.json" <<POLICY
{"default": [{"type": "reject"}],
 "transports": {"docker": {
   "$H/staging": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "$D/k.gpg"}],
   "$H/prod": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "$D/k.gpg",
                "signedIdentity": {"type": "exactRepository", "dockerRepository": "$H/staging/app"}}]}}}
POLICY
# Both sides must accept before anything is timed.
"$KISTE" promote -q --policy "$D/policy.json" --registries.d "$D/registries.d" "$H/staging/app:1" "$H/prod/check:1" >/dev/null
skopeo --policy "$D/policy.json" --registries.d "$D/registries.d" copy -q --src-tls-verify=false \
  --dest-tls-verify=false "docker://$H/staging/app:1" "docker://$H/prod/check-skopeo:1"

bench_compare trust-verify-promote \
  "$KISTE promote -q --policy $D/policy.json --registries.d $D/registries.d $H/staging/app:1 $H/prod/k\$(date +%s%N):1" \
  skopeo \
  "skopeo --policy $D/policy.json --registries.d $D/registries.d copy -q --src-tls-verify=false --dest-tls-verify=false docker://$H/staging/app:1 docker://$H/prod/s\$(date +%s%N):1" \
  "" "one GPG-signed 16 MB, 5-layer image (skopeo --sign-by, file lookaside), policy signedBy; a new prod repository per run; kiste checks with gpgv, skopeo with gpgme (Debian's skopeo has sigstore disabled)"
