/* The I/O core: requests are split at VDI block boundaries, runs that are
 * contiguous in the file go out as one SQE, reads of unallocated blocks
 * complete without I/O, and block-map/header updates are written once per
 * submission batch.  See docs/design.md for the ordering rules. */
#include "4-queue/private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "0-base/error.h"
#include "0-base/fault.h"
#include "2-image/image.h"
#include "3-durable/durable.h"

static int ring_submit_wait(struct vdi_queue *q, const char *fn,
			    unsigned wait_nr);

static int ring_submit(struct vdi_queue *q, const char *fn)
{
	return ring_submit_wait(q, fn, 0);
}

/* ---- pools --------------------------------------------------------------- */

/* A sub from the pool, not cleared: the caller sets every field (each
 * SQE's sub once, with a compound literal). */
struct vdi_sub *vdi_sub_get(struct vdi_queue *q)
{
	struct vdi_sub *s = q->free_subs;

	if (s)
		q->free_subs = s->next;
	else
		s = malloc(sizeof(*s));
	return s;
}

/* Buffers up to this size are kept, at most BOUNCE_KEEP_BYTES in all:
 * enough for a 1 MiB request at any alignment per request in flight of a
 * queue at depth 8, or one per nbdkit thread. */
#define BOUNCE_ROUND (64u << 10)
#define BOUNCE_KEEP_MAX ((4u << 20) + BOUNCE_ROUND)
#define BOUNCE_KEEP_BYTES (10u << 20)
#define BOUNCE_KEEP (sizeof(((struct vdi_queue *)0)->bounces) / \
		     sizeof(((struct vdi_queue *)0)->bounces[0]))

/* An O_DIRECT-aligned buffer of at least len bytes, not cleared: the
 * smallest kept one that fits, or a new one.  *size is its real size. */
void *vdi_bounce_get(struct vdi_queue *q, size_t len, size_t *size)
{
	unsigned i, best = q->nbounces;
	size_t align = q->img->dio_align < 4096 ? 4096 : q->img->dio_align;
	void *p;

	for (i = 0; i < q->nbounces; i++)
		if (q->bounces[i].size >= len &&
		    (best == q->nbounces ||
		     q->bounces[i].size < q->bounces[best].size))
			best = i;
	if (best < q->nbounces) {
		p = q->bounces[best].p;
		*size = q->bounces[best].size;
		q->bounces[best] = q->bounces[--q->nbounces];
		return p;
	}
	len = (len + BOUNCE_ROUND - 1) / BOUNCE_ROUND * BOUNCE_ROUND;
	if (posix_memalign(&p, align, len))
		return NULL;
	*size = len;
	return p;
}

void vdi_bounce_put(struct vdi_queue *q, void *p, size_t size)
{
	size_t kept = size;
	unsigned i;

	for (i = 0; i < q->nbounces; i++)
		kept += q->bounces[i].size;
	if (q->nbounces == BOUNCE_KEEP || size > BOUNCE_KEEP_MAX ||
	    kept > BOUNCE_KEEP_BYTES) {
		free(p);
		return;
	}
	q->bounces[q->nbounces++] = (struct vdi_bounce){ p, size };
}

static void req_put(struct vdi_queue *q, struct vdi_req *r)
{
	if (r->iov != &r->iov_one)
		free(r->iov);
	r->next = q->free_reqs;
	q->free_reqs = r;
}

/* The request is done: its completion goes on the queue's ring of
 * completions for vdi_queue_reap, the request back to the pool. */
void vdi_req_complete(struct vdi_queue *q, struct vdi_req *r)
{
	unsigned slot = (q->done_head + q->done_count) % q->depth;

	q->done[slot].tag = r->tag;
	q->done[slot].res = r->err ? r->err : (int64_t)r->len;
	q->done_count++;
	q->inflight_reqs--;
	req_put(q, r);
}

/* ---- SQE preparation ------------------------------------------------------ */

struct io_uring_sqe *vdi_get_sqe_full(struct vdi_queue *q)
{
	struct io_uring_sqe *sqe;

	/* The ring is full: submit what it holds.  If the kernel refuses
	 * it, its requests fail, which makes room too. */
	ring_submit(q, "vdi_queue_submit");
	sqe = io_uring_get_sqe(&q->ring);
	/* A polling kernel thread takes them in its own time. */
	if (!sqe && (q->ring.flags & IORING_SETUP_SQPOLL) &&
	    io_uring_sqring_wait(&q->ring) >= 0)
		sqe = io_uring_get_sqe(&q->ring);
	return sqe;
}

