/*
 * Descriptor passing over Unix sockets (SCM_RIGHTS), and the sender's
 * credentials (SCM_CREDENTIALS) where the receiver asks for them.
 */

#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

/*
 * Room for the control data of up to MESHLOG_FDS_MAX descriptors and one
 * set of credentials.
 */
union fd_cmsg {
	struct cmsghdr	hdr;
	char		buf[CMSG_SPACE(sizeof(int) * MESHLOG_FDS_MAX) +
			    CMSG_SPACE(sizeof(struct ucred))];
};

ssize_t
fd_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	return (fd_send_flags(sock, buf, len, fds, nfds, 0));
}

ssize_t
fd_send_flags(int sock, const void *buf, size_t len, const int *fds,
    int nfds, int flags)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	union fd_cmsg	 cm;
	struct cmsghdr	*c;
	ssize_t		 n;

	if (nfds < 0 || nfds > MESHLOG_FDS_MAX) {
		errno = EINVAL;
		return (-1);
	}
	memset(&msg, 0, sizeof msg);
	iov.iov_base = (void *)buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		memset(&cm, 0, sizeof cm);
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
	while (n == -1 && errno == EINTR);
	return (n);
}

ssize_t
fd_recv(int sock, void *buf, size_t len, int *fds, int *nfds, int maxfds)
{
	return (fd_recv_cred(sock, buf, len, fds, nfds, maxfds, NULL));
}

ssize_t
fd_recv_cred(int sock, void *buf, size_t len, int *fds, int *nfds,
    int maxfds, long *pid)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	union fd_cmsg	 cm;
	struct cmsghdr	*c;
	struct ucred	 cred;
	ssize_t		 n;
	int		 got[MESHLOG_FDS_MAX * 2], ngot = 0, k, i, bad;

	*nfds = 0;
	if (pid != NULL)
		*pid = -1;
	memset(&msg, 0, sizeof msg);
	iov.iov_base = buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof cm.buf;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return (-1);
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof cred)) {
			memcpy(&cred, CMSG_DATA(c), sizeof cred);
			if (pid != NULL && cred.pid > 0)
				*pid = cred.pid;
			continue;
		}
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (ngot < (int)(sizeof got / sizeof got[0]))
				got[ngot++] = fd;
			else
				close(fd);
		}
	}
	bad = (msg.msg_flags & MSG_CTRUNC) || ngot > maxfds;
	if (bad) {
		for (i = 0; i < ngot; i++)
			close(got[i]);
		errno = EBADMSG;
		return (-1);
	}
	memcpy(fds, got, sizeof(int) * ngot);
	*nfds = ngot;
	return (n);
}

int
fd_write_all(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 w;

	while (len > 0) {
		if ((w = write(fd, p, len)) == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return (-1);
		}
		p += w;
		len -= (size_t)w;
	}
	return (0);
}
