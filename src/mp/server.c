/* SPDX-License-Identifier: MIT */
/*
 * server.c - the owner's side of attachment: a thread that accepts
 * connections on the share's abstract UNIX socket, checks each peer's
 * credentials as the kernel gives them (SO_PEERCRED, SO_PEERGROUPS), sends
 * the memfds of the share to those allowed (SCM_RIGHTS), and watches each
 * attached process through a pidfd, so that its memory is freed as soon as
 * it dies.
 *
 * The abstract namespace leaves no file behind: the name goes with the
 * socket, when the owner closes or dies.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "mp/mp_internal.h"

/* Processes watched at once: attached ones, and those that detached but still live. */
#define MAX_WATCHED 1024

struct watched {
	int conn;        /* the connection; -1 once the peer closed it */
	int pidfd;       /* readable when the process has exited; -1 without pidfd_open() */
	pid_t pid;
	uint64_t start;
};

struct mp_server {
	struct mp_space *s;
	int listen_fd;
	int stop_fd;     /* an eventfd: written to stop the thread */
	pthread_t thread;
	struct watched w[MAX_WATCHED]; /* the thread's own */
	unsigned nr;
	bool polling;    /* some watched process has no pidfd: poll /proc */
	/*
	 * The thread's poll set, allocated before the thread starts: the thread
	 * allocates nothing, so that a fork() of the owner while it runs never
	 * leaves a child with an allocator lock held (glibc guards its own;
	 * some allocators, AddressSanitizer's among them, do not).
	 */
	struct pollfd *pfd;
	_Atomic bool started; /* the thread runs: mp_server_start() returns after it */
};

int mp_sock_addr(const char *name, void *sun_, unsigned *len)
{
	return mp_sock_addr_fmt("iovm-share/%s", name, sun_, len);
}

int mp_sock_addr_fmt(const char *fmt, const char *name, void *sun_, unsigned *len)
{
	struct sockaddr_un *sun = sun_;
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, fmt, name);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path) - 1)
		return -ENAMETOOLONG;
	*len = (unsigned)(offsetof(struct sockaddr_un, sun_path) + 1 + (unsigned)n);
	return 0;
}

/* Whether the peer on @fd may attach: the owner's user, or a member of the named group. */
int mp_peer_allowed(const struct mp_ctl *c, int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);
	gid_t groups[256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len))
		return -errno;
	if (cred->uid == c->owner_uid)
		return 0;
	if (c->group < 0)
		return -EACCES;
	if (cred->gid == (gid_t)c->group)
		return 0;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return -EACCES;
	for (unsigned i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == (gid_t)c->group)
			return 0;
	return -EACCES;
}

static int send_hello(int fd, const struct mp_space *s, int status)
{
	struct mp_hello hello = {
		.status = status,
		.version = MP_VERSION,
		.hdr_size = sizeof(struct mp_ctl),
		.ctl_size = s->c->ctl_size,
		.heap_size = s->heap_size,
	};
	int fds[2] = { s->ctl_fd, s->heap_fd };

	return mp_send_fds(fd, &hello, sizeof(hello), fds, status ? 0 : 2) == (ssize_t)sizeof(hello) ? 0 : -errno;
}

static void drop(struct mp_server *srv, unsigned i)
{
	if (srv->w[i].conn >= 0)
		mp_fd_close(srv->w[i].conn);
	if (srv->w[i].pidfd >= 0)
		mp_fd_close(srv->w[i].pidfd);
	srv->w[i] = srv->w[--srv->nr];
}

static void accept_one(struct mp_server *srv)
{
	struct mp_space *s = srv->s;
	struct ucred cred;
	struct watched *w;
	bool zombie;
	int fd, ret;

	fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	mp_fd_own(fd);
	ret = mp_peer_allowed(s->c, fd, &cred);
	if (ret) {
		log_notice("share %s: process %d of user %u may not attach", s->name, (int)cred.pid,
			   (unsigned)cred.uid);
		send_hello(fd, s, ret);
		mp_fd_close(fd);
		return;
	}
	if (srv->nr == MAX_WATCHED) {
		send_hello(fd, s, -EUSERS);
		mp_fd_close(fd);
		return;
	}
	w = &srv->w[srv->nr];
	w->conn = fd;
	w->pid = cred.pid;
	w->pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
	mp_fd_own(w->pidfd);
	/* Read after the pidfd is open: if the pid was reused since, the start time tells. */
	if (mp_proc_start(cred.pid, &w->start, &zombie) || zombie) {
		if (w->pidfd >= 0)
			mp_fd_close(w->pidfd);
		mp_fd_close(fd);
		return;
	}
	if (w->pidfd < 0)
		srv->polling = true;
	if (send_hello(fd, s, 0)) {
		if (w->pidfd >= 0)
			mp_fd_close(w->pidfd);
		mp_fd_close(fd);
		return;
	}
	srv->nr++;
}

