#include "pipe.h"

#include <pthread.h>
#include <string.h>

#define QUEUE 4

struct pipe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pipe_batch slots[QUEUE];
	unsigned head, count;     /* filled batches: [head, head + count) */
	int done, stop, rc;
	struct err error;
	pipe_fill_fn fill;
	void *fill_ctx;
};

int pipe_batch_add(struct pipe_batch *b, const void *p, size_t len, const struct pipe_rec *meta, struct err *e)
{
	struct pipe_rec r = *meta;

	r.has_alt = 0;
	r.has_hashes = 0;
	r.off = b->data.len;
	r.len = len;
	buf_put(&b->data, p, len);
	buf_put(&b->recs, &r, sizeof(r));
	return b->data.oom || b->recs.oom ? err_set(e, SNAPARC_NOMEM, "out of memory for a batch of records") : 0;
}

int pipe_batch_add_alt(struct pipe_batch *b, const void *p, size_t len, uint8_t flags, struct err *e)
{
	struct pipe_rec *r = (struct pipe_rec *)(b->recs.p + b->recs.len - sizeof(*r));

	r->has_alt = 1;
	r->alt_off = b->data.len;
	r->alt_len = len;
	r->alt_flags = flags;
	buf_put(&b->data, p, len);
	return b->data.oom ? err_set(e, SNAPARC_NOMEM, "out of memory for a batch of records") : 0;
}

int pipe_batch_add_hashes(struct pipe_batch *b, const uint64_t *hashes, size_t n, struct err *e)
{
	struct pipe_rec *r = (struct pipe_rec *)(b->recs.p + b->recs.len - sizeof(*r));
	static const uint8_t zeros[8];

	buf_put(&b->data, zeros, (8 - b->data.len % 8) % 8);
	r->has_hashes = 1;
	r->hashes_off = b->data.len;
	buf_put(&b->data, hashes, n * sizeof(*hashes));
	return b->data.oom ? err_set(e, SNAPARC_NOMEM, "out of memory for a batch of records") : 0;
}

static void *filler(void *arg)
{
	struct pipe *p = arg;
	int rc = 1;

	while (rc == 1) {
		struct pipe_batch *b;

		pthread_mutex_lock(&p->mu);
		while (p->count == QUEUE && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		b = &p->slots[(p->head + p->count) % QUEUE];
		pthread_mutex_unlock(&p->mu);
		buf_reset(&b->data);
		buf_reset(&b->recs);
		rc = p->fill(p->fill_ctx, b, &p->error);
		pthread_mutex_lock(&p->mu);
		if (rc >= 0 && b->recs.len)
			__atomic_add_fetch(&p->count, 1, __ATOMIC_RELAXED);
		if (rc < 0)
			p->rc = rc;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	p->done = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int pipe_run(pipe_fill_fn fill, void *fill_ctx, pipe_drain_fn drain, void *drain_ctx, struct err *e)
{
	struct pipe p;
	pthread_t th;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.fill = fill;
	p.fill_ctx = fill_ctx;
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	for (int i = 0; i < QUEUE; i++)
		p.slots[i].queued = &p.count;
	if (pthread_create(&th, NULL, filler, &p) != 0) {
		rc = err_set(e, SNAPARC_NOMEM, "cannot start a second thread");
		goto out;
	}
	for (;;) {
		struct pipe_batch *b;

		pthread_mutex_lock(&p.mu);
		while (p.count == 0 && !p.done)
			pthread_cond_wait(&p.cv, &p.mu);
		if (p.count == 0) {
			pthread_mutex_unlock(&p.mu);
			break;
		}
		b = &p.slots[p.head];
		pthread_mutex_unlock(&p.mu);
		rc = drain(drain_ctx, b, e);
		pthread_mutex_lock(&p.mu);
		p.head = (p.head + 1) % QUEUE;
		__atomic_sub_fetch(&p.count, 1, __ATOMIC_RELAXED);
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
out:
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
	for (int i = 0; i < QUEUE; i++) {
		buf_free(&p.slots[i].data);
		buf_free(&p.slots[i].recs);
	}
	return rc;
}