/* Put the (remaining part of the) sub on the ring. */
int vdi_sub_issue(struct vdi_queue *q, struct vdi_sub *s)
{
	struct io_uring_sqe *sqe = vdi_get_sqe(q);
	bool rd = s->kind == SUB_READ;
	struct vdi_req *r = s->req;

	if (!sqe)
		return -EBUSY;
	if (s->iov) {
		if (rd)
			io_uring_prep_readv(sqe, 0, s->iov, (unsigned)s->iovcnt,
					    s->file_off);
		else
			io_uring_prep_writev(sqe, 0, s->iov, (unsigned)s->iovcnt,
					     s->file_off);
	} else if (r && r->fixed && !s->bounce) {
		if (rd)
			io_uring_prep_read_fixed(sqe, 0, s->buf, (unsigned)s->len,
						 s->file_off, (int)r->buf_index);
		else
			io_uring_prep_write_fixed(sqe, 0, s->buf, (unsigned)s->len,
						  s->file_off, (int)r->buf_index);
	} else {
		if (rd)
			io_uring_prep_read(sqe, 0, s->buf, (unsigned)s->len,
					   s->file_off);
		else
			io_uring_prep_write(sqe, 0, s->buf, (unsigned)s->len,
					    s->file_off);
	}
	if (s->src)
		sqe->fd = s->src->fd; /* a parent's file: not registered */
	else
		vdi_q_set_fd(q, sqe, s->kind == SUB_META || s->buffered
					     ? FD_META : FD_DATA);
	io_uring_sqe_set_data(sqe, s);
	atomic_fetch_add_explicit(&q->img->stats.sqes, 1, memory_order_relaxed);
	return 0;
}

/* ---- completions ---------------------------------------------------------- */

static void data_done(struct vdi_queue *q, struct vdi_sub *s, int res)
{
	struct vdi_image *img = q->img;
	struct vdi_req *r = s->req;

	if (res == -EAGAIN || res == -EINTR)
		goto again;
	if (res < 0) {
		if (!r->err)
			r->err = res;
		goto done;
	}
	if ((size_t)res < s->len) {
		if (res == 0 && s->kind == SUB_WRITE) {
			if (!r->err)
				r->err = -EIO;
			goto done;
		}
		if (res == 0) {
			/* Reading past the end of the file: a block whose
			 * tail the file does not hold reads as zeros. */
			if (s->iov) {
				int i;

				for (i = 0; i < s->iovcnt; i++)
					memset(s->iov[i].iov_base, 0,
					       s->iov[i].iov_len);
			} else {
				memset(s->buf, 0, s->len);
			}
			goto finished;
		}
		/* Short transfer: go on from where it stopped. */
		s->file_off += (uint64_t)res;
		s->len -= (size_t)res;
		if (s->iov) {
			size_t left = (size_t)res;

			while (left && s->iovcnt) {
				if (left >= s->iov[0].iov_len) {
					left -= s->iov[0].iov_len;
					memmove(s->iov, s->iov + 1,
						sizeof(*s->iov) *
							(size_t)--s->iovcnt);
				} else {
					s->iov[0].iov_base =
						(char *)s->iov[0].iov_base + left;
					s->iov[0].iov_len -= left;
					left = 0;
				}
			}
		} else {
			s->buf += res;
		}
		goto again;
	}
finished:
	if (s->kind == SUB_READ) {
		if (s->bounce)
			vdi_iov_copy(r, s->req_pos, s->user_len,
				 s->bounce + s->bounce_skip, true);
		atomic_fetch_add_explicit(&img->stats.data_read_bytes,
					  s->user_len, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&img->stats.data_write_bytes,
					  s->user_len, memory_order_relaxed);
		/* Only a write that landed makes its new blocks durable: a
		 * failed one leaves the on-disk entry (and, in a
		 * differencing image, the parent's data) as it was. */
		if (s->publish)
			vdi_durable_publish(img, s->vb, s->nblocks);
	}
done:
	vdi_sub_put(q, s);
	vdi_req_sub_done(q, r);
	return;
again:
	if (vdi_sub_issue(q, s) < 0) {
		if (!r->err)
			r->err = -EIO;
		goto done;
	}
	q->resubmits++;
}

static void fsync_done(struct vdi_queue *q, struct vdi_sub *s, int res)
{
	struct vdi_image *img = q->img;
	struct vdi_req *r = s->req;

	if (res == -EAGAIN || res == -EINTR) {
		/* The fsync itself is simply done again. */
		vdi_sub_put(q, s);
		r->next = q->retry_flushes;
		q->retry_flushes = r;
		return;
	}
	if (res == -ECANCELED || res == 0) {
		/* A write linked before the fsync (the barrier or the map)
		 * failed; or one failed since the flush was prepared: the
		 * flush reports it, once. */
		int err = vdi_durable_take_error(img);

		if (res == 0)
			res = err;
		else if ((res = err) == 0) {
			/* Only EAGAIN/EINTR: do the whole flush again. */
			vdi_sub_put(q, s);
			r->next = q->retry_flushes;
			q->retry_flushes = r;
			return;
		}
	}
	if (res < 0 && !r->err)
		r->err = vdi_error(res, "vdi_queue_flush", q->img->path,
				   "flush failed: %s", strerror(-res));
	vdi_sub_put(q, s);
	vdi_req_sub_done(q, r);
}

