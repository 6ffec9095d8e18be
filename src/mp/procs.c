/* SPDX-License-Identifier: MIT */
/*
 * procs.c - the processes of a share: their slots, how a dead one is told
 * from a live one, and the reclaim of what a dead one held.
 *
 * A process is its pid and its start time (/proc/PID/stat), so that a pid
 * the kernel gave again to another process is not mistaken for the dead
 * one. A zombie is dead: its memory goes before its parent reaps it.
 *
 * The policy: a dead process's blocks are freed, but those it allocated
 * with IOVM_DMA_KEEP and zones (MP_OWNER_KEEP), which belong to the share.
 * A reap marks the slot DEAD before it frees anything, so that a reaper
 * killed half way leaves a slot the next reap finishes.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "mp/mp_internal.h"

static _Atomic unsigned fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/*
 * The descriptors of the mp layer (memfds, sockets, pidfds, eventfds): a
 * forked child closes them all at once, so that it holds nothing of its
 * parent's shares by accident (a listening socket would keep the share's
 * name taken after the owner died; a connection would hide a death).
 */
#define MAX_OWN_FDS 4096
static pthread_mutex_t own_lock = PTHREAD_MUTEX_INITIALIZER;
static int own_fds[MAX_OWN_FDS]; /* under own_lock */
static unsigned nr_own;          /* under own_lock */

static void on_fork_prepare(void)
{
	pthread_mutex_lock(&own_lock);
}

static void on_fork_parent(void)
{
	pthread_mutex_unlock(&own_lock);
}

static void on_fork_child(void)
{
	for (unsigned i = 0; i < nr_own; i++)
		close(own_fds[i]);
	nr_own = 0;
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
	pthread_mutex_unlock(&own_lock);
}

static void fork_hook(void)
{
	pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
}

void mp_fd_own(int fd)
{
	pthread_once(&fork_once, fork_hook);
	if (fd < 0)
		return;
	pthread_mutex_lock(&own_lock);
	if (nr_own < MAX_OWN_FDS)
		own_fds[nr_own++] = fd;
	pthread_mutex_unlock(&own_lock);
}

void mp_fd_close(int fd)
{
	if (fd < 0)
		return;
	pthread_mutex_lock(&own_lock);
	for (unsigned i = 0; i < nr_own; i++)
		if (own_fds[i] == fd) {
			own_fds[i] = own_fds[--nr_own];
			break;
		}
	/* Under the lock: no fork sees the number closed and still listed (and reused). */
	close(fd);
	pthread_mutex_unlock(&own_lock);
}

unsigned mp_fork_gen(void)
{
	pthread_once(&fork_once, fork_hook);
	return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

int mp_proc_start(pid_t pid, uint64_t *start, bool *zombie)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	char state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno == -ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields start after the last ')'. */
	p = strrchr(buf, ')');
	/* state is field 3; starttime field 22: 19 fields after state. */
	if (!p || sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
			 &state, &st) != 2)
		return -EIO;
	*start = st;
	*zombie = state == 'Z' || state == 'X' || state == 'x';
	return 0;
}

static bool proc_dead(pid_t pid, uint64_t start)
{
	uint64_t now;
	bool zombie;
	int ret = mp_proc_start(pid, &now, &zombie);

	if (ret == -ESRCH)
		return true;
	if (ret)
		return false; /* unreadable: not known dead, so kept */
	return zombie || now != start;
}

bool mp_slot_gone(const struct mp_slot *sl)
{
	return sl->state == MP_SLOT_DEAD || (sl->state == MP_SLOT_LIVE && proc_dead(sl->pid, sl->start_time));
}

bool mp_slot_exited(const struct mp_slot *sl)
{
	return sl->state == MP_SLOT_DEAD ||
	       (sl->state == MP_SLOT_LIVE && kill(sl->pid, 0) < 0 && errno == ESRCH);
}

/* Free what slot @i holds and the slot. Needs the lock. */
void mp_reap_slot(struct mp_heap *h, unsigned i)
{
	struct mp_ctl *c = h->c;
	uint64_t n;

	c->slots[i].state = MP_SLOT_DEAD;
	mp_crash_point();
	n = mp_heap_free_owned(h, (uint8_t)i);
	/* Not a follower any more; a trim it was in, ended. */
	mp_parcel_forget_slot(h, i);
	/* Its views of shared domains go; a domain nobody has open any more, with them. */
	mp_domains_forget_slot(h, i);
	mp_domains_tidy(h);
	c->reaped++;
	c->reaped_blocks += n;
	mp_crash_point();
	log_info("share %s: process %d died; %" PRIu64 " of its allocations freed", c->name,
		 (int)c->slots[i].pid, n);
	memset(&c->slots[i], 0, sizeof(c->slots[i]));
}

int mp_slot_take(struct mp_space *s)
{
	struct mp_ctl *c = s->c;
	uint64_t start;
	bool zombie;
	int ret;

	ret = mp_proc_start(getpid(), &start, &zombie);
	if (ret)
		return err_detail(ret, IOVM_LOG_ERR, "cannot read this process's start time from /proc");
	for (int pass = 0; pass < 2; pass++) {
		ret = mp_lock(&s->h);
		if (ret)
			return ret;
		for (unsigned i = 0; i < MP_MAX_PROCS; i++) {
			if (c->slots[i].state != MP_SLOT_FREE)
				continue;
			c->slots[i].pid = getpid();
			c->slots[i].start_time = start;
			c->slots[i].uid = (uint32_t)getuid();
			c->slots[i].state = MP_SLOT_LIVE;
			atomic_fetch_add_explicit(&c->attaches, 1, memory_order_relaxed);
			mp_unlock(&s->h);
			s->slot = (uint8_t)i;
			return 0;
		}
		mp_unlock(&s->h);
		if (!pass)
			mp_reap_dead(&s->h);
	}
	return err_detail(-EUSERS, IOVM_LOG_ERR, "share %s: %d processes are attached already", c->name,
			  MP_MAX_PROCS);
}

void mp_slot_leave(struct mp_space *s)
{
	if (mp_lock(&s->h))
		return;
	if (s->c->slots[s->slot].state == MP_SLOT_LIVE && s->c->slots[s->slot].pid == getpid()) {
		mp_heap_free_owned(&s->h, s->slot);
		mp_domains_forget_slot(&s->h, s->slot);
		mp_domains_tidy(&s->h);
		memset(&s->c->slots[s->slot], 0, sizeof(s->c->slots[s->slot]));
	}
	mp_unlock(&s->h);
}

int mp_reap_pid(struct mp_heap *h, pid_t pid, uint64_t start)
{
	int ret = mp_lock(h), n = 0;

	if (ret)
		return ret;
	for (unsigned i = 0; i < MP_MAX_PROCS; i++) {
		struct mp_slot *sl = &h->c->slots[i];

		if ((sl->state == MP_SLOT_LIVE && sl->pid == pid && sl->start_time == start) ||
		    sl->state == MP_SLOT_DEAD) {
			mp_reap_slot(h, i);
			n++;
		}
	}
	mp_unlock(h);
	return n;
}

int mp_reap_dead(struct mp_heap *h)
{
	int ret = mp_lock(h), n = 0;

	if (ret)
		return ret;
	for (unsigned i = 0; i < MP_MAX_PROCS; i++) {
		struct mp_slot *sl = &h->c->slots[i];

		if (mp_slot_gone(sl)) {
			mp_reap_slot(h, i);
			n++;
		}
	}
	mp_unlock(h);
	return n;
}
