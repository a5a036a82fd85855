/* Durability: staging, metadata write-back and the order of a flush, and
 * the state they share, which no other file sees.
 *
 * A new block's entry is staged when its write completes and enters
 * the disk view of the block map only after an fdatasync.  The block map and the header are
 * written through a buffered descriptor of their own.  Between flushes
 * they go out once per submission batch on a small ring that belongs to
 * the image, so that no caller's queue has to be reaped for them to
 * complete; a flush writes what is left on its own queue's ring, after a
 * barrier and linked before its fsync; close writes it synchronously.
 * See docs/design.md, "Metadata". */
#include "3-durable/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "0-base/error.h"
#include "0-base/fault.h"
#include "0-base/fileio.h"
#include "2-image/image.h"
#include "3-durable/sqe.h"

#define META_RING_ENTRIES 32
/* Most block-map write SQEs one write-back may use: more dirty runs than
 * this are written as one range (clean sectors in it hold what the disk
 * already has, so rewriting them is harmless). */
#define MAX_META_RUNS 16
/* Dirty runs this close (in sectors) are merged into one write. */
#define META_GAP 8

/* Under the image's lock, except where said. */
struct vdi_durable {
	/* Blocks whose allocating write completed but whose data is not yet
	 * known durable: their entries enter the disk view at the next flush
	 * or close, after an fdatasync.  Marked in the `staged` bits of their
	 * block-map sector's copy (2-image/diskview.c), which the allocation
	 * made and which stays while any is set. */
	uint32_t staged_count;
	/* A flush's barrier failed after staged entries entered the disk
	 * view:
	 * they must not be written before another fdatasync. */
	bool barrier_pending;
	void *meta_owner;          /* the queue whose flush's metadata
				    * writes are in flight */
	pthread_cond_t meta_cond;  /* meta_owner let go */
	struct io_uring meta_ring; /* per-batch metadata write-back */
	bool meta_ring_ready;      /* set at open (writable images) */
	/* Changed under the lock; atomic because vdi_meta_batch reads it
	 * without the lock. */
	atomic_uint meta_ring_inflight;
	int meta_error;            /* a metadata write failed; the next
				    * flush says so */
};

int vdi_durable_init(struct vdi_image *img)
{
	struct vdi_durable *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return vdi_error(-ENOMEM, "vdi_open", img->path,
				 "out of memory");
	pthread_cond_init(&d->meta_cond, NULL);
	img->dur = d;
	if (img->flags & VDI_OPEN_RDONLY)
		return 0;
	ret = io_uring_queue_init(META_RING_ENTRIES, &d->meta_ring, 0);
	if (ret < 0)
		return vdi_error(ret, "vdi_open", img->path,
				 "io_uring_queue_init: %s", strerror(-ret));
	d->meta_ring_ready = true;
	return 0;
}

void vdi_durable_free(struct vdi_image *img)
{
	struct vdi_durable *d = img->dur;

	if (!d)
		return;
	if (d->meta_ring_ready)
		io_uring_queue_exit(&d->meta_ring);
	pthread_cond_destroy(&d->meta_cond);
	free(d);
	img->dur = NULL;
}

/* ---- staging ---------------------------------------------------------------- */

/* The bit of `vb` in its sector copy's staged bits. */
#define STAGED_WORD(ds, vb) ((ds)->staged[(vb) % VDI_SECTOR_ENTRIES / 64])
#define STAGED_BIT(vb) (1ull << ((vb) % 64))

bool vdi_is_staged(const struct vdi_image *img, uint32_t vb)
{
	const struct vdi_disk_sector *ds;

	if (!img->dur->staged_count)
		return false;
	ds = vdi_disk_sector(img, vb / VDI_SECTOR_ENTRIES);
	return ds && (STAGED_WORD(ds, vb) & STAGED_BIT(vb));
}

/* Stage the entry of `vb`, whose sector has a copy (the allocation made
 * it).  Under the lock. */
static void stage(struct vdi_image *img, struct vdi_disk_sector *ds,
		  uint32_t vb, uint32_t e)
{
	STAGED_WORD(ds, vb) |= STAGED_BIT(vb);
	img->dur->staged_count++;
	if ((uint64_t)e + 1 > img->ref_end)
		img->ref_end = (uint64_t)e + 1;
}