static void punch_done(struct vdi_queue *q, struct vdi_sub *s, int res)
{
	struct vdi_image *img = q->img;
	struct vdi_req *r = s->req;

	/* The block keeps its slot, which now reads zeros: for the map this
	 * is a write that landed (a block allocated but not yet published,
	 * or pending in a differencing image, is published like one).  A
	 * punch that failed left the data there: the request fails. */
	if (res >= 0)
		vdi_durable_publish(img, s->vb, 1);
	else if (!r->err)
		r->err = vdi_error(res, "vdi_queue_submit", img->path,
				   "cannot punch out block %" PRIu32 " (it "
				   "keeps its data): %s", s->vb,
				   strerror(-res));
	vdi_sub_put(q, s);
	vdi_req_sub_done(q, r);
}

/* Handle every CQE that is ready; returns how many. */
static unsigned process_cqes(struct vdi_queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int res;

	/* Completions the kernel holds for this thread to post (a ring with
	 * COOP_TASKRUN): one entry into the kernel posts them, as the
	 * interrupt did that such rings do without. */
	if (IO_URING_READ_ONCE(*q->ring.sq.kflags) & IORING_SQ_TASKRUN)
		io_uring_get_events(&q->ring);
	io_uring_for_each_cqe(&q->ring, head, cqe) {
		struct vdi_sub *s = io_uring_cqe_get_data(cqe);

		n++;
		switch (s->kind) {
		case SUB_META:
			/* A block-map or header write of a flush. */
			vdi_durable_meta_done(q->img, &q->meta_inflight, s,
					      cqe->res);
			break;
		case SUB_BARRIER:
			vdi_durable_barrier_done(q->img, &q->meta_inflight, s,
				vdi_fault_filter(VDI_IO_FSYNC, 0, NULL, 0,
						 cqe->res));
			break;
		case SUB_FSYNC:
			fsync_done(q, s, vdi_fault_filter(VDI_IO_FSYNC, 0, NULL,
							  0, cqe->res));
			break;
		case SUB_PUNCH:
			punch_done(q, s, vdi_fault_filter(VDI_IO_WRITE,
					s->file_off, NULL, s->len, cqe->res));
			break;
		default: /* data; one call of data_done, which is inlined */
			if (s->kind == SUB_READ)
				res = vdi_fault_filter(VDI_IO_READ, s->file_off,
						       NULL, s->len, cqe->res);
			else if (s->iov)
				res = vdi_fault_filter_iov(VDI_IO_WRITE,
					s->file_off, s->len, s->iov, s->iovcnt,
					cqe->res);
			else
				res = vdi_fault_filter(VDI_IO_WRITE, s->file_off,
						       s->buf, s->len, cqe->res);
			data_done(q, s, res);
		}
	}
	io_uring_cq_advance(&q->ring, n);
	if (q->resubmits) {
		q->resubmits = 0;
		ring_submit(q, "vdi_queue_reap");
	}
	return n;
}

/* How long a queue with deferred pieces waits before it looks again: the
 * block they wait for may be another queue's, whose completion wakes
 * only that queue. */
#define DEFER_POLL_NS 100000

/* The calling thread's id, for `owner`. */
static int my_tid(void)
{
	static _Thread_local int tid;

	if (!tid)
		tid = (int)gettid();
	return tid;
}

/* A deferred piece may wait for a block that a write on another queue of
 * this thread holds, and nobody reaps that queue while this thread waits
 * here (a write queued and not yet reaped, then a synchronous write next
 * to it): handle those queues' completions, which gives their blocks
 * back.  Their requests complete for their own reap. */
static void reap_siblings(struct vdi_queue *q)
{
	struct vdi_image *img = q->img;
	struct vdi_queue *mine[16], *s;
	unsigned n = 0, i;

	pthread_mutex_lock(&img->lock);
	for (s = img->user_queues; s && n < 16; s = s->user_next)
		if (s != q &&
		    atomic_load_explicit(&s->owner, memory_order_relaxed) ==
			    my_tid() &&
		    s->inflight_reqs)
			mine[n++] = s;
	pthread_mutex_unlock(&img->lock);
	for (i = 0; i < n; i++)
		process_cqes(mine[i]);
}

/* Wait for one CQE (or the deadline) and handle what is ready.  With
 * deferred pieces, at most DEFER_POLL_NS (then 0, not -ETIME), and the
 * completions of this thread's other queues are handled too. */
