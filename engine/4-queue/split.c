/* Splitting requests: a read, write or write-zeroes request is walked
 * block by block; what the file holds contiguously becomes one SQE, reads
 * of blocks without data are zeros without I/O, writes allocate, O_DIRECT
 * requests that are not aligned go through bounce buffers.  Completions,
 * flushes and the public calls are in queue.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "0-base/error.h"
#include "2-image/image.h"
#include "4-queue/private.h"

/* ---- iovec helpers ------------------------------------------------------ */

/* Call fn on each piece of the request's buffers in [pos, pos + n). */
static void iov_walk(const struct vdi_req *r, size_t pos, size_t n,
		     void (*fn)(unsigned char *p, size_t len, void *arg),
		     void *arg)
{
	int i;

	for (i = 0; i < r->iovcnt && n; i++) {
		size_t l = r->iov[i].iov_len;

		if (pos >= l) {
			pos -= l;
			continue;
		}
		l -= pos;
		if (l > n)
			l = n;
		fn((unsigned char *)r->iov[i].iov_base + pos, l, arg);
		n -= l;
		pos = 0;
	}
}

static void zero_piece(unsigned char *p, size_t len, void *arg)
{
	(void)arg;
	memset(p, 0, len);
}

struct copy_arg {
	unsigned char *mem;
	bool to_user;
};

static void copy_piece(unsigned char *p, size_t len, void *arg)
{
	struct copy_arg *c = arg;

	if (c->to_user)
		memcpy(p, c->mem, len);
	else
		memcpy(c->mem, p, len);
	c->mem += len;
}

void vdi_iov_copy(const struct vdi_req *r, size_t pos, size_t n,
		     unsigned char *mem, bool to_user)
{
	struct copy_arg c = { mem, to_user };

	iov_walk(r, pos, n, copy_piece, &c);
}

struct slice_arg {
	struct iovec *out;
	int count;
	unsigned align;
	bool aligned;
};

static void slice_piece(unsigned char *p, size_t len, void *arg)
{
	struct slice_arg *s = arg;

	if (s->out)
		s->out[s->count] = (struct iovec){ p, len };
	s->count++;
	if ((uintptr_t)p % s->align || len % s->align)
		s->aligned = false;
}

static void nonzero_piece(unsigned char *p, size_t len, void *arg)
{
	bool *nonzero = arg;

	if (*nonzero || !len)
		return;
	if (p[0] || memcmp(p, p + 1, len - 1))
		*nonzero = true;
}

/* Are the request's bytes [pos, pos + n) all zero? */
static bool iov_is_zero(const struct vdi_req *r, size_t pos, size_t n)
{
	bool nonzero = false;

	iov_walk(r, pos, n, nonzero_piece, &nonzero);
	return !nonzero;
}

/* Read-modify-write support for O_DIRECT: fill the bounce buffer's partial
 * first and last alignment units from the file. */
static int bounce_fill_edges(struct vdi_queue *q, struct vdi_sub *s,
			     uint64_t lo, uint64_t hi, uint64_t start,
			     uint64_t end)
{
	unsigned a = q->img->dio_align;
	ssize_t n;

	if (start != lo) {
		n = pread(q->img->fd, s->bounce, a, (off_t)lo);
		if (n < 0)
			return -errno;
		memset(s->bounce + n, 0, a - (size_t)n); /* past the end */
	}
	if (end != hi && (hi - a != lo || start == lo)) {
		n = pread(q->img->fd, s->bounce + (hi - lo - a), a,
			  (off_t)(hi - a));
		if (n < 0)
			return -errno;
		memset(s->bounce + (hi - lo - a) + n, 0, a - (size_t)n);
	}
	return 0;
}

