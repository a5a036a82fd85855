/* The fault-injection seam.  Every I/O completion, from a ring or from a
 * synchronous call, passes through vdi_fault_filter() before the engine
 * acts on it; a test installs a hook that may replace the result with an
 * error (EIO, ENOSPC, EAGAIN, EINTR) or a short count.  Every submission
 * of a queue's ring goes through vdi_fault_submit(), where the hook may
 * make the kernel refuse the SQEs or take only some of them.  Internal:
 * tests link the engine statically to reach it. */
#ifndef LIBVDI_FAULT_H
#define LIBVDI_FAULT_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum vdi_io_kind {
	VDI_IO_READ,  /* data read */
	VDI_IO_WRITE, /* data write */
	VDI_IO_META,  /* block-map or header write */
	VDI_IO_FSYNC, /* fdatasync of a flush or close; fsync in vdi_create */
};

/* Which ring a submission is for. */
enum vdi_ring_kind {
	VDI_RING_QUEUE, /* a queue's ring: data, flush chains */
	VDI_RING_META,  /* the image's per-batch metadata ring */
};

struct vdi_fault_hook {
	/* Return the result the engine should see instead of `res` for an
	 * I/O of `kind` at file offset `off` of `len` bytes.  For writes,
	 * `iov`/`iovcnt` hold the bytes that were written (so a test can
	 * record them, e.g. to replay a power cut); NULL otherwise. */
	int (*io)(void *opaque, enum vdi_io_kind kind, uint64_t off,
		  size_t len, const struct iovec *iov, int iovcnt, int res);
	void *opaque;
	/* Optional: called for each SQE as it is handed to the kernel
	 * (vdi_fault_submit), oldest first, before io_uring_submit(), so a
	 * test knows what was in flight when (the power-cut model needs
	 * writes not yet completed, and the links of a flush's chain).
	 * Entries that a submit hook holds back are reported when they are
	 * handed over at last. */
	void (*submitted)(void *opaque, enum vdi_ring_kind kind,
			  const struct io_uring_sqe *sqe);
};

struct vdi_fault_submit_hook {
	/* Called before a ring of `kind` is submitted with `ready` SQEs that
	 * the kernel has not taken.  Return `ready` to submit as usual; a
	 * count below it to have the kernel take only that many (the first
	 * ones; the rest stay on the ring, as after a short io_uring_enter);
	 * or a negative errno to fail the submission without entering the
	 * kernel, nothing taken (as io_uring_enter fails with EAGAIN, EBUSY,
	 * ENOMEM, EINTR...). */
	int (*submit)(void *opaque, enum vdi_ring_kind kind, unsigned ready);
	void *opaque;
};

/* Install (or, with NULL, remove) the hooks for the whole process. */
void vdi_fault_set(const struct vdi_fault_hook *hook);
void vdi_fault_set_submit(const struct vdi_fault_submit_hook *hook);

extern const struct vdi_fault_hook *vdi_fault_hook;

static inline int vdi_fault_filter_iov(enum vdi_io_kind kind, uint64_t off,
				       size_t len, const struct iovec *iov,
				       int iovcnt, int res)
{
	const struct vdi_fault_hook *h = vdi_fault_hook;

	return h ? h->io(h->opaque, kind, off, len, iov, iovcnt, res) : res;
}

static inline int vdi_fault_filter(enum vdi_io_kind kind, uint64_t off,
				   const void *buf, size_t len, int res)
{
	struct iovec v = { (void *)buf, len };

	return vdi_fault_filter_iov(kind, off, len, buf ? &v : NULL,
				    buf ? 1 : 0, res);
}

/* io_uring_submit() through the seam: the number of SQEs the kernel took,
 * or a negative errno (then it took none). */
int vdi_fault_submit(struct io_uring *ring, enum vdi_ring_kind kind);

/* The same, and when the kernel takes every SQE the ring holds, the same
 * io_uring_enter waits until `wait_nr` completions are ready (the kernel
 * does not wait after a short submission, nor does a submit hook's short
 * one here).  The caller must know that that many will come: no more than
 * the SQEs it hands over plus those in flight. */
int vdi_fault_submit_wait_hooked(struct io_uring *ring,
				 enum vdi_ring_kind kind, unsigned wait_nr);

extern const struct vdi_fault_submit_hook *vdi_fault_submit_hook;

/* Inline: every submission comes here, and without hooks (outside the
 * tests) it is io_uring_submit_and_wait and nothing more. */
static inline int vdi_fault_submit_wait(struct io_uring *ring,
					enum vdi_ring_kind kind,
					unsigned wait_nr)
{
	if (!vdi_fault_submit_hook && !vdi_fault_hook)
		return io_uring_submit_and_wait(ring, wait_nr);
	return vdi_fault_submit_wait_hooked(ring, kind, wait_nr);
}

/* Report to the I/O hook's `submitted` the SQEs io_uring_submit() is
 * about to hand over (sqe_head up to sqe_tail).  vdi_fault_submit() does;
 * a plain io_uring_submit() elsewhere in the engine calls it first. */
void vdi_fault_submitted(struct io_uring *ring, enum vdi_ring_kind kind);

/* SQEs on the ring that the kernel has not taken: those liburing has not
 * handed over yet (sqe_head..sqe_tail) and, without SQPOLL, those handed
 * over but not consumed (khead..sqe_head).  Without SQPOLL the kernel
 * consumes only inside io_uring_enter, so the second kind exists only
 * after a submission that stopped short.  With SQPOLL, entries handed
 * over belong to the kernel thread. */
static inline unsigned vdi_ring_not_taken(const struct io_uring *ring)
{
	const struct io_uring_sq *sq = &ring->sq;

	if (ring->flags & IORING_SETUP_SQPOLL)
		return sq->sqe_tail - sq->sqe_head;
	return sq->sqe_tail - io_uring_smp_load_acquire(sq->khead);
}

/* Take the SQEs the kernel has not taken off the ring, passing the
 * user_data of each (oldest first; liburing's own timeout entries are
 * skipped) to `fn`; returns how many were on the ring.  Without SQPOLL
 * the kernel reads the submission ring only inside io_uring_enter, so
 * entries handed over but not consumed are taken back by moving the
 * ring's tail back to its head; with SQPOLL only entries never handed over
 * are (the others are the kernel thread's and complete as usual).  `fn`
 * runs before the ring is rewound and must not touch it: it collects,
 * and the caller acts on what it collected afterwards. */
unsigned vdi_ring_take_back(struct io_uring *ring,
			    void (*fn)(void *opaque, uint64_t data),
			    void *opaque);

#endif