static int wait_and_process(struct vdi_queue *q, const struct timespec *deadline)
{
	struct io_uring_cqe *cqe;
	int64_t ns = INT64_MAX;
	bool poll = false;
	int ret;

	if (deadline) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ns = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000 +
		     (deadline->tv_nsec - now.tv_nsec);
		if (ns <= 0)
			return -ETIME;
	}
	if (q->deferred && ns > DEFER_POLL_NS) {
		ns = DEFER_POLL_NS;
		poll = true;
	}
	if (ns != INT64_MAX) {
		struct __kernel_timespec ts = { .tv_sec = ns / 1000000000,
						.tv_nsec = ns % 1000000000 };

		ret = io_uring_wait_cqe_timeout(&q->ring, &cqe, &ts);
		if (ret == -ETIME && poll) {
			reap_siblings(q);
			ret = 0;
		}
	} else {
		ret = io_uring_wait_cqe(&q->ring, &cqe);
	}
	atomic_fetch_add_explicit(&q->img->stats.enters, 1,
				  memory_order_relaxed);
	if (ret < 0 && ret != -EINTR)
		return ret;
	process_cqes(q);
	return 0;
}

/* ---- submission ------------------------------------------------------------ */

/* io_uring_enter may take fewer SQEs than it was given, or none.  EINTR (a
 * signal), EAGAIN (the kernel could not allocate requests) and EBUSY (its
 * completion queue overflowed and must be reaped first) pass; other errors
 * (ENOMEM, EBADF, ...) do not.  A passing error is retried up to
 * SUBMIT_TRIES times in a row without progress, after handling completions
 * or waiting up to SUBMIT_WAIT_NS for one: at most about half a second. */
#define SUBMIT_TRIES 50
#define SUBMIT_WAIT_NS 10000000L

/* An SQE the kernel never took: finish its sub as failed with `err`,
 * without the retries that a completion with EAGAIN or EINTR gets.  Not
 * under the image lock. */
static void sub_not_taken(struct vdi_queue *q, struct vdi_sub *s, int err)
{
	struct vdi_req *r = s->req;

	switch (s->kind) {
	case SUB_META:
		/* A flush's map or header write: dirty again, for the next
		 * write-back.  The flush's fsync, linked after it and so not
		 * taken either, reports the error. */
		vdi_durable_meta_done(q->img, &q->meta_inflight, s, -ECANCELED);
		break;
	case SUB_BARRIER:
		vdi_durable_barrier_lost(q->img, &q->meta_inflight, s);
		break;
	case SUB_PUNCH:
		/* The block keeps its data: the request fails. */
		punch_done(q, s, err);
		break;
	default:
		/* Data, or a flush's fsync.  A write publishes nothing: a
		 * block it allocated does not enter the on-disk map. */
		if (!r->err)
			r->err = err;
		vdi_sub_put(q, s);
		vdi_req_sub_done(q, r);
	}
}

/* Take the SQEs the kernel has not taken off the ring (see
 * vdi_ring_take_back) and finish each as failed with `err`; returns how
 * many. */
static unsigned fail_not_taken(struct vdi_queue *q, int err)
{
	struct vdi_sub *list = NULL, **link = &list, *s;
	unsigned n = vdi_ring_take_back(&q->ring, vdi_collect_sub, &link);

	while ((s = list)) {
		list = s->next;
		sub_not_taken(q, s, err);
	}
	return n;
}

/* The kernel said EAGAIN or EBUSY: handle the completions that are ready,
 * or wait a little for one.  Completions free the requests the kernel
 * lacked, and reaping ends an overflow. */
