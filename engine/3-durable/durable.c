/* Metadata write-back.  The block map and the header are written through a
 * buffered descriptor of their own.  Between flushes they go out once per
 * submission batch on a small ring that belongs to the image, so that no
 * caller's queue has to be reaped for them to complete; a flush writes what
 * is left on its own queue, linked before its fsync. */
#include "3-durable/durable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "0-base/error.h"
#include "0-base/fault.h"
#include "2-image/image.h"
#include "4-queue/private.h"

#define META_RING_ENTRIES 32
/* Most block-map write SQEs one write-back may use: more dirty runs than
 * this are written as one range (clean sectors in it hold what the disk
 * already has, so rewriting them is harmless). */
#define MAX_META_RUNS 16
/* Dirty runs this close (in sectors) are merged into one write. */
#define META_GAP 8

void vdi_sqe_set_fd(struct vdi_image *img, struct io_uring_sqe *sqe,
		    int which, bool fixed)
{
	if (fixed) {
		sqe->fd = which;
		sqe->flags |= IOSQE_FIXED_FILE;
	} else {
		sqe->fd = which == FD_DATA ? img->fd : img->meta_fd;
	}
}

int vdi_meta_ring_init(struct vdi_image *img)
{
	int ret = io_uring_queue_init(META_RING_ENTRIES, &img->meta_ring, 0);

	if (ret < 0)
		return vdi_error(ret, "vdi_open", img->path,
				 "io_uring_queue_init: %s", strerror(-ret));
	img->meta_ring_ready = true;
	return 0;
}

void vdi_meta_ring_exit(struct vdi_image *img)
{
	if (!img->meta_ring_ready)
		return;
	vdi_meta_ring_reap(img, true);
	io_uring_queue_exit(&img->meta_ring);
	img->meta_ring_ready = false;
}

void vdi_meta_write_done(struct vdi_image *img, struct vdi_sub *s, int res)
{
	uint32_t i;

	res = vdi_fault_filter(VDI_IO_META, s->file_off, s->buf, s->len, res);
	if (s->publish && res >= 0 && (size_t)res == s->len)
		img->count_on_disk = s->vb; /* the header's count landed */
	if (res < 0 || (size_t)res != s->len) {
		/* Write it again later: mark what it carried dirty again.
		 * EAGAIN and EINTR are only retried; other errors are also
		 * reported, once, by the next flush. */
		if (s->publish)
			img->header_dirty = true;
		for (i = 0; !s->publish && i < s->nblocks; i++)
			vdi_image_mark_sector_dirty(img, s->vb + i);
		/* A short write is written again whole, like EAGAIN. */
		if (res < 0 && res != -EAGAIN && res != -EINTR &&
		    res != -ECANCELED /* the barrier before it said why */) {
			img->meta_error = res < 0 ? res : -EIO;
			vdi_error(img->meta_error, "vdi_queue_submit",
				  img->path,
				  "block-map or header write failed: %s",
				  strerror(-img->meta_error));
		}
	}
	free(s->bounce);
	free(s);
}

void vdi_meta_ring_reap(struct vdi_image *img, bool idle)
{
	struct io_uring_cqe *cqe;

	while (img->meta_ring_inflight) {
		if (io_uring_peek_cqe(&img->meta_ring, &cqe) != 0) {
			if (!idle)
				return;
			if (io_uring_wait_cqe(&img->meta_ring, &cqe) < 0)
				return;
			atomic_fetch_add(&img->stats.enters, 1);
		}
		vdi_meta_write_done(img, io_uring_cqe_get_data(cqe), cqe->res);
		io_uring_cqe_seen(&img->meta_ring, cqe);
		img->meta_ring_inflight--;
	}
}

/* Submit the image's metadata ring.  What the kernel does not take (it
 * refused: ENOMEM, EAGAIN, EBUSY...; EINTR is retried) is taken back and
 * marked dirty again, as a write that failed with EAGAIN: the next batch or
 * flush writes it, so nothing stays counted in flight that the kernel
 * never saw.  Under the image lock. */
static void meta_ring_submit(struct vdi_image *img)
{
	struct vdi_sub *list = NULL, **link = &list, *s;
	unsigned eintr = 0;
	int ret;

	while (vdi_ring_not_taken(&img->meta_ring)) {
		ret = vdi_fault_submit(&img->meta_ring, VDI_RING_META);
		atomic_fetch_add(&img->stats.enters, 1);
		if (ret > 0 || (ret == -EINTR && ++eintr < 16))
			continue;
		vdi_ring_take_back(&img->meta_ring, vdi_collect_sub, &link);
		while ((s = list)) {
			list = s->next;
			img->meta_ring_inflight--;
			vdi_meta_write_done(img, s, -EAGAIN);
		}
	}
}

