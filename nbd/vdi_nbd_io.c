/* The data path of nbdkit-vdi-plugin.  nbdkit runs each request on one of
 * a connection's worker threads and waits for the answer; each thread gets
 * a libvdi queue (one io_uring) of its own on its first request, so no
 * lock is taken per request.  A request is queued on that queue, then
 * submitted and waited for in one system call, and reaped.  Extents are
 * in vdi_nbd_map.c. */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vdi_nbd.h"

/* A worker has one request in flight; a FUA write adds its flush after
 * the write completes.  Room for a few in case that changes. */
#define QUEUE_DEPTH 4

/* Zeroing that must leave the range allocated writes this, in pieces. */
#define ZERO_CHUNK (1u << 20)
static _Alignas(4096) char zero_buf[ZERO_CHUNK];

struct vdi_nbd_qnode {
	struct vdi_nbd_qnode *next;
	struct vdi_queue *q;
};

static atomic_uint_fast64_t next_conn_id = 1;

/* Connections opened and not yet closed, for .cleanup. */
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_closed = PTHREAD_COND_INITIALIZER;
static unsigned live_conns;

/* The queue this thread made, and for which connection. */
static _Thread_local uint64_t tls_conn;
static _Thread_local struct vdi_queue *tls_queue;

struct vdi_nbd_conn *vdi_nbd_conn_new(void)
{
	struct vdi_nbd_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		nbdkit_error("out of memory");
		return NULL;
	}
	c->id = atomic_fetch_add(&next_conn_id, 1);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_lock(&conns_lock);
	live_conns++;
	pthread_mutex_unlock(&conns_lock);
	return c;
}

/* nbdkit closes a connection after its worker threads have ended: no
 * queue is in use any more. */
void vdi_nbd_conn_free(struct vdi_nbd_conn *c)
{
	struct vdi_nbd_qnode *n;

	if (!c)
		return;
	while ((n = c->queues)) {
		c->queues = n->next;
		vdi_queue_destroy(n->q);
		free(n);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
	pthread_mutex_lock(&conns_lock);
	live_conns--;
	pthread_cond_broadcast(&conns_closed);
	pthread_mutex_unlock(&conns_lock);
}

bool vdi_nbd_conns_wait(unsigned ms)
{
	struct timespec dl;
	bool none;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&conns_lock);
	while (live_conns &&
	       pthread_cond_timedwait(&conns_closed, &conns_lock, &dl) == 0)
		;
	none = live_conns == 0;
	pthread_mutex_unlock(&conns_lock);
	return none;
}

/* The NBD error for a libvdi one.  NBD knows few: EPERM, EIO, ENOMEM,
 * EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN. */
static int nbd_errno(int err)
{
	switch (-err) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return ENOSPC;
	case EINVAL:
	case ERANGE:
		return EINVAL;
	case EPERM:
	case EACCES:
	case EROFS:
	case EBADF:
		return EPERM;
	case ENOMEM:
		return ENOMEM;
	default:
		return EIO;
	}
}

/* Log a failed request and set the error nbdkit sends; -1. */
int vdi_nbd_fail(int err, const char *msg, const char *what, uint64_t count,
		uint64_t offset)
{
	nbdkit_set_error(nbd_errno(err));
	if (count)
		nbdkit_error("%s of %" PRIu64 " bytes at offset %" PRIu64
			     ": %s", what, count, offset, msg);
	else
		nbdkit_error("%s: %s", what, msg);
	return -1;
}

/* This thread's queue for connection `c`, made on first use. */
static struct vdi_queue *get_queue(struct vdi_nbd_conn *c)
{
	struct vdi_nbd_qnode *n;
	struct vdi_queue *q;
	int ret;

	if (tls_conn == c->id)
		return tls_queue;
	n = malloc(sizeof(*n));
	if (!n) {
		vdi_nbd_fail(-ENOMEM, "out of memory", "queue", 0, 0);
		return NULL;
	}
	ret = vdi_queue_create(vdi_nbd_img, QUEUE_DEPTH, 0, &q);
	if (ret < 0) {
		vdi_nbd_fail(ret, vdi_errmsg(), "queue", 0, 0);
		free(n);
		return NULL;
	}
	n->q = q;
	pthread_mutex_lock(&c->lock);
	n->next = c->queues;
	c->queues = n;
	pthread_mutex_unlock(&c->lock);
	tls_conn = c->id;
	tls_queue = q;
	return q;
}

