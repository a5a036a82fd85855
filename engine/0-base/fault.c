/* The fault-injection seam (see fault.h). */
#include "0-base/fault.h"

#include <liburing.h>

const struct vdi_fault_hook *vdi_fault_hook;
const struct vdi_fault_submit_hook *vdi_fault_submit_hook;

void vdi_fault_set(const struct vdi_fault_hook *hook)
{
	vdi_fault_hook = hook;
}

void vdi_fault_set_submit(const struct vdi_fault_submit_hook *hook)
{
	vdi_fault_submit_hook = hook;
}

unsigned vdi_ring_take_back(struct io_uring *ring,
			    void (*fn)(void *opaque, uint64_t data),
			    void *opaque)
{
	struct io_uring_sq *sq = &ring->sq;
	unsigned n = vdi_ring_not_taken(ring), first = sq->sqe_tail - n, i;

	for (i = first; i != sq->sqe_tail; i++) {
		uint64_t d = sq->sqes[i & sq->ring_mask].user_data;

		if (d != LIBURING_UDATA_TIMEOUT) /* liburing's own */
			fn(opaque, d);
	}
	sq->sqe_tail = first;
	if (!(ring->flags & IORING_SETUP_SQPOLL)) {
		sq->sqe_head = first;
		io_uring_smp_store_release(sq->ktail, first);
	}
	return n;
}

void vdi_fault_submitted(struct io_uring *ring, enum vdi_ring_kind kind)
{
	const struct vdi_fault_hook *io = vdi_fault_hook;
	struct io_uring_sq *sq = &ring->sq;
	unsigned i;

	if (!io || !io->submitted)
		return;
	for (i = sq->sqe_head; i != sq->sqe_tail; i++)
		io->submitted(io->opaque, kind, &sq->sqes[i & sq->ring_mask]);
}

int vdi_fault_submit(struct io_uring *ring, enum vdi_ring_kind kind)
{
	return vdi_fault_submit_wait(ring, kind, 0);
}

int vdi_fault_submit_wait_hooked(struct io_uring *ring,
				 enum vdi_ring_kind kind, unsigned wait_nr)
{
	const struct vdi_fault_submit_hook *h = vdi_fault_submit_hook;
	struct io_uring_sq *sq = &ring->sq;
	unsigned ready, tail;
	int want, ret;

	if (!h) {
		vdi_fault_submitted(ring, kind);
		return io_uring_submit_and_wait(ring, wait_nr);
	}
	ready = vdi_ring_not_taken(ring);
	want = h->submit(h->opaque, kind, ready);
	if (want < 0)
		return want;
	if ((unsigned)want >= ready) {
		vdi_fault_submitted(ring, kind);
		return io_uring_submit_and_wait(ring, wait_nr);
	}
	/* Let the kernel see only the first `want`: liburing hands over
	 * sqe_head..sqe_tail, so end that range early for one submission.
	 * Entries handed over before (left by a short submission) cannot be
	 * held back: when there are more than `want`, the kernel takes them
	 * all. */
	tail = sq->sqe_tail;
	if (sq->sqe_tail - sq->sqe_head > ready - (unsigned)want)
		sq->sqe_tail -= ready - (unsigned)want;
	else
		sq->sqe_tail = sq->sqe_head;
	vdi_fault_submitted(ring, kind);
	ret = io_uring_submit(ring);
	sq->sqe_tail = tail;
	return ret;
}
