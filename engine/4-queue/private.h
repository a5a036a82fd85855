/* A queue: one io_uring, the requests on it and their SQEs.  Shared by
 * the files of layer 4 (4-queue/) and by no other layer: what the layers
 * above use is in 4-queue/queue.h. */
#ifndef LIBVDI_QUEUE_PRIVATE_H
#define LIBVDI_QUEUE_PRIVATE_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "2-image/image.h"
#include "3-durable/sqe.h"
#include "4-queue/queue.h"
#include "vdi.h"

struct vdi_image;

/* OP_ZERO: write zeros; whole blocks of dynamic images become zero entries
 * and their space is punched out of the file. */
enum vdi_op { OP_READ, OP_WRITE, OP_FLUSH, OP_ZERO };

/* A request as the caller queued it. */
struct vdi_req {
	struct vdi_req *next;
	void *tag;
	enum vdi_op op;
	bool fixed;
	unsigned buf_index;
	uint64_t offset;
	size_t len;
	int iovcnt;
	struct iovec *iov;    /* iov_one, or a copy the request owns */
	struct iovec iov_one;
	unsigned inflight;    /* SQEs not yet completed, +1 while preparing */
	int err;              /* first error, negative errno */
};

struct vdi_queue {
	struct vdi_image *img;
	struct io_uring ring;
	unsigned depth;
	unsigned flags;       /* VDI_QUEUE_* that stayed on */
	bool fixed_files;     /* fds registered: index 0 data, 1 metadata */
	bool internal;        /* in the image's synchronous pool */
	struct vdi_queue *pool_next;
	/* Users' queues: the image's list (under its lock), and the thread
	 * that last submitted or reaped (see reap_siblings, queue.c). */
	struct vdi_queue *user_next;
	_Atomic int owner;

	unsigned nr_reqs;     /* queued, in flight or awaiting reap */
	unsigned inflight_reqs;
	struct vdi_req *pending_head, *pending_tail;
	struct vdi_req *free_reqs;
	struct vdi_sub *free_subs;
	unsigned meta_inflight;
	unsigned resubmits;   /* SQEs prepared while reaping */
	bool submitting;      /* in ring_submit(): nested calls only queue */
	struct vdi_req *retry_flushes; /* flushes to prepare again */
	/* Pieces of writes that wait for a block another write holds
	 * (2-image/fresh.h): prepared again by vdi_retry_deferred. */
	struct vdi_sub *deferred, **deferred_tail;

	struct vdi_completion *done; /* ring of `depth` completions */
	unsigned done_head, done_count;

	/* Bounce buffers of finished SQEs, kept for the next ones: a new
	 * buffer of a megabyte costs a page fault per page (queue.c). */
	struct vdi_bounce {
		void *p;
		size_t size;
	} bounces[8];
	unsigned nbounces;
};

/* queue.c, for split.c: subs and requests, SQEs. */
struct vdi_sub *vdi_sub_get(struct vdi_queue *q);
void vdi_req_complete(struct vdi_queue *q, struct vdi_req *r);
void *vdi_bounce_get(struct vdi_queue *q, size_t len, size_t *size);
void vdi_bounce_put(struct vdi_queue *q, void *p, size_t size);

/* Inline, as the two below: each runs once or twice per request, on the
 * way in and on the way out. */
static inline void vdi_sub_put(struct vdi_queue *q, struct vdi_sub *s)
{
	if (s->claim_hi)
		vdi_fresh_release(&q->img->fresh, s->claim_lo, s->claim_hi);
	if (s->iov)
		free(s->iov);
	if (s->bounce)
		vdi_bounce_put(q, s->bounce, s->bounce_size);
	s->next = q->free_subs;
	q->free_subs = s;
}

/* One of the request's SQEs (or its preparation) is done: the last one
 * completes it. */
static inline void vdi_req_sub_done(struct vdi_queue *q, struct vdi_req *r)
{
	if (--r->inflight == 0)
		vdi_req_complete(q, r);
}

/* An SQE of the queue's ring, or NULL when the ring stays full even
 * after a submission (vdi_get_sqe_full, in queue.c). */
struct io_uring_sqe *vdi_get_sqe_full(struct vdi_queue *q);

static inline struct io_uring_sqe *vdi_get_sqe(struct vdi_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	return sqe ? sqe : vdi_get_sqe_full(q);
}

static inline void vdi_q_set_fd(struct vdi_queue *q, struct io_uring_sqe *sqe,
				int which)
{
	vdi_sqe_set_fd(q->img, sqe, which, q->fixed_files);
}

int vdi_sub_issue(struct vdi_queue *q, struct vdi_sub *s);

/* split.c: prepare a read/write or a write-zeroes request (errors go into
 * r->err); copy between a request's buffers and memory. */
void vdi_prep_rw(struct vdi_queue *q, struct vdi_req *r);
void vdi_prep_zero(struct vdi_queue *q, struct vdi_req *r);
void vdi_iov_copy(const struct vdi_req *r, size_t pos, size_t n,
		  unsigned char *mem, bool to_user);
/* Prepare the deferred pieces again (some may wait again). */
void vdi_retry_deferred(struct vdi_queue *q);

#endif
