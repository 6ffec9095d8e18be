/* SPDX-License-Identifier: MIT */
/*
 * attach.c - the attaching process's side of the handshake: connect to the
 * share's socket, read the owner's answer and, when allowed, the two memfds
 * it passes. Nothing the owner sends is trusted until checked: the sizes
 * against the files (sealed, so that they cannot shrink later), the
 * control region against its own layout (share.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "mp/mp_internal.h"

/* How long an owner may take to answer: it answers at once unless it is stuck. */
#define HELLO_TIMEOUT_S 10

static void close_fds(const struct cmsghdr *cm)
{
	unsigned n = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
	int fds[8];

	memcpy(fds, CMSG_DATA(cm), MIN(n, 8u) * sizeof(int));
	for (unsigned i = 0; i < MIN(n, 8u); i++)
		mp_fd_close(fds[i]);
}

int mp_connect(struct mp_space *s, const char *name)
{
	struct timeval tv = { .tv_sec = HELLO_TIMEOUT_S };
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct mp_hello hello;
	struct iovec iov = { .iov_base = &hello, .iov_len = sizeof(hello) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	struct sockaddr_un sun;
	unsigned len;
	ssize_t n;
	int fd, ret, fds[2];

	ret = mp_sock_addr(name, &sun, &len);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	mp_fd_own(fd);
	if (connect(fd, (struct sockaddr *)&sun, len)) {
		ret = errno == ECONNREFUSED || errno == ENOENT
			      ? err_detail(-ENOENT, IOVM_LOG_DEBUG, "no process shares '%s'", name)
			      : -errno;
		goto close_sock;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	/* The owner died or closed between our connect and its answer: nobody shares the name any more. */
	if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) {
		ret = err_detail(-ENOENT, IOVM_LOG_DEBUG, "the owner of '%s' went away", name);
		goto close_sock;
	}
	if (n < 0) {
		ret = errno == EAGAIN ? err_detail(-ETIMEDOUT, IOVM_LOG_ERR, "the owner of '%s' does not answer", name)
				      : -errno;
		goto close_sock;
	}
	cm = CMSG_FIRSTHDR(&msg);
	if (cm && (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS))
		cm = NULL;
	ret = 0;
	if (n != (ssize_t)sizeof(hello) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		ret = err_detail(-EPROTO, IOVM_LOG_ERR, "the owner of '%s' answered with a malformed message", name);
	else if (hello.status == -EACCES)
		ret = err_detail(-EACCES, IOVM_LOG_DEBUG,
				 "the owner of '%s' does not let user %u attach (only its own user, or its group)",
				 name, (unsigned)getuid());
	else if (hello.status < 0)
		ret = err_detail(hello.status, IOVM_LOG_DEBUG, "the owner of '%s' refused: %s", name,
				 iovm_strerror(hello.status));
	else if (hello.status > 0 || hello.version != MP_VERSION || hello.hdr_size != sizeof(struct mp_ctl))
		ret = err_detail(-EPROTO, IOVM_LOG_ERR, "the owner of '%s' runs another version of iovm", name);
	else if (!cm || cm->cmsg_len != CMSG_LEN(sizeof(fds)))
		ret = err_detail(-EPROTO, IOVM_LOG_ERR, "the owner of '%s' sent no memory", name);
	if (ret) {
		if (cm)
			close_fds(cm);
		goto close_sock;
	}
	memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	mp_fd_own(fds[0]);
	mp_fd_own(fds[1]);
	s->ctl_fd = fds[0];
	s->heap_fd = fds[1];
	s->conn_fd = fd;
	s->heap_size = hello.heap_size;
	s->ctl_size = hello.ctl_size;
	/* The control region's size is checked against the file and the layout by the mapper. */
	return 0;

close_sock:
	mp_fd_close(fd);
	return ret;
}
