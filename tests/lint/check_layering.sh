#!/usr/bin/env bash
# Fails when a part reaches across the layering of DESIGN.md:
#   cli -> builder -> runtime -> image -> base;  builder -> image;  cli -> registry -> image;
#   cli -> network -> base;  cli -> trust -> image.
# Checked twice: in the sources (#include lines) and in CMake's own link graph.
set -euo pipefail
src=$(cd "${1:?source dir}" && pwd)
bin=$(cd "${2:?build dir}" && pwd)
status=0

bad_includes() {  # part, allowed-regex; a part's own tests/ may also use the test helpers
  local part=$1 allowed=$2
  grep -rnE '#include[[:space:]]*<kiste/' "$src/$part" --include='*.hpp' --include='*.cpp' \
    | grep -vE "#include[[:space:]]*<kiste/($allowed)/" \
    | grep -vE "^$src/$part/tests/[^:]*:[0-9]+:#include[[:space:]]*<kiste/testing/" || true
}
check_part() {
  local part=$1 allowed=$2 hits
  hits=$(bad_includes "$part" "$allowed")
  if [ -n "$hits" ]; then
    echo "forbidden include in $part/ (allowed: $allowed):"
    echo "$hits"
    status=1
  fi
}
check_part base 'base'
check_part network 'base|network'
check_part image 'base|image'
check_part registry-client 'base|image|registry'
check_part runtime 'base|image|runtime'
check_part builder 'base|image|runtime|builder'
check_part trust 'base|image|trust'

# Transports are opened in registry-client (kiste/registry/transport.hpp), not in cli/: the
# image backends, the staging guard and the registry TLS policy stay out of cli/.
hits=$(grep -rnE '#include[[:space:]]*<kiste/(image/(dir_image|oci_layout|staged_blobs)|registry/registries_conf)\.hpp>' \
  "$src/cli" --include='*.hpp' --include='*.cpp' || true)
if [ -n "$hits" ]; then
  echo "cli/ opens a transport itself (use kiste/registry/transport.hpp):"
  echo "$hits"
  status=1
fi

# The link graph as CMake sees it.
gdir=$(mktemp -d)
trap 'rm -rf "$gdir"' EXIT
(cd "$gdir" && cmake --graphviz="$gdir/g.dot" "$bin" >/dev/null)
# Every edge line ends in a comment "// from -> to"; keep the edges between kiste libraries.
edges=$(sed -n 's|.*// \(kiste_[a-z]*\) -> \(kiste_[a-z]*\)$|\1 -> \2|p' "$gdir/g.dot" | sort -u)
allowed_edges='kiste_image -> kiste_base
kiste_network -> kiste_base
kiste_registry -> kiste_image
kiste_runtime -> kiste_image
kiste_builder -> kiste_image
kiste_builder -> kiste_runtime
kiste_trust -> kiste_image'
while read -r edge; do
  [ -z "$edge" ] && continue
  if ! grep -qxF "$edge" <<<"$allowed_edges"; then
    echo "forbidden link edge: $edge"
    status=1
  fi
done <<<"$edges"
n=$(grep -c . <<<"$edges" || true)
if [ "$n" -lt 4 ]; then
  echo "layering check saw only $n kiste edges in the CMake graph; the check itself is broken"
  status=1
fi
[ $status -eq 0 ] && echo "layering ok ($n library edges checked)"
exit $status