void vdi_durable_publish(struct vdi_image *img, uint32_t vb, uint32_t n)
{
	uint32_t i;

	pthread_mutex_lock(&img->lock);
	for (i = vb; i < vb + n; i++) {
		uint32_t e = vdi_map_get(img, i);
		struct vdi_disk_sector *ds;

		/* A write to it completed: the slot holds the block now. */
		vdi_set_pending(img, i, false);
		/* No copy: the disk view is `map` already. */
		ds = vdi_disk_sector(img, i / VDI_SECTOR_ENTRIES);
		if (!ds || ds->e[i % VDI_SECTOR_ENTRIES] == e ||
		    (STAGED_WORD(ds, i) & STAGED_BIT(i)))
			continue;
		if (!vdi_entry_is_data(e)) {
			/* Zero or free: no data to wait for. */
			vdi_image_set_disk_entry(img, i, e);
			continue;
		}
		/* The data completed, but a completed buffered write is not
		 * a durable one: the entry waits for the next fdatasync, or
		 * a power cut could keep the entry and lose the data. */
		stage(img, ds, i, e);
	}
	pthread_mutex_unlock(&img->lock);
}

/* After an fdatasync: move the staged entries into the disk view
 * (dirtying their sectors), then drop the sector copies no longer
 * needed.  Returns how many.  Under the lock. */
static uint32_t unstage(struct vdi_image *img)
{
	struct vdi_durable *d = img->dur;
	struct vdi_disk_sector *ds;
	uint32_t w, moved = 0;

	for (ds = img->disk_list; d->staged_count && ds; ds = ds->lnext) {
		for (w = 0; w < VDI_SECTOR_ENTRIES / 64; w++) {
			while (ds->staged[w]) {
				uint32_t vb = ds->sector * VDI_SECTOR_ENTRIES +
					      w * 64 +
					      (uint32_t)__builtin_ctzll(ds->staged[w]);

				ds->staged[w] &= ds->staged[w] - 1;
				d->staged_count--;
				vdi_image_set_disk_entry(img, vb,
							 vdi_map_get(img, vb));
				moved++;
			}
		}
	}
	vdi_disk_prune(img);
	return moved;
}

/* The staged entries enter the disk view (unstage); when they raise the
 * header's count, the header is written first, with pwrite, so that the
 * fdatasync after it makes the count durable before any map sector names
 * the new slots.  Returns -errno from the header write.  Under the lock. */
static int unstage_header_first(struct vdi_image *img)
{
	int ret;

	unstage(img);
	if (img->hdr.blocks_allocated <= img->count_on_disk)
		return 0;
	vdi_header_encode(&img->hdr, img->preamble);
	ret = vdi_file_write(img->meta_fd, img->preamble, VDI_PREAMBLE_SIZE, 0,
			     VDI_FILE_SEAM);
	if (ret < 0) {
		img->header_dirty = true;
		return vdi_error(ret, "vdi_flush", img->path,
				 "cannot write the header: %s", strerror(-ret));
	}
	img->header_dirty = false;
	img->count_on_disk = img->hdr.blocks_allocated;
	atomic_fetch_add(&img->stats.meta_writes, 1);
	atomic_fetch_add(&img->stats.meta_write_bytes, VDI_PREAMBLE_SIZE);
	return 0;
}

/* ---- metadata write-back ------------------------------------------------------ */

/* Account for one completed metadata write and free its sub.  Under the
 * lock. */
static void meta_write_done(struct vdi_image *img, struct vdi_sub *s, int res)
{
	struct vdi_durable *d = img->dur;
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
			d->meta_error = res < 0 ? res : -EIO;
			vdi_error(d->meta_error, "vdi_queue_submit",
				  img->path,
				  "block-map or header write failed: %s",
				  strerror(-d->meta_error));
		}
	}
	free(s->bounce);
	free(s);
}

/* Handle completions on the metadata ring; with `idle`, wait until none is
 * in flight.  Under the lock. */
static void meta_ring_reap(struct vdi_image *img, bool idle)
{
	struct vdi_durable *d = img->dur;
	struct io_uring_cqe *cqe;

	while (d->meta_ring_inflight) {
		if (io_uring_peek_cqe(&d->meta_ring, &cqe) != 0) {
			if (!idle)
				return;
			if (io_uring_wait_cqe(&d->meta_ring, &cqe) < 0)
				return;
			atomic_fetch_add(&img->stats.enters, 1);
		}
		meta_write_done(img, io_uring_cqe_get_data(cqe), cqe->res);
		io_uring_cqe_seen(&d->meta_ring, cqe);
		d->meta_ring_inflight--;
	}
}

/* Submit the image's metadata ring.  What the kernel does not take (it
 * refused: ENOMEM, EAGAIN, EBUSY...; EINTR is retried) is taken back and
 * marked dirty again, as a write that failed with EAGAIN: the next batch or
 * flush writes it, so nothing stays counted in flight that the kernel
 * never saw.  Under the image lock. */
