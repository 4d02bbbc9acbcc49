# Sourced by the bench scripts, after they set $here (their own folder):
# the build, nbdkit, the two plugins and the client, each overridable from
# the environment, and where nbdkit's filters are.
# shellcheck shell=bash
build=${VRAM_BUILD_DIR:-$here/../build}
NBDKIT=${NBDKIT:-nbdkit}
MEMORY_PLUGIN=${MEMORY_PLUGIN:-memory}
VRAM_PLUGIN=${VRAM_PLUGIN:-$build/plugin/nbdkit-vram-plugin.so}
LOADGEN=${LOADGEN:-$build/bench/nbd-loadgen}

# nbdkit_filter NAME: what --filter= takes for nbdkit's filter NAME: the
# name, or its path under FILTER_DIR where nbdkit is carried, not
# installed, and does not find its filters itself.
nbdkit_filter() {
  if [[ -n ${FILTER_DIR:-} ]]; then echo "$FILTER_DIR/nbdkit-$1-filter.so"; else echo "$1"; fi
}
