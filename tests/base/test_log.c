/* SPDX-License-Identifier: MIT */
/*
 * test_log.c - the process-wide log from many threads at once: messages
 * while the handler and the level change under them. Each message reaches
 * exactly one handler whole (or is dropped by the level), a handler
 * replaced is never called once the swap returned, and the level's bounds
 * are checked. Run under ThreadSanitizer, it checks the publication of
 * handler and argument. A thread that holds its messages (inside a
 * device-side section) never reaches the handler: its messages reach it,
 * in order, once it lets go, and what did not fit is counted.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "harness.h"

#define THREADS 3
#define MESSAGES 3000

struct sink {
	_Atomic unsigned long got;
	_Atomic bool retired; /* set once the sink was swapped out */
};

static struct sink sinks[2];
static _Atomic unsigned long late_calls, torn;

static void to_sink(void *arg, enum iovm_log_level level, const char *msg)
{
	struct sink *s = arg;

	(void)level;
	if (atomic_load(&s->retired))
		atomic_fetch_add(&late_calls, 1);
	if (strncmp(msg, "message ", 8) != 0 || !strstr(msg, " end"))
		atomic_fetch_add(&torn, 1);
	atomic_fetch_add(&s->got, 1);
}

static void *writer(void *arg)
{
	for (unsigned i = 0; i < MESSAGES; i++)
		log_msg(IOVM_LOG_ERR, "message %u of thread %lu end", i, (unsigned long)(uintptr_t)arg);
	return NULL;
}

TEST(handler_swaps_under_load)
{
	pthread_t t[THREADS];
	unsigned long total;

	CHECK_EQ(iovm_log_set_level(IOVM_LOG_DEBUG + 1), -EINVAL);
	CHECK_EQ(iovm_log_set_level(IOVM_LOG_ERR - 1), -EINVAL);
	CHECK_OK(iovm_log_set_handler(to_sink, &sinks[0]));
	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, writer, (void *)i), 0);
	for (unsigned j = 0; j < 200; j++) {
		struct sink *from = &sinks[j % 2], *to = &sinks[(j + 1) % 2];

		atomic_store(&to->retired, false);
		CHECK_OK(iovm_log_set_handler(to_sink, to));
		/* Returned: the old handler runs no more. */
		atomic_store(&from->retired, true);
		CHECK_OK(iovm_log_set_level(j % 3 ? IOVM_LOG_WARN : IOVM_LOG_DEBUG));
	}
	for (int i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_OK(iovm_log_set_handler(NULL, NULL));
	CHECK_OK(iovm_log_set_level(IOVM_LOG_WARN));
	total = atomic_load(&sinks[0].got) + atomic_load(&sinks[1].got);
	/* Errors pass every level: each message went to one handler, whole. */
	CHECK_EQ(total, THREADS * MESSAGES);
	CHECK_EQ(atomic_load(&torn), 0);
	CHECK_EQ(atomic_load(&late_calls), 0);
	/* Below the level: dropped, not sent. */
	CHECK(!log_enabled(IOVM_LOG_DEBUG));
	CHECK(log_enabled(IOVM_LOG_ERR));
}

static char seen[40][64];
static unsigned nseen;

static void record(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	if (nseen < 40)
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", msg);
}

TEST(held_messages_wait_for_the_release)
{
	char want[64];

	nseen = 0;
	CHECK_OK(iovm_log_set_handler(record, NULL));
	log_hold();
	log_hold(); /* nested: only the outer release hands them over */
	for (int i = 0; i < 20; i++)
		log_err("held %d", i);
	CHECK_EQ(nseen, 0);
	log_release();
	CHECK_EQ(nseen, 0);
	log_release();
	/* 16 slots: the first 16 in order, then how many were dropped. */
	CHECK_EQ(nseen, 17);
	for (int i = 0; i < 16; i++) {
		snprintf(want, sizeof(want), "held %d", i);
		CHECK(!strcmp(seen[i], want));
	}
	CHECK(strstr(seen[16], "4 messages dropped") != NULL);
	/* Not held: straight through. */
	log_err("plain");
	CHECK_EQ(nseen, 18);
	CHECK(!strcmp(seen[17], "plain"));
	CHECK_OK(iovm_log_set_handler(NULL, NULL));
}

int main(void)
{
	test_init();
	RUN(handler_swaps_under_load);
	RUN(held_messages_wait_for_the_release);
	return 0;
}