/* Emit one data SQE for request bytes [pos, pos + n) at file offset off. */
static int emit_plain(struct vdi_queue *q, struct vdi_req *r, enum sub_kind k,
		      size_t pos, size_t n, uint64_t off, uint32_t vb,
		      uint32_t nblocks, bool publish, struct vdi_image *src)
{
	struct vdi_image *img = q->img;
	unsigned a = img->dio_align;
	struct slice_arg sl = { NULL, 1, a, true };
	uint64_t spe = img->shared_page_end;
	bool buffered = k == SUB_WRITE && off < spe;
	struct vdi_sub *s;
	unsigned char *one = NULL; /* the bytes, when in one piece */
	int ret;

	if (buffered && off + n > spe) {
		/* The part in the page the block map shares, then the rest. */
		ret = emit_plain(q, r, k, pos, spe - off, off, vb, nblocks,
				 publish, src);
		if (ret == 0)
			ret = emit_plain(q, r, k, pos + (spe - off),
					 n - (spe - off), spe, vb, nblocks,
					 publish, src);
		return ret;
	}
	s = vdi_sub_get(q);
	if (!s)
		return -ENOMEM;
	*s = (struct vdi_sub){
		.req = r,
		.kind = k,
		.publish = publish,
		.buffered = buffered,
		.vb = vb,
		.nblocks = nblocks,
		.file_off = off,
		.len = n,
		.src = src == img ? NULL : src,
		.req_pos = pos,
		.user_len = n,
	};

	/* One buffer (the usual case): the bytes are at pos in it, no walk
	 * of the iovec needed.  A registered buffer is checked at its base,
	 * as the kernel does. */
	if (r->fixed) {
		one = (unsigned char *)r->iov[0].iov_base + pos;
		sl.aligned = (uintptr_t)r->iov[0].iov_base % a == 0;
	} else if (r->iovcnt == 1) {
		one = (unsigned char *)r->iov[0].iov_base + pos;
		sl.aligned = (uintptr_t)one % a == 0 && n % a == 0;
	} else {
		sl.count = 0;
		iov_walk(r, pos, n, slice_piece, &sl);
		if (sl.count == 1) {
			struct slice_arg first = { NULL, 0, 1, true };
			struct iovec v;

			first.out = &v;
			iov_walk(r, pos, n, slice_piece, &first);
			one = v.iov_base;
		}
	}
	if ((img->flags & VDI_OPEN_DIRECT) && !buffered &&
	    (off % a || n % a || !sl.aligned)) {
		uint64_t lo = off / a * a, hi = (off + n + a - 1) / a * a;
		void *b = vdi_bounce_get(q, hi - lo, &s->bounce_size);

		if (!b) {
			vdi_sub_put(q, s);
			return -ENOMEM;
		}
		/* Not cleared: a read fills it (zeros past the end of the
		 * file, in data_done), a write's edges come from the file. */
		s->bounce = b;
		s->bounce_skip = off - lo;
		if (k == SUB_WRITE) {
			ret = bounce_fill_edges(q, s, lo, hi, off, off + n);
			if (ret < 0) {
				vdi_sub_put(q, s);
				return ret;
			}
			vdi_iov_copy(r, pos, n, s->bounce + s->bounce_skip, false);
		}
		s->buf = s->bounce;
		s->file_off = lo;
		s->len = hi - lo;
	} else if (one) {
		s->buf = one;
	} else {
		s->iov = malloc(sizeof(*s->iov) * (size_t)sl.count);
		if (!s->iov) {
			vdi_sub_put(q, s);
			return -ENOMEM;
		}
		sl.out = s->iov;
		sl.count = 0;
		iov_walk(r, pos, n, slice_piece, &sl);
		s->iovcnt = sl.count;
	}
	ret = vdi_sub_issue(q, s);
	if (ret < 0) {
		vdi_sub_put(q, s);
		return ret;
	}
	r->inflight++;
	return 0;
}

/* ---- widened writes (layouts whose slots straddle file-system blocks) -- */

/* A write widened to whole file-system blocks: the request's bytes
 * [pos, pos + n), which go at file offset p->lo, inside [p->wlo, p->whi),
 * zeros around them, from a bounce buffer (aligned, as ext4 wants the
 * memory too).  The sub holds the claim on those blocks until it is
 * done. */
