/* What the criterion programs under tests/ share: scratch directories and
 * the bundled real snapshot. Each helper fails the test when it cannot. */
#ifndef SNAPARC_TESTS_SUPPORT_H
#define SNAPARC_TESTS_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Makes a new directory /tmp/snaparc-test-NAME-XXXXXX, its path into out. */
void support_tmpdir(char *out, size_t cap, const char *name);

/* Removes path and all below it, as rm -rf does; nothing there is fine. */
void support_rm_tree(const char *path);

/* The bundled snapshot's directory: the one chunk_snapshot.* under
 * SNAPARC_TEST_DATA/prom-2.42 (its name carries a WAL position, so it is
 * looked up rather than written in each test). */
void support_bundled_snapshot(char *out, size_t cap);

/* The whole file's bytes (malloc'd, at least 1 byte), *len its length; the
 * test fails when it cannot be read. */
uint8_t *support_read_file(const char *path, size_t *len);
/* splitmix64 over *state: deterministic, so a failure reproduces. */
uint64_t support_rand(uint64_t *state);

#endif
