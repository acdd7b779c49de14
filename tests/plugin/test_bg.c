/*
 * bg (plugin/bg.c): jobs run one at a time, in order, on a thread other
 * than the caller's; a failure comes back once, with its message, from the
 * next bg_submit() or bg_wait(), and the job submitted then is not run.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "bg.h"

struct job {
	pthread_t caller, ran_on;
	int order[8], n;        /* the jobs' numbers, as they ran */
	int number, fail;
};

static struct job shared;

static int record(void *arg, struct err *e)
{
	struct job *j = arg;

	usleep(2000);           /* long enough for the caller to go on */
	shared.ran_on = pthread_self();
	shared.order[shared.n++] = j->number;
	if (j->fail)
		return err_set(e, SNAPARC_IO, "job %d failed", j->number);
	return 0;
}

Test(bg, jobs_run_in_order_on_another_thread)
{
	struct job jobs[5];
	struct bg *b;
	struct err e;

	memset(&shared, 0, sizeof(shared));
	cr_assert_eq(bg_new(&b, &e), 0);
	cr_assert_eq(bg_wait(b, &e), 0, "nothing ran yet");
	for (int i = 0; i < 5; i++) {
		jobs[i] = (struct job){ .number = i + 1 };
		cr_assert_eq(bg_submit(b, record, &jobs[i], &e), 0);
	}
	cr_assert_eq(bg_wait(b, &e), 0);
	cr_assert_eq(shared.n, 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(shared.order[i], i + 1);
	cr_assert(!pthread_equal(shared.ran_on, pthread_self()), "a job ran on the caller's thread");
	bg_free(b);
}

Test(bg, a_failure_is_reported_once_by_the_next_call_and_stops_the_next_job)
{
	struct job bad = { .number = 1, .fail = 1 }, next = { .number = 2 }, after = { .number = 3 };
	struct bg *b;
	struct err e;

	memset(&shared, 0, sizeof(shared));
	cr_assert_eq(bg_new(&b, &e), 0);
	cr_assert_eq(bg_submit(b, record, &bad, &e), 0, "its status is not known yet");
	cr_assert_eq(bg_submit(b, record, &next, &e), SNAPARC_IO);
	cr_assert_str_eq(e.msg, "job 1 failed");
	cr_assert_eq(bg_wait(b, &e), 0, "reported once");
	cr_assert_eq(shared.n, 1, "the job submitted after the failure ran");
	cr_assert_eq(bg_submit(b, record, &after, &e), 0);
	cr_assert_eq(bg_wait(b, &e), 0);
	cr_assert_eq(shared.n, 2);
	cr_assert_eq(shared.order[1], 3);
	bg_free(b);
}

Test(bg, free_waits_for_the_running_job)
{
	struct job j = { .number = 7 };
	struct bg *b;
	struct err e;

	memset(&shared, 0, sizeof(shared));
	cr_assert_eq(bg_new(&b, &e), 0);
	cr_assert_eq(bg_submit(b, record, &j, &e), 0);
	bg_free(b);
	cr_assert_eq(shared.n, 1);
	cr_assert_eq(shared.order[0], 7);
	bg_free(NULL);
}
