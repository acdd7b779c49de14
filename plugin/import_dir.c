/*
 * Importing a snapshot directory with two threads: one reads the segments
 * (read, CRC-32C, Snappy or zstd) into batches of records, the caller's
 * thread validates, compresses and stores them. Memory: QUEUE batches of
 * about BATCH_BYTES each, whatever the snapshot's size.
 */
#include "archive_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wal.h"

#define BATCH_BYTES (1u << 20)
#define QUEUE 4

struct batch {
	struct buf data;     /* records end to end */
	struct buf recs;     /* struct batch_rec */
};

struct batch_rec {
	size_t off, len;
	uint64_t offset, end;
	uint32_t segment;
};

struct pipe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch slots[QUEUE];
	unsigned head, count;         /* filled batches: [head, head+count) */
	int done, stop;               /* reader finished / consumer gave up */
	int rc;                       /* reader's status at the end */
	struct err error;
	char path[4200];              /* segment of the last record read */
	struct wal_reader *r;
};

static void *reader_main(void *arg)
{
	struct pipe *p = arg;
	unsigned fill = 0;
	int rc = 1;

	while (rc == 1) {
		struct batch *b;
		struct wal_record rec;

		pthread_mutex_lock(&p->mu);
		while (p->count == QUEUE && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		fill = (p->head + p->count) % QUEUE;
		pthread_mutex_unlock(&p->mu);
		b = &p->slots[fill];
		buf_reset(&b->data);
		buf_reset(&b->recs);
		while (b->data.len < BATCH_BYTES && (rc = wal_reader_next(p->r, &rec, &p->error)) == 1) {
			struct batch_rec br = { b->data.len, rec.len, rec.offset, rec.end, rec.segment };

			buf_put(&b->data, rec.data, rec.len);
			buf_put(&b->recs, &br, sizeof(br));
			if (b->data.oom || b->recs.oom) {
				rc = err_set(&p->error, SNAPARC_NOMEM, "out of memory reading the snapshot");
				break;
			}
		}
		pthread_mutex_lock(&p->mu);
		if (b->recs.len)
			p->count++;
		if (rc != 1) {
			p->done = 1;
			p->rc = rc;
		}
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	p->done = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int archive_import_dir(struct archive *a, const char *dir, const struct archive_import_info *info,
		       archive_progress_fn progress, void *ctx, struct idx_snapshot *snap, struct err *e)
{
	struct pipe p;
	struct archive_writer *w;
	pthread_t th;
	uint64_t done_bytes = 0;
	int rc;

	memset(&p, 0, sizeof(p));
	if ((rc = wal_reader_open_dir(&p.r, dir, NULL, e)))
		return rc;
	if ((rc = archive_import_begin(a, info, &w, e))) {
		wal_reader_close(p.r);
		return rc;
	}
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	if (pthread_create(&th, NULL, reader_main, &p) != 0) {
		rc = err_set(e, SNAPARC_NOMEM, "cannot start the reading thread");
		goto out_sync;
	}
	for (;;) {
		struct batch *b;
		const struct batch_rec *br;
		size_t n;

		pthread_mutex_lock(&p.mu);
		while (p.count == 0 && !p.done)
			pthread_cond_wait(&p.cv, &p.mu);
		if (p.count == 0) {
			pthread_mutex_unlock(&p.mu);
			break;
		}
		b = &p.slots[p.head];
		pthread_mutex_unlock(&p.mu);
		br = (const void *)b->recs.p;
		n = b->recs.len / sizeof(*br);
		for (size_t i = 0; i < n && !rc; i++) {
			if ((rc = archive_import_put(w, b->data.p + br[i].off, br[i].len, e)))
				err_prefix(e, "%s/%08u: offset %" PRIu64 ": record", dir, br[i].segment, br[i].offset);
			done_bytes = br[i].end;
		}
		if (progress)
			progress(ctx, done_bytes);
		pthread_mutex_lock(&p.mu);
		p.head = (p.head + 1) % QUEUE;
		p.count--;
		if (rc)
			p.stop = 1;
		pthread_cond_broadcast(&p.cv);
		pthread_mutex_unlock(&p.mu);
		if (rc)
			break;
	}
	pthread_join(th, NULL);
	if (!rc && p.rc < 0) {
		rc = p.rc;
		if (e)
			*e = p.error;
	}
out_sync:
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
	for (int i = 0; i < QUEUE; i++) {
		buf_free(&p.slots[i].data);
		buf_free(&p.slots[i].recs);
	}
	wal_reader_close(p.r);
	if (rc) {
		archive_import_abort(w);
		return rc;
	}
	return archive_import_commit(w, snap, e);
}
