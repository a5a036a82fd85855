/* A raw file as a convert endpoint: plain reads and writes on its own
 * io_uring, holes found with SEEK_DATA/SEEK_HOLE. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <liburing.h>

#include "cli.h"
#include "convert.h"

struct raw_ep {
	struct endpoint ep;
	int fd;
	bool writable;
	bool can_seek_data; /* SEEK_DATA works on this file */
	struct io_uring ring;
	unsigned depth;
	unsigned queued;   /* prepared, not yet submitted */
	unsigned inflight; /* submitted, not yet reaped */
};

#define RAW(ep) ((struct raw_ep *)(ep))

static int queue(struct raw_ep *r, bool write, void *buf, size_t len,
		 uint64_t off, void *tag)
{
	struct io_uring_sqe *sqe;

	if (r->queued + r->inflight >= r->depth)
		return -EAGAIN;
	sqe = io_uring_get_sqe(&r->ring);
	if (!sqe)
		return -EAGAIN;
	if (write)
		io_uring_prep_write(sqe, r->fd, buf, (unsigned)len, off);
	else
		io_uring_prep_read(sqe, r->fd, buf, (unsigned)len, off);
	io_uring_sqe_set_data(sqe, tag);
	r->queued++;
	return 0;
}

static int raw_read(struct endpoint *ep, void *buf, size_t len, uint64_t off,
		    void *tag)
{
	return queue(RAW(ep), false, buf, len, off, tag);
}

static int raw_write(struct endpoint *ep, const void *buf, size_t len,
		     uint64_t off, void *tag)
{
	return queue(RAW(ep), true, (void *)buf, len, off, tag);
}

static int raw_submit(struct endpoint *ep)
{
	struct raw_ep *r = RAW(ep);
	int ret;

	if (!r->queued)
		return 0;
	ret = io_uring_submit(&r->ring);
	if (ret < 0)
		return ret;
	r->queued -= (unsigned)ret;
	r->inflight += (unsigned)ret;
	return ret;
}

static int raw_reap(struct endpoint *ep, struct vdi_completion *out,
		    unsigned min, unsigned max)
{
	struct raw_ep *r = RAW(ep);
	struct io_uring_cqe *cqe;
	unsigned n = 0;
	int ret;

	if (min && r->inflight) {
		do
			ret = io_uring_wait_cqe(&r->ring, &cqe);
		while (ret == -EINTR);
		if (ret < 0)
			return ret;
	}
	while (n < max && io_uring_peek_cqe(&r->ring, &cqe) == 0) {
		out[n].tag = io_uring_cqe_get_data(cqe);
		out[n].res = cqe->res;
		io_uring_cqe_seen(&r->ring, cqe);
		r->inflight--;
		n++;
	}
	return (int)n;
}

static unsigned raw_pending(const struct endpoint *ep)
{
	return RAW(ep)->queued + RAW(ep)->inflight;
}

static int raw_extent(struct endpoint *ep, uint64_t off, uint64_t *len,
		      bool *zero)
{
	struct raw_ep *r = RAW(ep);
	off_t next;

	*zero = false;
	*len = ep->size - off;
	if (!r->can_seek_data)
		return 0;
	next = lseek(r->fd, (off_t)off, SEEK_DATA);
	if (next < 0) {
		if (errno == ENXIO) {
			/* Nothing but a hole up to the end. */
			*zero = true;
			return 0;
		}
		r->can_seek_data = false; /* not supported here: all data */
		return 0;
	}
	if ((uint64_t)next > off) {
		*zero = true;
		if ((uint64_t)next - off < *len)
			*len = (uint64_t)next - off;
		return 0;
	}
	next = lseek(r->fd, (off_t)off, SEEK_HOLE);
	if (next > (off_t)off && (uint64_t)next - off < *len)
		*len = (uint64_t)next - off;
	return 0;
}

/* Requests still in flight use buffers the caller is about to free:
 * wait for them before the ring goes. */
static void raw_free(struct raw_ep *r)
{
	struct io_uring_cqe *cqe;

	if (r->queued)
		raw_submit(&r->ep);
	while (r->inflight) {
		int ret = io_uring_wait_cqe(&r->ring, &cqe);

		if (ret == -EINTR)
			continue;
		if (ret < 0)
			break;
		io_uring_cqe_seen(&r->ring, cqe);
		r->inflight--;
	}
	io_uring_queue_exit(&r->ring);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

static int raw_finish(struct endpoint *ep)
{
	struct raw_ep *r = RAW(ep);
	int ret = 0;

	if (r->writable && fdatasync(r->fd) < 0) {
		ret = -errno;
		die_msg("convert: cannot sync %s: %s", ep->path,
			strerror(errno));
	}
	if (r->writable && close(r->fd) < 0 && !ret) {
		ret = -errno;
		die_msg("convert: cannot close %s: %s", ep->path,
			strerror(errno));
	}
	if (r->writable)
		r->fd = -1;
	raw_free(r);
	return ret;
}

static void raw_abort(struct endpoint *ep)
{
	raw_free(RAW(ep));
}

static const struct endpoint_ops raw_ops = {
	.read = raw_read,
	.write = raw_write,
	.submit = raw_submit,
	.reap = raw_reap,
	.pending = raw_pending,
	.extent = raw_extent,
	.finish = raw_finish,
	.abort = raw_abort,
};

static int raw_setup(const char *path, int fd, bool writable, uint64_t size,
		     unsigned depth, struct endpoint **out)
{
	struct raw_ep *r = calloc(1, sizeof(*r));
	int ret;

	if (!r) {
		die_msg("out of memory");
		return -1;
	}
	ret = io_uring_queue_init(depth, &r->ring, 0);
	if (ret < 0) {
		die_msg("convert: cannot set up io_uring for %s: %s", path,
			strerror(-ret));
		free(r);
		return -1;
	}
	r->ep.ops = &raw_ops;
	r->ep.path = path;
	r->ep.size = size;
	r->fd = fd;
	r->writable = writable;
	r->can_seek_data = true;
	r->depth = depth;
	*out = &r->ep;
	return 0;
}

int raw_open_source(const char *path, unsigned depth, struct endpoint **out)
{
	struct stat st;
	off_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		die_msg("convert: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
		die_msg("convert: cannot read %s: %s", path,
			S_ISDIR(st.st_mode) ? "it is a directory"
					    : strerror(errno));
		close(fd);
		return -1;
	}
	/* Block devices have no st_size; lseek finds their end. */
	size = S_ISREG(st.st_mode) ? st.st_size : lseek(fd, 0, SEEK_END);
	if (size < 0) {
		die_msg("convert: cannot find the size of %s: %s", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	if (raw_setup(path, fd, false, (uint64_t)size, depth, out) < 0) {
		close(fd);
		return -1;
	}
	return 0;
}

int raw_open_dest(const char *path, int fd, uint64_t size, unsigned depth,
		  struct endpoint **out)
{
	/* Zero ranges are never written: they stay holes of the file. */
	if (ftruncate(fd, (off_t)size) < 0) {
		die_msg("convert: cannot size %s to %llu bytes: %s", path,
			(unsigned long long)size, strerror(errno));
		return -1;
	}
	return raw_setup(path, fd, true, size, depth, out);
}