static int emit_wide(struct vdi_queue *q, struct vdi_req *r, size_t pos,
		     size_t n, const struct vdi_piece *p, uint32_t vb,
		     uint32_t nblocks, bool publish)
{
	struct vdi_image *img = q->img;
	size_t len = p->whi - p->wlo, skip = p->lo - p->wlo, size;
	struct vdi_sub *s = vdi_sub_get(q);
	unsigned char *b = s ? vdi_bounce_get(q, len, &size) : NULL;
	int ret;

	if (!b) {
		if (s) {
			*s = (struct vdi_sub){ .kind = SUB_WRITE };
			vdi_sub_put(q, s);
		}
		vdi_fresh_release(&img->fresh, p->wlo, p->whi);
		return -ENOMEM;
	}
	memset(b, 0, skip);
	vdi_iov_copy(r, pos, n, b + skip, false);
	memset(b + skip + n, 0, len - skip - n);
	*s = (struct vdi_sub){
		.req = r,
		.kind = SUB_WRITE,
		.publish = publish,
		.vb = vb,
		.nblocks = nblocks,
		.file_off = p->wlo,
		.len = len,
		.buf = b,
		.bounce = b,
		.bounce_size = size,
		.bounce_skip = skip,
		.req_pos = pos,
		.user_len = n,
		.claim_lo = p->wlo,
		.claim_hi = p->whi,
	};
	ret = vdi_sub_issue(q, s);
	if (ret < 0) {
		vdi_sub_put(q, s); /* (gives the claim back) */
		return ret;
	}
	r->inflight++;
	return 0;
}

/* Keep a piece that reaches a block another write holds, for
 * vdi_retry_deferred: the request stays in flight meanwhile. */
static int defer_piece(struct vdi_queue *q, struct vdi_req *r, size_t pos,
		       size_t n, uint64_t off, uint32_t vb, uint32_t nblocks,
		       bool publish)
{
	struct vdi_sub *s = vdi_sub_get(q);

	if (!s)
		return -ENOMEM;
	*s = (struct vdi_sub){
		.req = r,
		.kind = SUB_WRITE,
		.publish = publish,
		.vb = vb,
		.nblocks = nblocks,
		.file_off = off,
		.len = n,
		.req_pos = pos,
		.user_len = n,
	};
	if (!q->deferred)
		q->deferred_tail = &q->deferred;
	*q->deferred_tail = s;
	q->deferred_tail = &s->next;
	r->inflight++;
	return 0;
}

/* A write into the tracked blocks of new slots: its pieces (see
 * vdi_fresh_plan). */
static int emit_fresh(struct vdi_queue *q, struct vdi_req *r, size_t pos,
		      size_t n, uint64_t off, uint32_t vb, uint32_t nblocks,
		      bool publish)
{
	struct vdi_image *img = q->img;
	struct vdi_piece pc[VDI_FRESH_MAX_PIECES];
	int np = vdi_fresh_plan(&img->fresh, off, off + n, pc), i, ret = 0;

	for (i = 0; i < np; i++) {
		size_t ppos = pos + (size_t)(pc[i].lo - off);
		size_t pn = (size_t)(pc[i].hi - pc[i].lo);

		if (ret < 0) {
			/* Not emitted: its claim goes back. */
			if (pc[i].kind == PIECE_WIDE)
				vdi_fresh_release(&img->fresh, pc[i].wlo,
						  pc[i].whi);
			continue;
		}
		if (pc[i].kind == PIECE_WIDE)
			ret = emit_wide(q, r, ppos, pn, &pc[i], vb, nblocks,
					publish);
		else if (pc[i].kind == PIECE_DEFER)
			ret = defer_piece(q, r, ppos, pn, pc[i].lo, vb, nblocks,
					  publish);
		else
			ret = emit_plain(q, r, SUB_WRITE, ppos, pn, pc[i].lo, vb,
					 nblocks, publish, img);
	}
	return ret;
}