/* Submit what was queued with result `queued` and wait for it: one
 * io_uring_enter submits and waits (vdi_queue_submit_wait), and the reap
 * finds the completion ready. */
static int finish(struct vdi_queue *q, int queued, const char *what,
		  uint64_t count, uint64_t offset)
{
	struct vdi_completion c;
	int ret;

	if (queued < 0)
		return vdi_nbd_fail(queued, vdi_errmsg(), what, count, offset);
	vdi_queue_submit_wait(q);
	ret = vdi_queue_reap(q, &c, 1, 1, NULL);
	if (ret < 0)
		return vdi_nbd_fail(ret, vdi_errmsg(), what, count, offset);
	if (ret != 1)
		return vdi_nbd_fail(-EIO, "no completion", what, count, offset);
	if (c.res < 0)
		return vdi_nbd_fail((int)c.res, strerror((int)-c.res), what, count,
			    offset);
	return 0;
}

static int flush_queue(struct vdi_queue *q)
{
	return finish(q, vdi_queue_flush(q, NULL), "flush", 0, 0);
}

/* FUA: the request completed; make it durable before answering. */
static int maybe_fua(struct vdi_queue *q, uint32_t flags)
{
	return (flags & NBDKIT_FLAG_FUA) ? flush_queue(q) : 0;
}

int vdi_nbd_pread(void *h, void *buf, uint32_t count, uint64_t offset,
		  uint32_t flags)
{
	struct vdi_queue *q = get_queue(h);

	if (!q)
		return -1;
	return finish(q, vdi_queue_read(q, buf, count, offset, NULL), "read",
		      count, offset);
}

int vdi_nbd_pwrite(void *h, const void *buf, uint32_t count,
		   uint64_t offset, uint32_t flags)
{
	struct vdi_queue *q = get_queue(h);

	if (!q)
		return -1;
	if (finish(q, vdi_queue_write(q, buf, count, offset, NULL), "write",
		   count, offset) < 0)
		return -1;
	return maybe_fua(q, flags);
}

int vdi_nbd_flush(void *h, uint32_t flags)
{
	struct vdi_queue *q = get_queue(h);

	return q ? flush_queue(q) : -1;
}

/* Whole blocks of a dynamic or differencing image become zero entries and
 * give their space back; the parts of blocks at either end read as zeros
 * afterwards (zeros are written where they hold data). */
int vdi_nbd_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct vdi_queue *q = get_queue(h);

	if (!q)
		return -1;
	if (finish(q, vdi_queue_discard(q, offset, count, NULL), "trim",
		   count, offset) < 0)
		return -1;
	return maybe_fua(q, flags);
}

/* With may_trim, a dynamic or differencing image zeroes as trim does: a
 * map update for whole blocks, at most two partial blocks written, which
 * is fast.  Without it (NBD_CMD_FLAG_NO_HOLE) the range must stay
 * allocated, so zeros are written, allocating blocks: not fast.  A static
 * image always gets zeros written (libvdi does that), not fast either. */
int vdi_nbd_zero(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	bool unmap = (flags & NBDKIT_FLAG_MAY_TRIM) && !vdi_nbd_static;
	struct vdi_queue *q;

	if (!unmap && (flags & NBDKIT_FLAG_FAST_ZERO)) {
		nbdkit_set_error(ENOTSUP);
		return -1;
	}
	q = get_queue(h);
	if (!q)
		return -1;
	if (unmap || vdi_nbd_static) {
		if (finish(q, vdi_queue_write_zeroes(q, offset, count, NULL),
			   "zero", count, offset) < 0)
			return -1;
		return maybe_fua(q, flags);
	}
	for (uint64_t done = 0; done < count;) {
		uint32_t n = count - done < ZERO_CHUNK ? count - done
						       : ZERO_CHUNK;

		if (finish(q, vdi_queue_write(q, zero_buf, n, offset + done,
					      NULL),
			   "zero", n, offset + done) < 0)
			return -1;
		done += n;
	}
	return maybe_fua(q, flags);
}
