/* Layer 3, durability: when what the image layer changed reaches the disk,
 * and in which order.  New blocks are staged until an fdatasync has made
 * their data durable; dirty block-map sectors and the header go out once
 * per submission batch on the image's metadata ring, or linked into a
 * flush (barrier, map, header, fsync), or synchronously at close.  The
 * state behind it (struct vdi_durable) is private to durable.c.
 * Internal. */
#ifndef LIBVDI_DURABLE_H
#define LIBVDI_DURABLE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct vdi_image;
struct vdi_sub;

/* Most writes one metadata write-back queues (block-map runs + header). */
#define VDI_META_MAX_WRITES 17

/* Set up the durability state of an image opened by vdi_image_open (and,
 * for a writable one, its metadata ring). */
int vdi_durable_init(struct vdi_image *img);

/* At close: wait for the per-batch write-backs; when anything was
 * written, adopt the slots of blocks whose allocating write failed, make
 * the data durable (after the header, when the new entries raise its
 * count), then the map and header, then fdatasync.  Reports a metadata write that failed earlier.  0 or -errno
 * with a message. */
int vdi_durable_close(struct vdi_image *img);

/* Release the durability state (NULL state: nothing). */
void vdi_durable_free(struct vdi_image *img);

/* A data write covering virtual blocks [vb, vb + n) completed: stage their
 * allocations for the on-disk map.  Takes the lock. */
void vdi_durable_publish(struct vdi_image *img, uint32_t vb, uint32_t n);

/* Is block `vb` allocated by a completed write whose entry waits for the
 * next flush or close?  Under the lock. */
bool vdi_is_staged(const struct vdi_image *img, uint32_t vb);

/* Once per submission batch: reap finished write-backs and, when none is
 * in flight and no flush owns the metadata, write what is dirty on the
 * image's metadata ring.  Takes the lock. */
void vdi_meta_batch(struct vdi_image *img);

/* ---- flushes, on a queue's ring ---- */

/* A queue's ring as a flush sees it (this layer never sees a queue). */
struct vdi_flush_ring {
	struct io_uring *ring;
	bool fixed_files;         /* index 0 data, 1 metadata */
	bool polled;              /* IOPOLL: no buffered writes, no fsync */
	unsigned *meta_inflight;  /* the queue's metadata SQEs in flight */
	/* Reap the queue until its own metadata SQEs have completed.  Called
	 * without the lock. */
	void (*drain)(void *opaque);
	void *opaque;             /* the queue: owner of the metadata */
};

/* Queue a flush's metadata on `fr`: when entries are staged, the header
 * if they raise its count, then an fdatasync barrier, then the dirty block-map runs and the header, linked so that
 * the SQE the caller queues next (the flush's fsync) runs after them.
 * Waits for another queue's flush metadata first.  Returns 0 (the caller
 * queues the fsync), 1 when the flush is done without the ring (polled
 * rings), or -errno; *said when the message names what failed.  Takes the
 * lock. */
int vdi_durable_flush_prep(struct vdi_image *img,
			   const struct vdi_flush_ring *fr, bool *said);

/* Completions on a queue's ring of what vdi_durable_flush_prep queued
 * (`meta_inflight` as in its vdi_flush_ring): a block-map or header write
 * (SUB_META); the barrier (SUB_BARRIER); a barrier the kernel never took.
 * Each frees its sub.  Take the lock. */
void vdi_durable_meta_done(struct vdi_image *img, unsigned *meta_inflight,
			   struct vdi_sub *s, int res);
void vdi_durable_barrier_done(struct vdi_image *img, unsigned *meta_inflight,
			      struct vdi_sub *s, int res);
void vdi_durable_barrier_lost(struct vdi_image *img, unsigned *meta_inflight,
			      struct vdi_sub *s);

/* The error of a metadata write or barrier since the last flush, once (0:
 * none); the flush whose fsync completed reports it.  Takes the lock. */
int vdi_durable_take_error(struct vdi_image *img);

#endif