/* Whether the process of @w still holds a slot. */
static bool still_attached(struct mp_server *srv, const struct watched *w)
{
	struct mp_ctl *c = srv->s->c;
	bool found = false;

	if (mp_lock(&srv->s->h))
		return true;
	for (unsigned i = 0; i < MP_MAX_PROCS && !found; i++)
		found = c->slots[i].state == MP_SLOT_LIVE && c->slots[i].pid == w->pid &&
			c->slots[i].start_time == w->start;
	mp_unlock(&srv->s->h);
	return found;
}

static void *server_main(void *arg)
{
	struct mp_server *srv = arg;
	struct pollfd *pfd = srv->pfd;

	atomic_store_explicit(&srv->started, true, memory_order_release);
	for (;;) {
		unsigned n = 0;
		int ret;

		pfd[n++] = (struct pollfd){ .fd = srv->stop_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
		for (unsigned i = 0; i < srv->nr; i++) {
			pfd[n++] = (struct pollfd){ .fd = srv->w[i].conn, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = srv->w[i].pidfd, .events = POLLIN };
		}
		ret = poll(pfd, n, srv->polling ? 50 : -1);
		if (ret < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (srv->polling && !ret)
			mp_reap_dead(&srv->s->h);
		/* Backwards: drop() moves the last entry into the hole. */
		for (unsigned i = srv->nr; i-- > 0;) {
			struct pollfd *pc = &pfd[2 + 2 * i], *pp = &pfd[3 + 2 * i];
			struct watched *w = &srv->w[i];

			if (w->pidfd >= 0 && pp->revents) {
				/* Exited: free what it held, whether or not it said goodbye. */
				mp_reap_pid(&srv->s->h, w->pid, w->start);
				drop(srv, i);
				continue;
			}
			if (w->conn >= 0 && pc->revents) {
				char b[64];

				if (recv(w->conn, b, sizeof(b), MSG_DONTWAIT) > 0)
					continue; /* nothing is expected; drained */
				mp_fd_close(w->conn);
				w->conn = -1;
				/* Detached and alive: nothing more to watch. Still attached: dying, wait for it. */
				if (!still_attached(srv, w))
					drop(srv, i);
			}
		}
		if (pfd[1].revents)
			accept_one(srv);
	}
	return NULL;
}

int mp_server_start(struct mp_space *s)
{
	struct sockaddr_un sun;
	struct mp_server *srv;
	unsigned len;
	int ret;

	ret = mp_sock_addr(s->name, &sun, &len);
	if (ret)
		return ret;
	srv = fi_calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->s = s;
	srv->pfd = fi_calloc(2 + 2 * MAX_WATCHED, sizeof(*srv->pfd));
	if (!srv->pfd) {
		ret = -ENOMEM;
		goto free_srv;
	}
	srv->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		ret = -errno;
		goto free_srv;
	}
	mp_fd_own(srv->listen_fd);
	if (bind(srv->listen_fd, (struct sockaddr *)&sun, len)) {
		ret = errno == EADDRINUSE ? err_detail(-EEXIST, IOVM_LOG_DEBUG, "a share named '%s' exists", s->name)
					  : -errno;
		goto close_listen;
	}
	if (listen(srv->listen_fd, 64)) {
		ret = -errno;
		goto close_listen;
	}
	srv->stop_fd = fi_eventfd(0, EFD_CLOEXEC);
	if (srv->stop_fd < 0) {
		ret = -errno;
		goto close_listen;
	}
	mp_fd_own(srv->stop_fd);
	ret = -fi_pthread_create(&srv->thread, NULL, server_main, srv);
	if (ret)
		goto close_stop;
	/*
	 * Returns once the thread runs: a new thread sets itself up (its TLS,
	 * a sanitizer's records of it) with locks held, and a fork() of the
	 * owner right after iovm_share() must not catch it half way.
	 */
	while (!atomic_load_explicit(&srv->started, memory_order_acquire))
		sched_yield();
	s->srv = srv;
	return 0;

close_stop:
	mp_fd_close(srv->stop_fd);
close_listen:
	mp_fd_close(srv->listen_fd);
free_srv:
	free(srv->pfd);
	free(srv);
	return ret;
}

void mp_server_forget(struct mp_space *s)
{
	if (!s->srv)
		return;
	free(s->srv->pfd);
	free(s->srv);
	s->srv = NULL;
}

void mp_server_stop(struct mp_space *s)
{
	struct mp_server *srv = s->srv;
	uint64_t one = 1;

	if (!srv)
		return;
	if (write(srv->stop_fd, &one, sizeof(one)) != sizeof(one))
		log_err("share %s: cannot stop the server thread", s->name);
	pthread_join(srv->thread, NULL);
	while (srv->nr)
		drop(srv, srv->nr - 1);
	mp_fd_close(srv->stop_fd);
	mp_fd_close(srv->listen_fd);
	free(srv->pfd);
	free(srv);
	s->srv = NULL;
}