static void make_room(struct vdi_queue *q)
{
	struct timespec dl;

	if (io_uring_cq_ready(&q->ring)) {
		process_cqes(q);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_nsec += SUBMIT_WAIT_NS;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	wait_and_process(q, &dl);
}

/* One io_uring_enter through the fault seam: see vdi_fault_submit_wait. */
static int submit_once(struct vdi_queue *q, unsigned wait_nr)
{
	int ret = vdi_fault_submit_wait(&q->ring, VDI_RING_QUEUE, wait_nr);

	atomic_fetch_add_explicit(&q->img->stats.enters, 1,
				  memory_order_relaxed);
	return ret;
}

/* ring_submit_wait after a first submission that returned `ret` and did
 * not hand over everything.  Apart and not inlined, so that the usual case
 * pays for none of this. */
static __attribute__((noinline)) int submit_rest(struct vdi_queue *q,
						 const char *fn,
						 unsigned wait_nr, int ret)
{
	unsigned tries = 0, n;
	int err = 0;

	q->submitting = true;
	for (; vdi_ring_not_taken(&q->ring); ret = submit_once(q, wait_nr)) {
		if (ret > 0) {
			tries = 0;
			continue;
		}
		if (ret == 0)
			ret = -EAGAIN; /* took none and said nothing */
		if (ret == -EINTR && ++tries < SUBMIT_TRIES)
			continue;
		if ((ret == -EAGAIN || ret == -EBUSY) && ++tries < SUBMIT_TRIES) {
			make_room(q);
			continue;
		}
		n = fail_not_taken(q, ret);
		err = vdi_error(ret, fn, q->img->path,
				"io_uring_submit: %s%s (%u SQEs not submitted; "
				"their requests complete with this error)",
				strerror(-ret),
				ret == -EEXIST &&
						(q->flags & VDI_QUEUE_ONE_THREAD)
					? ": the queue was made with "
					  "VDI_QUEUE_ONE_THREAD by another thread"
					: "",
				n);
		tries = 0;
		while (q->meta_inflight)
			if (wait_and_process(q, NULL) < 0)
				break;
	}
	q->submitting = false;
	return err;
}

/* Submit what the ring holds until the kernel has taken all of it: after
 * a short count the rest goes again, EINTR is retried, EAGAIN and EBUSY
 * after make_room().  When the kernel refuses for good (another error, or
 * SUBMIT_TRIES passing ones in a row), what it did not take fails with the
 * error through the completion path, so every request still completes
 * once and none waits for an SQE the kernel never saw.  Then the part of a
 * flush's metadata chain that the kernel did take is waited for: the
 * image's metadata must not stay owned by a queue that nobody may reap
 * (a pooled one).  Returns 0 or the error, with a message naming `fn`.
 * Nested (from completions that make_room() handles) it does nothing:
 * the outer call submits what they queue.  Not under the image lock.
 * With `wait_nr` (at most the SQEs on the ring, so that the completions
 * can come), the io_uring_enter that hands the kernel the last of them
 * also waits until that many completions are ready: a submission and a
 * wait in one system call. */
static int ring_submit_wait(struct vdi_queue *q, const char *fn,
			    unsigned wait_nr)
{
	int ret;

	if (q->submitting || !vdi_ring_not_taken(&q->ring))
		return 0;
	ret = submit_once(q, wait_nr);
	if (ret > 0 && !vdi_ring_not_taken(&q->ring))
		return 0; /* the usual case: all taken at once */
	return submit_rest(q, fn, wait_nr, ret);
}

/* Wait until this queue has no metadata writes in flight. */
static void drain_own_meta(struct vdi_queue *q)
{
	ring_submit(q, "vdi_queue_flush");
	while (q->meta_inflight)
		if (wait_and_process(q, NULL) < 0)
			break;
}

/* ---- flush ----------------------------------------------------------------- */

static void drain_cb(void *opaque)
{
	drain_own_meta(opaque);
}

/* A flush: its metadata chain (3-durable/durable.c), then an fsync that
 * completes the request. */
static void prep_flush(struct vdi_queue *q, struct vdi_req *r)
{
	struct vdi_image *img = q->img;
	const struct vdi_flush_ring fr = {
		.ring = &q->ring,
		.fixed_files = q->fixed_files,
		.polled = q->flags & VDI_QUEUE_IOPOLL,
		.meta_inflight = &q->meta_inflight,
		.drain = drain_cb,
		.opaque = q,
	};
	struct io_uring_sqe *sqe;
	struct vdi_sub *s;
	bool said; /* ret came with a message naming it */
	int ret;

	r->inflight = 1;
	atomic_fetch_add(&img->stats.flushes, 1);
	/* The whole chain (barrier, map, header, fsync) must go out in one
	 * submission: a submit in its middle would cut the links.  Make room
	 * before taking the lock (a refused submission completes requests,
	 * which takes it). */
	if (io_uring_sq_space_left(&q->ring) < VDI_META_MAX_WRITES + 3)
		ring_submit(q, "vdi_queue_flush");
	ret = vdi_durable_flush_prep(img, &fr, &said);
	if (ret != 0) /* an error, or done without the ring (1) */
		goto out;
	s = vdi_sub_get(q);
	sqe = s ? vdi_get_sqe(q) : NULL;
	if (!sqe) {
		if (s)
			vdi_sub_put(q, s);
		ret = s ? -EBUSY : -ENOMEM;
		goto out;
	}
	*s = (struct vdi_sub){ .kind = SUB_FSYNC, .req = r };
	io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
	vdi_q_set_fd(q, sqe, FD_META);
	io_uring_sqe_set_data(sqe, s);
	atomic_fetch_add(&img->stats.sqes, 1);
	r->inflight++;
out:
	if (ret < 0 && !r->err)
		r->err = said ? ret
			      : vdi_error(ret, "vdi_queue_flush", img->path,
					  "flush failed: %s", strerror(-ret));
	vdi_req_sub_done(q, r);
}

/* Flushes whose linked metadata writes hit EAGAIN/EINTR start again. */
static void retry_flushes(struct vdi_queue *q)
{
	struct vdi_req *r;

	if (!q->retry_flushes)
		return;
	while ((r = q->retry_flushes)) {
		q->retry_flushes = r->next;
		r->next = NULL;
		prep_flush(q, r);
	}
	ring_submit(q, "vdi_queue_flush");
}

/* ---- public API ------------------------------------------------------------ */

/* Polled completions need a device with poll queues; elsewhere the ring
 * is made but reads fail with EOPNOTSUPP.  Ask sysfs first. */
static bool device_polls(const struct vdi_image *img)
{
	static const char *const fmt[] = {
		"/sys/dev/block/%u:%u/queue/io_poll",
		"/sys/dev/block/%u:%u/../queue/io_poll", /* a partition */
	};
	struct stat st;
	char path[96], c = '0';
	size_t i;

	if (fstat(img->fd, &st) < 0)
		return false;
	for (i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		FILE *f;

		snprintf(path, sizeof(path), fmt[i], major(st.st_dev),
			 minor(st.st_dev));
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fread(&c, 1, 1, f) != 1)
			c = '0';
		fclose(f);
		return c == '1';
	}
	return false;
}

