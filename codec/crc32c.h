/*
 * crc32c: CRC-32C (Castagnoli), as the WAL's fragment headers carry it.
 *
 * crc32c() uses the SSE4.2 crc32 instruction when the CPU has it and a
 * slicing-by-8 table otherwise; both give the same value (tests check).
 */
#ifndef SNAPARC_CRC32C_H
#define SNAPARC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of p[0..len), continuing from crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *p, size_t len);

/* The two implementations, for tests and the benchmark. crc32c_hw() must only
 * be called when crc32c_have_hw() is true. */
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *p, size_t len);
int crc32c_have_hw(void);

#endif
