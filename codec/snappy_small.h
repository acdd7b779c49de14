/*
 * snappy_small: Snappy block elements (literals and copies, FORMAT.md
 * section 2 names the block format) for inputs of at most 64 KiB whose
 * matches are sought only where the caller says they may start, for
 * restore's series records: a match starts at a label string (a value
 * repeated in the job, the service and the pod's name), a few bytes into
 * one ("name" of "__name__" in "namespace"), or in the binary fields
 * around them (zeros of the ref and the chunk range, the high bytes of
 * mint and maxt).
 *
 * What it writes is plain Snappy, whatever the probes: any decoder takes
 * it. A match found at a probe is extended forwards and backwards, so the
 * probes need not fall on its first byte.
 *
 * Why not libsnappy (which restore still uses for a head it cannot
 * describe): measured on the 1M-series generated snapshot's series heads
 * (299 bytes), libsnappy took 5,065 instructions a head (its hash table
 * allocated and cleared on each call, every byte hashed) for 271.7 bytes;
 * this takes about 2,000 with its literal copies, plus 700 for restore's
 * walk of the labels that places the probes, for 271.5 bytes (the real
 * 71k-series snapshot: 148.3 against libsnappy's 150.5). The full restore
 * of that snapshot went from 10,019 to 6,495 instructions a series with
 * this and the changes that came with it (CRC-32C, no copy into the page).
 */
#ifndef SNAPARC_SNAPPY_SMALL_H
#define SNAPARC_SNAPPY_SMALL_H

#include <stddef.h>
#include <stdint.h>

#define SNAPPY_SMALL_MAX 65536u       /* longest input */
#define SNAPPY_SMALL_TABLE_BITS 9

/* Positions [from, to) where matches are looked up, every one of them. */
struct snappy_small_range {
	uint16_t from, to;
};

/* The encoder's state: a hash table of positions, stamped so that it is
 * never cleared between inputs. Not shared between threads. */
struct snappy_small {
	uint32_t base;                      /* stamp of the current input's position 0 */
	uint32_t table[1u << SNAPPY_SMALL_TABLE_BITS];
};

void snappy_small_init(struct snappy_small *s);

/* Bytes snappy_small_elements() may write for an input of n bytes. */
static inline size_t snappy_small_bound(size_t n)
{
	return n + n / 32 + 8;
}

/*
 * Writes the elements for in[0, n) (n <= SNAPPY_SMALL_MAX) at out, which
 * has room for snappy_small_bound(n), and returns how many bytes they
 * take. Copies point back into the input only: the elements form a block
 * of their own (the caller writes its length varint first) or the start of
 * one. 4-byte matches are looked up at the positions of the ranges (in
 * ascending order and not overlapping; nranges may be 0; positions
 * without 4 bytes of input from them are passed over). Cannot fail.
 */
size_t snappy_small_elements(struct snappy_small *s, const uint8_t *in, size_t n,
			     const struct snappy_small_range *ranges, size_t nranges, uint8_t *out);

#endif