static unsigned ring_entries(unsigned depth)
{
	unsigned n = 32;

	while (n < depth * 2 && n < 4096)
		n <<= 1;
	return n;
}

int vdi_queue_create_internal(struct vdi_image *img, unsigned depth,
			      unsigned flags, bool internal,
			      struct vdi_queue **out)
{
	struct io_uring_params p;
	struct vdi_queue *q;
	int fds[2] = { img->fd, img->meta_fd };
	bool coop = true;
	int ret;

	*out = NULL;
	if (depth == 0 || depth > 65536)
		return vdi_error(-EINVAL, "vdi_queue_create", img->path,
				 "depth %u is not in 1..65536", depth);
	q = calloc(1, sizeof(*q));
	if (!q || !(q->done = calloc(depth, sizeof(*q->done)))) {
		free(q);
		return vdi_error(-ENOMEM, "vdi_queue_create", img->path,
				 "out of memory");
	}
	q->img = img;
	q->depth = depth;
	q->internal = internal;

	if ((flags & VDI_QUEUE_IOPOLL) &&
	    (!(img->flags & VDI_OPEN_DIRECT) || !device_polls(img)))
		flags &= ~VDI_QUEUE_IOPOLL;
	for (;;) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = ring_entries(depth) * 4;
		if (flags & VDI_QUEUE_SQPOLL) {
			p.flags |= IORING_SETUP_SQPOLL;
			p.sq_thread_idle = 1000;
		} else if (coop) {
			/* Completions wait for this thread's next entry into
			 * the kernel instead of interrupting it; the flag
			 * tells process_cqes when that is needed. */
			p.flags |= IORING_SETUP_COOP_TASKRUN |
				   IORING_SETUP_TASKRUN_FLAG;
			/* With one thread promised: only when it waits or
			 * reaps (io_uring_get_events, in process_cqes). */
			if (flags & VDI_QUEUE_ONE_THREAD)
				p.flags |= IORING_SETUP_SINGLE_ISSUER |
					   IORING_SETUP_DEFER_TASKRUN;
		}
		if (flags & VDI_QUEUE_IOPOLL)
			p.flags |= IORING_SETUP_IOPOLL;
		ret = io_uring_queue_init_params(ring_entries(depth), &q->ring,
						 &p);
		if (ret == 0)
			break;
		if (ret == -EINVAL && (p.flags & IORING_SETUP_DEFER_TASKRUN))
			flags &= ~VDI_QUEUE_ONE_THREAD; /* before Linux 6.1 */
		else if (coop && ret == -EINVAL &&
			 (p.flags & IORING_SETUP_COOP_TASKRUN))
			coop = false; /* before Linux 5.19 */
		else if (flags & VDI_QUEUE_SQPOLL)
			flags &= ~VDI_QUEUE_SQPOLL;
		else if (flags & VDI_QUEUE_IOPOLL)
			flags &= ~VDI_QUEUE_IOPOLL;
		else {
			free(q->done);
			free(q);
			return vdi_error(ret, "vdi_queue_create", img->path,
					 "io_uring_queue_init: %s",
					 strerror(-ret));
		}
	}
	if (!(p.flags & IORING_SETUP_DEFER_TASKRUN))
		flags &= ~VDI_QUEUE_ONE_THREAD;
	q->flags = flags;
	q->fixed_files = io_uring_register_files(&q->ring, fds, 2) == 0;
	if (!internal) {
		q->owner = my_tid();
		pthread_mutex_lock(&img->lock);
		img->live_queues++;
		q->user_next = img->user_queues;
		img->user_queues = q;
		pthread_mutex_unlock(&img->lock);
	}
	*out = q;
	return 0;
}

int vdi_queue_create(struct vdi_image *img, unsigned depth, unsigned flags,
		     struct vdi_queue **out)
{
	vdi_error_clear();
	if (flags & ~(VDI_QUEUE_SQPOLL | VDI_QUEUE_IOPOLL |
		      VDI_QUEUE_ONE_THREAD)) {
		*out = NULL;
		return vdi_error(-EINVAL, __func__, img->path,
				 "unknown flags 0x%x", flags);
	}
	return vdi_queue_create_internal(img, depth, flags, false, out);
}

struct vdi_queue **vdi_queue_pool_link(struct vdi_queue *q)
{
	return &q->pool_next;
}