void vdi_meta_batch(struct vdi_image *img)
{
	if (!img->meta_ring_ready)
		return;
	pthread_mutex_lock(&img->lock);
	vdi_meta_ring_reap(img, false);
	/* Map sectors that name slots past the count on disk wait for a
	 * flush, which writes the count first. */
	if (!img->meta_ring_inflight && !img->meta_owner &&
	    !img->barrier_pending &&
	    img->hdr.blocks_allocated <= img->count_on_disk &&
	    (img->dirty_count || img->header_dirty) &&
	    vdi_meta_prep(img, &img->meta_ring, NULL, false) == 0)
		meta_ring_submit(img);
	pthread_mutex_unlock(&img->lock);
}

/* Collect dirty sectors into at most MAX_META_RUNS runs and clear them. */
static unsigned collect_runs(struct vdi_image *img, uint32_t *first,
			     uint32_t *count)
{
	unsigned nruns = 0;
	uint32_t s;

	for (s = 0; img->dirty_count && s < img->bmap_sectors; s++) {
		if (!(img->dirty[s / 64] & (1ull << (s % 64))))
			continue;
		img->dirty[s / 64] &= ~(1ull << (s % 64));
		img->dirty_count--;
		if (nruns && (s - (first[nruns - 1] + count[nruns - 1]) <= META_GAP ||
			      nruns == MAX_META_RUNS)) {
			count[nruns - 1] = s - first[nruns - 1] + 1;
		} else {
			first[nruns] = s;
			count[nruns++] = 1;
		}
	}
	return nruns;
}

static int prep_writes(struct vdi_image *img, struct io_uring *ring,
		       struct vdi_queue *owner, bool link, const uint32_t *first,
		       const uint32_t *count, unsigned nruns);

int vdi_meta_prep_header(struct vdi_image *img, struct io_uring *ring,
			 struct vdi_queue *owner)
{
	img->header_dirty = true;
	return prep_writes(img, ring, owner, true, NULL, NULL, 0);
}

int vdi_meta_prep(struct vdi_image *img, struct io_uring *ring,
		  struct vdi_queue *owner, bool link)
{
	uint32_t first[MAX_META_RUNS], count[MAX_META_RUNS];
	unsigned nruns;

	nruns = collect_runs(img, first, count);
	return prep_writes(img, ring, owner, link, first, count, nruns);
}

/* Queue the block-map runs and, when dirty, the header. */
static int prep_writes(struct vdi_image *img, struct io_uring *ring,
		       struct vdi_queue *owner, bool link, const uint32_t *first,
		       const uint32_t *count, unsigned nruns)
{
	unsigned i, nwrites, need;

	nwrites = nruns + (img->header_dirty ? 1u : 0u);
	need = nwrites + (link ? 1u : 0u);
	if (!nwrites)
		return 0;
	/* A link chain must not be cut by a submit in its middle. */
	if (io_uring_sq_space_left(ring) < need) {
		io_uring_submit(ring);
		atomic_fetch_add(&img->stats.enters, 1);
	}
	for (i = 0; i < nwrites; i++) {
		struct vdi_sub *sub = calloc(1, sizeof(*sub));
		bool hdr = i == nruns;
		size_t len = hdr ? VDI_PREAMBLE_SIZE
				 : (size_t)count[i] * VDI_SECTOR;
		struct io_uring_sqe *sqe;

		if (!sub || !(sub->bounce = malloc(len))) {
			free(sub);
			img->meta_error = -ENOMEM;
			return vdi_error(-ENOMEM, "vdi_queue_submit", img->path,
					 "out of memory");
		}
		sub->kind = SUB_META;
		sub->buf = sub->bounce;
		sub->len = len;
		sub->publish = hdr; /* for a metadata write: the header */
		if (hdr) {
			vdi_header_encode(&img->hdr, img->preamble);
			memcpy(sub->buf, img->preamble, len);
			img->header_dirty = false;
			sub->vb = img->hdr.blocks_allocated; /* the count */
		} else {
			vdi_image_bmap_bytes(img, first[i], count[i], sub->buf);
			sub->vb = first[i]; /* sectors, for a metadata write */
			sub->nblocks = count[i];
			sub->file_off = img->hdr.offset_bmap +
					(uint64_t)first[i] * VDI_SECTOR;
		}
		sqe = io_uring_get_sqe(ring);
		if (!sqe) {
			/* Callers make room first; should the ring still be
			 * full, what was not queued stays for the next
			 * write-back. */
			if (hdr)
				img->header_dirty = true;
			else
				for (uint32_t k = 0; k < count[i]; k++)
					vdi_image_mark_sector_dirty(img,
								    first[i] + k);
			free(sub->bounce);
			free(sub);
			continue;
		}
		io_uring_prep_write(sqe, 0, sub->buf, (unsigned)len,
				    sub->file_off);
		/* The metadata ring has no registered files. */
		vdi_sqe_set_fd(img, sqe, FD_META, owner && owner->fixed_files);
		if (link)
			sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data(sqe, sub);
		if (owner) {
			owner->meta_inflight++;
			img->meta_owner = owner;
		} else {
			img->meta_ring_inflight++;
		}
		atomic_fetch_add(&img->stats.sqes, 1);
		atomic_fetch_add(&img->stats.meta_writes, 1);
		atomic_fetch_add(&img->stats.meta_write_bytes, len);
	}
	return 0;
}
