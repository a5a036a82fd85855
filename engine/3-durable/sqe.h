/* What an SQE's user data points at, for every ring of the engine: the
 * durability layer queues block-map, header and fdatasync SQEs (on the
 * image's metadata ring, or linked into a flush on a queue's ring), the
 * queue layer (4-queue) data SQEs beside them.  Internal. */
#ifndef LIBVDI_SQE_H
#define LIBVDI_SQE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "2-image/image.h"

struct vdi_req;

/* SUB_BARRIER: the fdatasync a flush puts before the map entries of new
 * blocks (linked: data durable, then the map, then the final fsync). */
enum sub_kind { SUB_READ, SUB_WRITE, SUB_META, SUB_FSYNC, SUB_PUNCH,
		SUB_BARRIER };

/* One SQE and what to do when its CQE arrives. */
struct vdi_sub {
	struct vdi_sub *next;
	struct vdi_req *req;  /* NULL for metadata writes */
	enum sub_kind kind;
	bool publish;         /* a write that may make allocations durable */
	bool buffered;        /* through the metadata fd (shared_page_end) */
	uint32_t vb, nblocks; /* virtual blocks the write covers */
	uint64_t file_off;    /* still to transfer: [file_off, +len) */
	size_t len;
	unsigned char *buf;   /* single buffer; NULL when vectored */
	struct iovec *iov;    /* vectored: a copy the sub owns */
	int iovcnt;
	struct vdi_image *src; /* a parent whose file is read; NULL: own */
	unsigned char *bounce; /* O_DIRECT bounce buffer (owned) */
	size_t bounce_size;   /* its size, for the queue's reuse (4-queue) */
	size_t bounce_skip;   /* where the caller's bytes start in it */
	size_t req_pos;       /* where this SQE's bytes start in the request */
	size_t user_len;      /* the caller's bytes in this SQE */
	/* A widened write's blocks (2-image/fresh.h), given back when the
	 * sub is done; 0, 0: none. */
	uint64_t claim_lo, claim_hi;
};

#define FD_DATA 0
#define FD_META 1

/* Point an SQE at the data (FD_DATA) or metadata (FD_META) descriptor:
 * registered files (index 0 data, 1 metadata) or the image's own. */
static inline void vdi_sqe_set_fd(struct vdi_image *img,
				  struct io_uring_sqe *sqe, int which,
				  bool fixed)
{
	if (fixed) {
		sqe->fd = which;
		sqe->flags |= IOSQE_FIXED_FILE;
	} else {
		sqe->fd = which == FD_DATA ? img->fd : img->meta_fd;
	}
}

/* vdi_ring_take_back callback: appends the sub to a list whose tail link
 * (struct vdi_sub **) `opaque` points at. */
static inline void vdi_collect_sub(void *opaque, uint64_t data)
{
	struct vdi_sub ***link = opaque, *s = (struct vdi_sub *)(uintptr_t)data;

	s->next = NULL;
	**link = s;
	*link = &s->next;
}

#endif