static void meta_ring_submit(struct vdi_image *img)
{
	struct vdi_durable *d = img->dur;
	struct vdi_sub *list = NULL, **link = &list, *s;
	unsigned eintr = 0;
	int ret;

	while (vdi_ring_not_taken(&d->meta_ring)) {
		ret = vdi_fault_submit(&d->meta_ring, VDI_RING_META);
		atomic_fetch_add(&img->stats.enters, 1);
		if (ret > 0 || (ret == -EINTR && ++eintr < 16))
			continue;
		vdi_ring_take_back(&d->meta_ring, vdi_collect_sub, &link);
		while ((s = list)) {
			list = s->next;
			d->meta_ring_inflight--;
			meta_write_done(img, s, -EAGAIN);
		}
	}
}

/* Collect dirty sectors into at most MAX_META_RUNS runs and clear them. */
static unsigned collect_runs(struct vdi_image *img, uint32_t *first,
			     uint32_t *count)
{
	unsigned nruns = 0;
	uint32_t s;

	for (s = 0; (s = vdi_image_next_dirty(img, s)) < img->bmap_sectors;
	     s++) {
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

static int prep_writes(struct vdi_image *img, const struct vdi_flush_ring *fr,
		       const uint32_t *first, const uint32_t *count,
		       unsigned nruns);

/* Queue a write of the header alone on a flush's ring, linked before what
 * follows (the barrier): a block count raised by the entries this flush
 * writes reaches the disk before them.  Under the lock. */
static int meta_prep_header(struct vdi_image *img,
			    const struct vdi_flush_ring *fr)
{
	img->header_dirty = true;
	return prep_writes(img, fr, NULL, NULL, 0);
}

/* Queue writes of every dirty block-map run and the header: on the
 * image's metadata ring (`fr` NULL), or on a flush's ring, linked so that
 * the next SQE queued (the fsync) runs after them, counted as that
 * queue's.  Under the lock, with no other write-back in flight. */
static int meta_prep(struct vdi_image *img, const struct vdi_flush_ring *fr)
{
	uint32_t first[MAX_META_RUNS], count[MAX_META_RUNS];
	unsigned nruns;

	nruns = collect_runs(img, first, count);
	return prep_writes(img, fr, first, count, nruns);
}

/* Queue the block-map runs and, when dirty, the header. */
static int prep_writes(struct vdi_image *img, const struct vdi_flush_ring *fr,
		       const uint32_t *first, const uint32_t *count,
		       unsigned nruns)
{
	struct vdi_durable *d = img->dur;
	struct io_uring *ring = fr ? fr->ring : &d->meta_ring;
	bool link = fr != NULL;
	unsigned i, nwrites, need;

	nwrites = nruns + (img->header_dirty ? 1u : 0u);
	need = nwrites + (link ? 1u : 0u);
	if (!nwrites)
		return 0;
	/* A link chain must not be cut by a submit in its middle. */
	if (io_uring_sq_space_left(ring) < need) {
		vdi_fault_submitted(ring, link ? VDI_RING_QUEUE : VDI_RING_META);
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
			d->meta_error = -ENOMEM;
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
		vdi_sqe_set_fd(img, sqe, FD_META, fr && fr->fixed_files);
		if (link)
			sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data(sqe, sub);
		if (fr) {
			(*fr->meta_inflight)++;
			d->meta_owner = fr->opaque;
		} else {
			d->meta_ring_inflight++;
		}
		atomic_fetch_add(&img->stats.sqes, 1);
		atomic_fetch_add(&img->stats.meta_writes, 1);
		atomic_fetch_add(&img->stats.meta_write_bytes, len);
	}
	return 0;
}

/* The write-back of vdi_meta_batch, when there may be something to reap or
 * write.  Not inlined, so that the common case (nothing) saves no
 * registers. */
static __attribute__((noinline)) void meta_batch_locked(struct vdi_image *img)
{
	struct vdi_durable *d = img->dur;

	pthread_mutex_lock(&img->lock);
	meta_ring_reap(img, false);
	/* Map sectors that name slots past the count on disk wait for a
	 * flush, which writes the count first. */
	if (!d->meta_ring_inflight && !d->meta_owner && !d->barrier_pending &&
	    img->hdr.blocks_allocated <= img->count_on_disk &&
	    (img->dirty_count || img->header_dirty) &&
	    meta_prep(img, NULL) == 0)
		meta_ring_submit(img);
	pthread_mutex_unlock(&img->lock);
}

void vdi_meta_batch(struct vdi_image *img)
{
	struct vdi_durable *d = img->dur;

	if (!d->meta_ring_ready)
		return;
	/* Nothing in flight on the metadata ring and nothing dirty (every
	 * write to a block that has data): nothing to reap or write, so no
	 * lock.  This runs at every submission.  What another thread makes
	 * dirty meanwhile, its own batch writes (the thread that dirties a
	 * sector or the header submits after), or the next one does: as if
	 * it had come just after this batch under the lock. */
	if (!atomic_load_explicit(&d->meta_ring_inflight, memory_order_relaxed) &&
	    !atomic_load_explicit(&img->dirty_count, memory_order_relaxed) &&
	    !atomic_load_explicit(&img->header_dirty, memory_order_relaxed))
		return;
	meta_batch_locked(img);
}

/* ---- flushes ------------------------------------------------------------------ */

/* One of the queue's metadata SQEs completed: when it was the last, the
 * image's metadata is free for another flush or write-back.  Under the
 * lock. */
static void owner_done(struct vdi_image *img, unsigned *meta_inflight)
{
	struct vdi_durable *d = img->dur;

	if (--*meta_inflight == 0) {
		d->meta_owner = NULL;
		pthread_cond_broadcast(&d->meta_cond);
	}
}

int vdi_durable_flush_prep(struct vdi_image *img,
			   const struct vdi_flush_ring *fr, bool *said)
{
	struct vdi_durable *d = img->dur;
	struct io_uring_sqe *sqe;
	struct vdi_sub *s;
	int ret;

	*said = false; /* ret came with a message naming it */
	pthread_mutex_lock(&img->lock);
	while (d->meta_owner) {
		if (d->meta_owner == fr->opaque) {
			pthread_mutex_unlock(&img->lock);
			fr->drain(fr->opaque);
			pthread_mutex_lock(&img->lock);
		} else {
			pthread_cond_wait(&d->meta_cond, &img->lock);
		}
	}
	/* Per-batch write-backs still in flight complete first. */
	meta_ring_reap(img, true);
	/* A failed metadata write is reported once, by this flush; what it
	 * carried is dirty again and goes out below. */
	ret = d->meta_error;
	d->meta_error = 0;
	if (ret == 0 && img->written) {
		ret = vdi_image_extend(img, "vdi_flush");
		*said = ret < 0;
	}
	if (ret == 0 && fr->polled) {
		/* Polled rings take no buffered writes and no fsync. */
		if (d->staged_count || d->barrier_pending) {
			ret = unstage_header_first(img);
			if (ret == 0)
				ret = vdi_image_sync(img);
			d->barrier_pending = ret < 0;
		}
		if (ret == 0)
			ret = vdi_image_writeback_sync(img);
		pthread_mutex_unlock(&img->lock);
		if (ret == 0)
			ret = vdi_image_sync(img);
		*said = ret < 0; /* these name what failed */
		return ret < 0 ? ret : 1;
	}
	if (ret == 0 && (d->staged_count || d->barrier_pending)) {
		/* New blocks' data durable before the entries that point at
		 * it: an fdatasync linked before the map writes.  A count
		 * they raise is written before that fdatasync, so that no
		 * map sector on disk names a slot at or past the count
		 * (where QEMU and VirtualBox allocate). */
		unstage(img);
		if (img->hdr.blocks_allocated > img->count_on_disk)
			ret = meta_prep_header(img, fr);
		s = ret == 0 ? calloc(1, sizeof(*s)) : NULL;
		sqe = s ? io_uring_get_sqe(fr->ring) : NULL;
		if (!sqe) {
			/* The entries are in the disk view: none goes out before
			 * another fdatasync. */
			d->barrier_pending = true;
			ret = s ? -EBUSY : -ENOMEM;
			free(s);
			pthread_mutex_unlock(&img->lock);
			return ret;
		}
		s->kind = SUB_BARRIER;
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		vdi_sqe_set_fd(img, sqe, FD_META, fr->fixed_files);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data(sqe, s);
		atomic_fetch_add(&img->stats.sqes, 1);
		(*fr->meta_inflight)++;
		d->meta_owner = fr->opaque;
		d->barrier_pending = false;
	}
	if (ret == 0)
		ret = meta_prep(img, fr);
	pthread_mutex_unlock(&img->lock);
	return ret;
}

void vdi_durable_meta_done(struct vdi_image *img, unsigned *meta_inflight,
			   struct vdi_sub *s, int res)
{
	pthread_mutex_lock(&img->lock);
	meta_write_done(img, s, res);
	owner_done(img, meta_inflight);
	pthread_mutex_unlock(&img->lock);
}

void vdi_durable_barrier_done(struct vdi_image *img, unsigned *meta_inflight,
			      struct vdi_sub *s, int res)
{
	struct vdi_durable *d = img->dur;

	pthread_mutex_lock(&img->lock);
	/* The map writes linked after it are cancelled and dirty again; the
	 * flush reports this error. */
	if (res < 0)
		d->barrier_pending = true;
	if (res < 0 && res != -EAGAIN && res != -EINTR && !d->meta_error)
		d->meta_error = vdi_error(res, "vdi_queue_flush", img->path,
					  "fdatasync: %s", strerror(-res));
	owner_done(img, meta_inflight);
	pthread_mutex_unlock(&img->lock);
	free(s);
}

void vdi_durable_barrier_lost(struct vdi_image *img, unsigned *meta_inflight,
			      struct vdi_sub *s)
{
	/* The staged entries it was to make durable are in the disk view
	 * already: none may be written before another fdatasync. */
	pthread_mutex_lock(&img->lock);
	img->dur->barrier_pending = true;
	owner_done(img, meta_inflight);
	pthread_mutex_unlock(&img->lock);
	free(s);
}

int vdi_durable_take_error(struct vdi_image *img)
{
	int err;

	pthread_mutex_lock(&img->lock);
	err = img->dur->meta_error;
	img->dur->meta_error = 0;
	pthread_mutex_unlock(&img->lock);
	return err;
}

/* ---- close -------------------------------------------------------------------- */

/* At close: blocks this handle gave a slot whose allocating write failed
 * (a full disk, say) are in no entry on disk, and their slots would stay
 * unused below the count, which QEMU and VirtualBox need to be exactly
 * the slots in use.  Their slots are punched (they read zeros, as the free
 * or zero block did) and staged like written blocks, so the close's
 * fdatasync and map write make them data blocks of zeros.  Not in
 * differencing images, where a free entry reads the parent's block.
 * Under the lock. */
static void adopt_failed_blocks(struct vdi_image *img)
{
	struct vdi_disk_sector *ds;
	struct stat st;
	uint32_t i;

	if (img->hdr.type == VDI_TYPE_DIFF ||
	    img->next_free == img->next_free_open ||
	    fstat(img->meta_fd, &st) < 0)
		return;
	/* Such a block's sector has a copy: its allocation made one, and
	 * `map` differs from it. */
	for (ds = img->disk_list; ds; ds = ds->lnext) {
		for (i = 0; i < VDI_SECTOR_ENTRIES; i++) {
			uint32_t vb = ds->sector * VDI_SECTOR_ENTRIES + i, e;

			if (vb >= img->hdr.blocks)
				break;
			e = vdi_map_get(img, vb);
			/* (A slot the file does not hold, past a size limit
			 * that failed the write, stays out of the map.) */
			if (!vdi_entry_is_data(e) || e < img->next_free_open ||
			    ds->e[i] == e ||
			    (STAGED_WORD(ds, vb) & STAGED_BIT(vb)) ||
			    vdi_slot_offset(img, (uint64_t)e + 1) >
				    (uint64_t)st.st_size)
				continue;
			if (fallocate(img->meta_fd,
				      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)vdi_slot_offset(img, e),
				      (off_t)img->slot_size) < 0)
				continue;
			stage(img, ds, vb, e);
		}
	}
}

int vdi_durable_close(struct vdi_image *img)
{
	struct vdi_durable *d = img->dur;
	int ret = 0;

	pthread_mutex_lock(&img->lock);
	if (d->meta_ring_ready) {
		meta_ring_reap(img, true);
		io_uring_queue_exit(&d->meta_ring);
		d->meta_ring_ready = false;
	}
	if (!(img->flags & VDI_OPEN_RDONLY) && img->written) {
		ret = vdi_image_extend(img, "vdi_close");
		if (ret == 0)
			adopt_failed_blocks(img);
		/* Data first, then the entries that point at it; a count
		 * they raise goes before them. */
		if (ret == 0 && (d->staged_count || d->barrier_pending)) {
			ret = unstage_header_first(img);
			if (ret == 0)
				ret = vdi_image_sync(img);
		}
		if (ret == 0)
			ret = vdi_image_writeback_sync(img);
		if (ret == 0)
			ret = vdi_image_sync(img);
		if (ret == 0)
			vdi_image_trim_ahead(img);
	}
	if (ret == 0 && d->meta_error)
		ret = vdi_error(d->meta_error, "vdi_close", img->path,
				"an earlier block-map write failed: %s",
				strerror(-d->meta_error));
	pthread_mutex_unlock(&img->lock);
	return ret;
}