void vdi_retry_deferred(struct vdi_queue *q)
{
	struct vdi_sub *list = q->deferred, *s;

	q->deferred = NULL;
	while ((s = list)) {
		struct vdi_req *r = s->req;
		int ret;

		list = s->next;
		ret = emit_fresh(q, r, s->req_pos, s->user_len, s->file_off,
				 s->vb, s->nblocks, s->publish);
		if (ret < 0 && !r->err)
			r->err = ret;
		vdi_sub_put(q, s);
		vdi_req_sub_done(q, r);
	}
}

/* Emit a run's SQE: writes into tracked blocks of new slots as pieces,
 * everything else as it is. */
static int emit_data(struct vdi_queue *q, struct vdi_req *r, enum sub_kind k,
		     size_t pos, size_t n, uint64_t off, uint32_t vb,
		     uint32_t nblocks, bool publish, struct vdi_image *src)
{
	if (k == SUB_WRITE && vdi_fresh_on(&q->img->fresh))
		return emit_fresh(q, r, pos, n, off, vb, nblocks, publish);
	return emit_plain(q, r, k, pos, n, off, vb, nblocks, publish, src);
}

/* A run of blocks being gathered into one SQE. */
struct run {
	int kind;      /* -1 none, SUB_READ/SUB_WRITE data, 99 zeros */
	size_t pos, len;
	uint64_t file_off;
	uint32_t vb, nblocks;
	bool publish;
	struct vdi_image *src; /* image whose file holds the data */
};

#define RUN_ZERO 99
/* Longest run in one SQE: an SQE's length is 32 bits. */
#define MAX_RUN ((size_t)1 << 30)

static int run_flush(struct vdi_queue *q, struct vdi_req *r, struct run *run)
{
	int ret = 0;

	if (run->kind == RUN_ZERO) {
		iov_walk(r, run->pos, run->len, zero_piece, NULL);
	} else if (run->kind >= 0) {
		ret = emit_data(q, r, (enum sub_kind)run->kind, run->pos,
				run->len, run->file_off, run->vb, run->nblocks,
				run->publish, run->src);
	}
	run->kind = -1;
	return ret;
}

/* The common request: inside one block that has its own slot in this
 * image, nothing pending, not shared, not past the end of the file.  It is
 * one SQE at the slot, as the walk of prep_blocks would make it, without
 * the walk.  Returns 1 when the request is not of that kind (nothing done),
 * else emit_data's result. */
static int prep_one_block(struct vdi_queue *q, struct vdi_req *r)
{
	struct vdi_image *img = q->img;
	uint64_t bs = img->hdr.block_size;
	uint32_t vb = (uint32_t)(r->offset >> img->block_shift);
	uint64_t in_block = r->offset & (bs - 1);
	uint32_t e;

	if (in_block + r->len > bs || r->len == 0)
		return 1;
	e = vdi_map_get(img, vb);
	if (!vdi_entry_is_data(e) || vdi_entry_is_bad(img, e) ||
	    vdi_is_pending(img, vb) ||
	    (r->op == OP_WRITE && vdi_is_shared(img, vb)))
		return 1;
	return emit_data(q, r, r->op == OP_READ ? SUB_READ : SUB_WRITE, 0,
			 r->len,
			 vdi_slot_offset(img, e) + img->hdr.block_extra +
				 in_block,
			 vb, 1, r->op == OP_WRITE && e >= img->next_free_open,
			 img);
}

/* Split a read or write at block boundaries and merge what the file holds
 * contiguously: the general case of vdi_prep_rw.  Not inlined: its frame
 * would cost the common case (prep_one_block) more than the call. */
