#include "bg.h"

#include <pthread.h>
#include <stdlib.h>

struct bg {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int started, quit;
	bg_fn fn;               /* the job to run; NULL when there is none */
	void *arg;
	int busy;               /* a job is set or running */
	int rc;                 /* the last job's status, until reported */
	struct err err;
};

static void *loop(void *p)
{
	struct bg *b = p;

	pthread_mutex_lock(&b->mu);
	for (;;) {
		bg_fn fn;
		struct err err;
		int rc;

		while (!b->fn && !b->quit)
			pthread_cond_wait(&b->cv, &b->mu);
		if (!b->fn)
			break;
		fn = b->fn;
		pthread_mutex_unlock(&b->mu);
		rc = fn(b->arg, &err);
		pthread_mutex_lock(&b->mu);
		b->fn = NULL;
		b->busy = 0;
		if (rc) {
			b->rc = rc;
			b->err = err;
		}
		pthread_cond_broadcast(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

int bg_new(struct bg **out, struct err *e)
{
	struct bg *b = calloc(1, sizeof(*b));

	if (!b)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	*out = b;
	return 0;
}

/* With the lock held: waits for the job, then reports and forgets its
 * failure. */
static int wait_locked(struct bg *b, struct err *e)
{
	int rc;

	while (b->busy)
		pthread_cond_wait(&b->cv, &b->mu);
	rc = b->rc;
	if (rc && e)
		*e = b->err;
	b->rc = 0;
	return rc;
}

int bg_submit(struct bg *b, bg_fn fn, void *arg, struct err *e)
{
	int rc;

	pthread_mutex_lock(&b->mu);
	if ((rc = wait_locked(b, e))) {
		pthread_mutex_unlock(&b->mu);
		return rc;
	}
	if (!b->started && pthread_create(&b->thread, NULL, loop, b) == 0)
		b->started = 1;
	if (!b->started) {
		/* no second thread: the job runs here, its failure reported
		 * as a thread's would be */
		b->rc = fn(arg, &b->err);
		pthread_mutex_unlock(&b->mu);
		return 0;
	}
	b->fn = fn;
	b->arg = arg;
	b->busy = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

int bg_wait(struct bg *b, struct err *e)
{
	int rc;

	pthread_mutex_lock(&b->mu);
	rc = wait_locked(b, e);
	pthread_mutex_unlock(&b->mu);
	return rc;
}

void bg_free(struct bg *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	wait_locked(b, NULL);
	b->quit = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (b->started)
		pthread_join(b->thread, NULL);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}
