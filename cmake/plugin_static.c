/*
 * plugin_static: what snaparc.so needs to hold its third-party libraries
 * (static archives, linked in and hidden: plugin/CMakeLists.txt) and still
 * bind every reference of theirs inside the plugin. Not part of the engine.
 */
#include <stdio.h>

/*
 * Debian's liblmdb.a and libzstd.a are compiled -fPIE, not -fPIC: they reach
 * glibc's `stderr` (in mdb_assert_fail, and in zstd's dictionary trainer when
 * asked to display) with a pc-relative load that only links when the
 * variable is in the same module. This `stderr`, local to the plugin like
 * every symbol but its entry point, resolves those loads here; it points at
 * the FILE glibc's own stderr points at, so what LMDB would print on an
 * assertion still goes there. Nothing else in the plugin prints.
 */
extern FILE _IO_2_1_stderr_;   /* glibc: the FILE behind stdio's stderr */
FILE *stderr = &_IO_2_1_stderr_;

/*
 * zstd calls its tracing hooks when they are defined: weak references a host
 * defining its own ZSTD_trace_* would satisfy, getting our contexts. Made
 * hidden here, they resolve to nothing at link time.
 */
#define HIDDEN_WEAK __attribute__((weak, visibility("hidden")))
extern void ZSTD_trace_compress_begin(void) HIDDEN_WEAK;
extern void ZSTD_trace_compress_end(void) HIDDEN_WEAK;
extern void ZSTD_trace_decompress_begin(void) HIDDEN_WEAK;
extern void ZSTD_trace_decompress_end(void) HIDDEN_WEAK;
__attribute__((used)) static void (*const zstd_trace_hooks[])(void) = {
	ZSTD_trace_compress_begin, ZSTD_trace_compress_end, ZSTD_trace_decompress_begin, ZSTD_trace_decompress_end,
};

/*
 * libstdc++ (here for Snappy) allocates its emergency exception pool when the
 * plugin loads. In libstdc++.so that pool lives as long as the process; in a
 * plugin it would be lost at every dlclose (72 KiB each time, which
 * LeakSanitizer reports). __gnu_cxx::__freeres(), libstdc++'s own hook for
 * leak checkers, frees it as the plugin unloads.
 */
extern void _ZN9__gnu_cxx9__freeresEv(void);   /* __gnu_cxx::__freeres() */
__attribute__((destructor)) static void free_cxx_runtime(void)
{
	_ZN9__gnu_cxx9__freeresEv();
}
