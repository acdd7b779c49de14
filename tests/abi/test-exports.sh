#!/usr/bin/env bash
# snaparc.so exports exactly its entry point: nothing of the engine (idx_,
# archive_, wal_ ...) nor of the libraries linked into it (mdb_, LZ4_, ZSTD_,
# XXH, snappy, pcre2, the C++ runtime), and it needs none of those libraries
# as shared objects, so a host's own copies can never stand in for them.
#   test-exports.sh PLUGIN.so
set -euo pipefail
so=$1
fails=0
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

exported=$(nm -D --defined-only "$so" | awk '{print $3}')
[ "$exported" = snaparc_plugin_entry ] || bad "exports other than snaparc_plugin_entry:" $exported

# Undefined (imported) symbols: only versioned ones of libc and the unwinder
# (libgcc_s), the weak hooks every shared object carries, and, in a sanitized
# build, what the sanitizer runtimes define (they interpose malloc, operator
# new and the like for the whole process: that is how they work).
sanitizers=$(ldd "$so" | awk '/lib(asan|ubsan)\.so/ {print $3}')
imported=$(nm -D --undefined-only "$so" | awk '{print $NF}' | grep -Ev '@(GLIBC|GCC)_' |
  grep -Ev '^(_ITM_|__gmon_start__$|_ZGTt)' || true)
if [ -n "$sanitizers" ] && [ -n "$imported" ]; then
  imported=$(comm -23 <(echo "$imported" | LC_ALL=C sort -u) \
    <(nm -D --defined-only $sanitizers | awk '{print $3}' | sed 's/@.*//' | LC_ALL=C sort -u) | xargs)
fi
[ -z "$imported" ] || bad "symbols the plugin would take from whoever defines them:" $imported

needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
  case $lib in
    libc.so.*|libgcc_s.so.*|ld-linux*|libm.so.*|libasan.so.*|libubsan.so.*) ;;
    *) bad "needs $lib: linked as a shared library, not held in the plugin" ;;
  esac
done
readelf -d "$so" | grep -q TEXTREL && bad "text relocations"
readelf -d "$so" | grep -Eq '\(FLAGS\).*SYMBOLIC|\(SYMBOLIC\)' || bad "not linked -Bsymbolic"

[ "$fails" = 0 ] || exit 1
echo "ok: exports snaparc_plugin_entry only; needs" $needed