unsigned vdi_queue_flags(const struct vdi_queue *q)
{
	return q->flags;
}

void vdi_queue_destroy(struct vdi_queue *q)
{
	struct vdi_image *img;
	struct vdi_req *r;
	struct vdi_sub *s;

	if (!q)
		return;
	img = q->img;
	while ((r = q->pending_head)) {
		q->pending_head = r->next;
		req_put(q, r);
	}
	ring_submit(q, "vdi_queue_destroy");
	while (q->inflight_reqs || q->meta_inflight) {
		if (q->deferred) {
			vdi_retry_deferred(q);
			ring_submit(q, "vdi_queue_destroy");
		}
		if (wait_and_process(q, NULL) < 0)
			break;
		retry_flushes(q);
		q->done_count = 0; /* nobody will reap them */
	}
	io_uring_queue_exit(&q->ring);
	while ((r = q->free_reqs)) {
		q->free_reqs = r->next;
		free(r);
	}
	while ((s = q->free_subs)) {
		q->free_subs = s->next;
		free(s);
	}
	while (q->nbounces)
		free(q->bounces[--q->nbounces].p);
	if (!q->internal) {
		struct vdi_queue **pp;

		pthread_mutex_lock(&img->lock);
		img->live_queues--;
		for (pp = &img->user_queues; *pp; pp = &(*pp)->user_next)
			if (*pp == q) {
				*pp = q->user_next;
				break;
			}
		pthread_mutex_unlock(&img->lock);
	}
	free(q->done);
	free(q);
}

int vdi_queue_register_buffers(struct vdi_queue *q, const struct iovec *iov,
			       unsigned nr)
{
	int ret = io_uring_register_buffers(&q->ring, iov, nr);

	if (ret < 0)
		return vdi_error(ret, __func__, q->img->path,
				 "io_uring_register_buffers: %s",
				 strerror(-ret));
	return 0;
}

static int queue_req(struct vdi_queue *q, enum vdi_op op,
		     const struct iovec *iov, int iovcnt, uint64_t offset,
		     bool fixed, unsigned buf_index, void *tag,
		     const char *fn)
{
	struct vdi_image *img = q->img;
	struct vdi_req *r;
	size_t len = 0;
	int i;

	if (q->nr_reqs >= q->depth)
		return vdi_error(-EAGAIN, fn, img->path,
				 "queue is full (%u requests); reap first",
				 q->depth);
	if ((op == OP_WRITE || op == OP_ZERO) && (img->flags & VDI_OPEN_RDONLY))
		return vdi_error(-EBADF, fn, img->path,
				 "image is open read-only");
	if (iovcnt < 0 || iovcnt > 1024)
		return vdi_error(-EINVAL, fn, img->path,
				 "iovcnt %d is not in 0..1024", iovcnt);
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SIZE_MAX / 2 - len)
			return vdi_error(-EINVAL, fn, img->path,
					 "request is too long");
		len += iov[i].iov_len;
	}
	if (op != OP_FLUSH &&
	    (offset > img->disk_size || len > img->disk_size - offset))
		return vdi_error(-EINVAL, fn, img->path,
				 "request of %zu bytes at %" PRIu64
				 " goes past the end of the disk (%" PRIu64
				 " bytes)", len, offset, img->disk_size);
	r = q->free_reqs;
	if (r)
		q->free_reqs = r->next;
	else if (!(r = malloc(sizeof(*r))))
		return vdi_error(-ENOMEM, fn, img->path, "out of memory");
	*r = (struct vdi_req){
		.tag = tag,
		.op = op,
		.fixed = fixed,
		.buf_index = buf_index,
		.offset = offset,
		.len = len,
		.iovcnt = iovcnt,
		.iov = &r->iov_one,
	};
	if (iovcnt == 1) {
		r->iov_one = iov[0];
	} else if (iovcnt > 1) {
		r->iov = malloc(sizeof(*iov) * (size_t)iovcnt);
		if (!r->iov) {
			r->iov = &r->iov_one;
			req_put(q, r);
			return vdi_error(-ENOMEM, fn, img->path,
					 "out of memory");
		}
		memcpy(r->iov, iov, sizeof(*iov) * (size_t)iovcnt);
	}
	if (op == OP_WRITE || op == OP_ZERO)
		vdi_image_touch(img);
	if (q->pending_tail)
		q->pending_tail->next = r;
	else
		q->pending_head = r;
	q->pending_tail = r;
	q->nr_reqs++;
	return 0;
}

int vdi_queue_readv(struct vdi_queue *q, const struct iovec *iov, int iovcnt,
		    uint64_t offset, void *tag)
{
	return queue_req(q, OP_READ, iov, iovcnt, offset, false, 0, tag,
			 __func__);
}

