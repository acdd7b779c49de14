#!/usr/bin/env bash
# cmake --install into a fresh prefix, then the example host built out of
# tree against it twice (pkg-config, then find_package), each run against
# the installed plugin on the bundled snapshot.
#   test-install.sh CMAKE BUILD_DIR SOURCE_DIR SNAPSHOT_DIR LIBDIR [C_FLAGS]
# LIBDIR is CMAKE_INSTALL_LIBDIR; C_FLAGS go to the host's build (a sanitized
# plugin needs a sanitized host).
set -euo pipefail
cmake=$1 build=$2 src=$3 snap=$4 libdir=$5 cflags=${6:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fails=0
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; exit 1; }
plugin=$prefix/$libdir/snaparc/snaparc.so
for f in bin/snaparc "$libdir/snaparc/snaparc.so" include/snaparc/plugin.h "$libdir/pkgconfig/snaparc.pc" \
         "$libdir/cmake/snaparc/snaparcConfig.cmake" "$libdir/cmake/snaparc/snaparcConfigVersion.cmake"; do
  [ -f "$prefix/$f" ] || bad "not installed: $f"
done
[ "$fails" = 0 ] || exit 1
exported=$(nm -D --defined-only "$plugin" | awk '{print $3}')
[ "$exported" = snaparc_plugin_entry ] || bad "the installed plugin exports:" $exported
"$prefix/bin/snaparc" --version | grep -q '^snaparc [0-9]' || bad "the installed command does not run"
# The installed command finds the installed plugin (from bin/: the configure-time prefix is elsewhere).
if "$prefix/bin/snaparc" import "$tmp/cli-archive" "$snap" >"$tmp/cli.out" 2>&1 &&
   "$prefix/bin/snaparc" ls "$tmp/cli-archive" >>"$tmp/cli.out" 2>&1; then
  grep -q "$(basename "$snap")" "$tmp/cli.out" || bad "snaparc ls does not list the import: $(cat "$tmp/cli.out")"
else
  bad "the installed command with the installed plugin: $(cat "$tmp/cli.out")"
fi

# pkg-config: the paths of the prefix installed to.
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
cflags_pc=$(pkg-config --cflags snaparc | xargs)
plugindir=$(pkg-config --variable=plugindir snaparc)
[ "$cflags_pc" = "-I$prefix/include" ] || bad "pkg-config --cflags: $cflags_pc"
[ "$plugindir" = "$prefix/$libdir/snaparc" ] || bad "plugindir: $plugindir"
pkg-config --libs snaparc | grep -Eq '^ *(-ldl)? *$' || bad "pkg-config --libs: $(pkg-config --libs snaparc)"

# The example host, out of tree: with pkg-config, then with find_package.
build_host() {
  local dir=$1; shift
  if ! "$cmake" -S "$src/examples" -B "$dir" -DCMAKE_C_FLAGS="$cflags" "$@" >"$dir.log" 2>&1 ||
     ! "$cmake" --build "$dir" >>"$dir.log" 2>&1; then
    cat "$dir.log" >&2
    bad "building the example host ($*)"
    return 1
  fi
  grep -q "snaparc-host: plugin .*snaparc.so" "$dir.log" || bad "the configure step does not name the plugin"
}
if build_host "$tmp/host-pc" -DSNAPARC_HOST_USE_PKGCONFIG=ON; then
  "$src/tests/abi/test-host.sh" "$tmp/host-pc/snaparc-host" "$snap" "$plugindir/snaparc.so" ||
    bad "the host found with pkg-config"
fi
unset PKG_CONFIG_PATH
if build_host "$tmp/host-cmake" -DCMAKE_PREFIX_PATH="$prefix"; then
  "$src/tests/abi/test-host.sh" "$tmp/host-cmake/snaparc-host" "$snap" "$plugin" ||
    bad "the host found with find_package"
fi
# find_package refuses a version it is not (SameMajorVersion: 0.x here).
"$cmake" -S "$src/examples" -B "$tmp/host-v9" -DCMAKE_PREFIX_PATH="$prefix" -DSNAPARC_HOST_MIN_VERSION=9.0 \
  >"$tmp/v9.log" 2>&1 && bad "find_package(snaparc 9.0) accepted this version"

[ "$fails" = 0 ] || exit 1
echo "ok: installed in $prefix; the example host built with pkg-config and find_package ran on the installed plugin"