static __attribute__((noinline)) int prep_blocks(struct vdi_queue *q, struct vdi_req *r)
{
	struct vdi_image *img = q->img;
	uint64_t bs = img->hdr.block_size;
	struct run run = { .kind = -1 };
	size_t pos = 0;
	int ret = 0;

	while (pos < r->len) {
		uint64_t voff = r->offset + pos;
		uint32_t vb = (uint32_t)(voff >> img->block_shift);
		uint64_t in_block = voff & (bs - 1);
		size_t n = (size_t)(bs - in_block < r->len - pos ? bs - in_block
								 : r->len - pos);
		uint32_t e = vdi_map_get(img, vb);
		struct vdi_image *src = img;
		bool publish = false;
		int kind;
		uint64_t off = 0;

		if (r->op == OP_READ && e == VDI_BMAP_FREE && img->parent)
			src = vdi_chain_resolve(img, vb, &e);
		else if (r->op == OP_READ && vdi_is_pending(img, vb))
			/* Its whole-block write has not landed: the
			 * parents still give the block. */
			src = vdi_chain_resolve(img->parent, vb, &e);
		else if (r->op == OP_READ && e == VDI_BMAP_FREE &&
			 (ret = vdi_chain_no_parent(img, vb,
						    "vdi_queue_submit")) < 0)
			break;
		if (vdi_entry_is_data(e) && vdi_entry_is_bad(src, e)) {
			ret = vdi_error(-EIO, "vdi_queue_submit", src->path,
					"block %" PRIu32 " maps to physical "
					"block %" PRIu32 ", past the end of the "
					"file", vb, e);
			break;
		}
		if (r->op == OP_WRITE && vdi_entry_is_data(e) &&
		    vdi_is_shared(img, vb)) {
			ret = vdi_shared_error(img, vb);
			break;
		}
		if (r->op == OP_WRITE && !vdi_entry_is_data(e) && n == bs &&
		    !r->fixed && iov_is_zero(r, pos, n) &&
		    !vdi_entry_is_data(e = vdi_image_make_zero(img, vb))) {
			/* As VirtualBox does: a whole block of zeros written
			 * to a block without data becomes a zero entry, not
			 * an allocation (unless another request allocated
			 * it meanwhile: then the zeros are written). */
			ret = run_flush(q, r, &run);
			if (ret < 0)
				break;
			pos += n;
			continue;
		}
		if (r->op == OP_READ && !vdi_entry_is_data(e)) {
			kind = RUN_ZERO;
		} else {
			if (!vdi_entry_is_data(e)) {
				ret = vdi_image_alloc(img, vb, n, &e);
				if (ret < 0)
					break;
			} else if (n != bs && vdi_is_pending(img, vb)) {
				/* Part of a block whose whole-block write
				 * has not landed (or failed): the rest must
				 * be the parent's. */
				ret = vdi_chain_copy_up_pending(img, vb, e);
				if (ret < 0)
					break;
			}
			if (r->op == OP_WRITE && e >= img->next_free_open)
				publish = true;
			kind = r->op == OP_READ ? SUB_READ : SUB_WRITE;
			off = vdi_slot_offset(src, e) + src->hdr.block_extra +
			      in_block;
		}
		if (run.kind == kind && run.src == src &&
		    run.len + n <= MAX_RUN &&
		    (kind == RUN_ZERO || run.file_off + run.len == off)) {
			run.len += n;
			run.nblocks++;
			run.publish |= publish;
		} else {
			ret = run_flush(q, r, &run);
			if (ret < 0)
				break;
			run = (struct run){ kind, pos, n, off, vb, 1, publish,
					    src };
		}
		pos += n;
	}
	if (ret == 0)
		ret = run_flush(q, r, &run);
	return ret;
}

/* Prepare a read or write.  Errors go into r->err; the SQEs already made
 * still run. */
void vdi_prep_rw(struct vdi_queue *q, struct vdi_req *r)
{
	int ret;

	r->inflight = 1; /* held while preparing */
	ret = prep_one_block(q, r);
	if (ret == 1)
		ret = prep_blocks(q, r);
	if (ret < 0 && !r->err)
		r->err = ret;
	vdi_req_sub_done(q, r);
}

/* Punch a discarded block's slot out of the file.  The block keeps its
 * slot (and its entry) and reads zeros from the hole: a slot given back
 * online would break the rule QEMU and VirtualBox allocate by (slots
 * 0 .. blocks allocated - 1 are exactly those in use).  vdi_compact and
 * vdi_repair give such slots back offline, moving blocks. */