int vdi_queue_writev(struct vdi_queue *q, const struct iovec *iov, int iovcnt,
		     uint64_t offset, void *tag)
{
	return queue_req(q, OP_WRITE, iov, iovcnt, offset, false, 0, tag,
			 __func__);
}

int vdi_queue_read(struct vdi_queue *q, void *buf, size_t len,
		   uint64_t offset, void *tag)
{
	struct iovec v = { buf, len };

	return queue_req(q, OP_READ, &v, 1, offset, false, 0, tag, __func__);
}

int vdi_queue_write(struct vdi_queue *q, const void *buf, size_t len,
		    uint64_t offset, void *tag)
{
	struct iovec v = { (void *)buf, len };

	return queue_req(q, OP_WRITE, &v, 1, offset, false, 0, tag, __func__);
}

int vdi_queue_read_fixed(struct vdi_queue *q, void *buf, size_t len,
			 uint64_t offset, unsigned buf_index, void *tag)
{
	struct iovec v = { buf, len };

	return queue_req(q, OP_READ, &v, 1, offset, true, buf_index, tag,
			 __func__);
}

int vdi_queue_write_fixed(struct vdi_queue *q, const void *buf, size_t len,
			  uint64_t offset, unsigned buf_index, void *tag)
{
	struct iovec v = { (void *)buf, len };

	return queue_req(q, OP_WRITE, &v, 1, offset, true, buf_index, tag,
			 __func__);
}

int vdi_queue_write_zeroes(struct vdi_queue *q, uint64_t offset,
			   uint64_t len, void *tag)
{
	struct iovec v = { q->img->zero_buf, (size_t)len };

	return queue_req(q, OP_ZERO, &v, 1, offset, false, 0, tag, __func__);
}

int vdi_queue_discard(struct vdi_queue *q, uint64_t offset, uint64_t len,
		      void *tag)
{
	struct iovec v = { q->img->zero_buf, (size_t)len };

	return queue_req(q, OP_ZERO, &v, 1, offset, false, 0, tag, __func__);
}

int vdi_queue_flush(struct vdi_queue *q, void *tag)
{
	return queue_req(q, OP_FLUSH, NULL, 0, 0, false, 0, tag, __func__);
}

/* vdi_queue_submit(), or vdi_queue_submit_wait() with `wait`. */
static int submit(struct vdi_queue *q, bool wait)
{
	struct vdi_image *img = q->img;
	struct vdi_req *r;
	int count = 0;

	if (!q->internal)
		atomic_store_explicit(&q->owner, my_tid(), memory_order_relaxed);
	if (q->deferred)
		vdi_retry_deferred(q);
	while ((r = q->pending_head)) {
		q->pending_head = r->next;
		if (!q->pending_head)
			q->pending_tail = NULL;
		r->next = NULL;
		q->inflight_reqs++;
		count++;
		if (r->op == OP_FLUSH)
			prep_flush(q, r);
		else if (r->op == OP_ZERO)
			vdi_prep_zero(q, r);
		else
			vdi_prep_rw(q, r);
	}
	/* Block-map and header updates for allocations whose data completed:
	 * once per batch, on the image's metadata ring. */
	vdi_meta_batch(img);
	/* What the kernel refuses fails through the completions (see
	 * ring_submit): every request taken here completes once.  Each SQE
	 * brings one completion, and ring_submit_wait enters the kernel only
	 * with SQEs to hand over, so a wait for one always ends. */
	ring_submit_wait(q, wait ? "vdi_queue_submit_wait" : "vdi_queue_submit",
			 wait ? 1 : 0);
	return count;
}

int vdi_queue_submit(struct vdi_queue *q)
{
	return submit(q, false);
}

int vdi_queue_submit_wait(struct vdi_queue *q)
{
	return submit(q, true);
}

int vdi_queue_reap(struct vdi_queue *q, struct vdi_completion *out,
		   unsigned min, unsigned max, const struct timespec *timeout)
{
	struct timespec deadline, *dl = NULL;
	unsigned n = 0;
	int ret;

	if (min > max)
		min = max;
	if (timeout) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout->tv_sec;
		deadline.tv_nsec += timeout->tv_nsec;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		dl = &deadline;
	}
	for (;;) {
		process_cqes(q);
		retry_flushes(q);
		if (q->deferred) {
			vdi_retry_deferred(q);
			ring_submit(q, __func__);
		}
		while (n < max && q->done_count) {
			out[n++] = q->done[q->done_head];
			q->done_head = (q->done_head + 1) % q->depth;
			q->done_count--;
			q->nr_reqs--;
		}
		if (n >= min || n == max || q->inflight_reqs == 0)
			return (int)n;
		ret = wait_and_process(q, dl);
		if (ret == -ETIME)
			return (int)n;
		if (ret < 0)
			return vdi_error(ret, __func__, q->img->path,
					 "waiting for completions: %s",
					 strerror(-ret));
	}
}

unsigned vdi_queue_pending(const struct vdi_queue *q)
{
	return q->nr_reqs;
}
