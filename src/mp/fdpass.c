/* SPDX-License-Identifier: MIT */
/*
 * fdpass.c - one message on a UNIX socket with file descriptors beside it
 * (SCM_RIGHTS), as the share's server and the device process and their
 * peers pass memfds, eventfds and memory files.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "mp/mp_internal.h"

/* Descriptors one message carries at most. */
#define FDPASS_MAX 2

ssize_t mp_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nr_fds)
{
	union {
		char buf[CMSG_SPACE(FDPASS_MAX * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nr_fds > FDPASS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (nr_fds) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nr_fds * sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

ssize_t mp_recv_fd(int sock, void *buf, size_t len, int flags, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR && !(flags & MSG_DONTWAIT));
	if (n < 0)
		return n;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int))) {
		memcpy(fd, CMSG_DATA(cm), sizeof(int));
		mp_fd_own(*fd);
	}
	/* Cut off: more descriptors than one came, or a longer message. What came is closed. */
	if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
		mp_fd_close(*fd);
		*fd = -1;
		errno = EPROTO;
		return -1;
	}
	return n;
}