static int emit_punch(struct vdi_queue *q, struct vdi_req *r, uint32_t vb,
		      uint32_t index)
{
	struct io_uring_sqe *sqe;
	struct vdi_sub *s = vdi_sub_get(q);

	if (!s)
		return -ENOMEM;
	sqe = vdi_get_sqe(q);
	if (!sqe) {
		vdi_sub_put(q, s);
		return -EBUSY;
	}
	*s = (struct vdi_sub){
		.kind = SUB_PUNCH,
		.req = r,
		.vb = vb,
		.nblocks = 1,
		.file_off = vdi_slot_offset(q->img, index),
		.len = q->img->slot_size,
	};
	io_uring_prep_fallocate(sqe, 0,
				FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				s->file_off, s->len);
	vdi_q_set_fd(q, sqe, FD_DATA);
	io_uring_sqe_set_data(sqe, s);
	atomic_fetch_add_explicit(&q->img->stats.sqes, 1, memory_order_relaxed);
	r->inflight++;
	return 0;
}

/* Write zeros over [r->offset, +r->len).  Whole blocks of dynamic images
 * that hold data have their slot punched out (it reads zeros; the entry
 * stays), free ones become zero entries; parts of blocks that hold data
 * get zeros written; blocks without data need nothing.  The request's
 * iovec is the image's zero buffer (set by queue_req). */
void vdi_prep_zero(struct vdi_queue *q, struct vdi_req *r)
{
	struct vdi_image *img = q->img;
	uint64_t bs = img->hdr.block_size;
	uint64_t pos = 0;
	int ret = 0;

	r->inflight = 1;
	while (pos < r->len && ret == 0) {
		uint64_t voff = r->offset + pos;
		uint32_t vb = (uint32_t)(voff >> img->block_shift);
		uint64_t in_block = voff & (bs - 1);
		uint64_t n = bs - in_block < r->len - pos ? bs - in_block
							  : r->len - pos;
		uint32_t e = vdi_map_get(img, vb);
		uint64_t done;

		pos += n;
		if (vdi_entry_is_data(e) && vdi_is_shared(img, vb)) {
			ret = vdi_shared_error(img, vb);
			break;
		}
		if (vdi_entry_is_data(e) && vdi_entry_is_bad(img, e)) {
			ret = vdi_error(-EIO, "vdi_queue_submit", img->path,
					"block %" PRIu32 " maps to physical "
					"block %" PRIu32 ", past the end of the "
					"file", vb, e);
			break;
		}
		if (n == bs && img->hdr.type != VDI_TYPE_STATIC) {
			e = vdi_image_make_zero(img, vb);
			if (vdi_entry_is_data(e))
				ret = emit_punch(q, r, vb, e);
			continue;
		}
		if (!vdi_entry_is_data(e)) {
			uint32_t pe;

			/* Free in a differencing image: zeros over part of
			 * the parent's block need the block copied up. */
			if (e == VDI_BMAP_FREE && !img->parent &&
			    (ret = vdi_chain_no_parent(img, vb,
						       "vdi_queue_submit")) < 0)
				break;
			if (e != VDI_BMAP_FREE || !img->parent ||
			    !vdi_entry_is_data((vdi_chain_resolve(img, vb, &pe), pe)))
				continue;
			ret = vdi_image_alloc(img, vb, n, &e);
			if (ret < 0)
				break;
		} else if (vdi_is_pending(img, vb)) {
			ret = vdi_chain_copy_up_pending(img, vb, e);
			if (ret < 0)
				break;
		}
		for (done = 0; done < n && ret == 0; done += VDI_ZERO_BUF) {
			size_t c = (size_t)(n - done < VDI_ZERO_BUF ? n - done
								    : VDI_ZERO_BUF);

			ret = emit_data(q, r, SUB_WRITE, 0, c,
					vdi_slot_offset(img, e) +
						img->hdr.block_extra + in_block +
						done,
					vb, 1, e >= img->next_free_open, img);
		}
	}
	if (ret < 0 && !r->err)
		r->err = ret;
	vdi_req_sub_done(q, r);
}
