/* Metadata write-back: dirty block-map sectors and the header.  Internal. */
#ifndef LIBVDI_META_H
#define LIBVDI_META_H

#include <liburing.h>
#include <stdbool.h>

struct vdi_image;
struct vdi_queue;
struct vdi_sub;

#define FD_DATA 0
#define FD_META 1
/* Most writes one metadata write-back queues (block-map runs + header). */
#define VDI_META_MAX_WRITES 17

/* Point an SQE at the data (FD_DATA) or metadata (FD_META) descriptor. */
void vdi_sqe_set_fd(struct vdi_image *img, struct io_uring_sqe *sqe,
		    int which, bool fixed);

/* Set up and tear down the image's metadata ring (writable images). */
int vdi_meta_ring_init(struct vdi_image *img);
void vdi_meta_ring_exit(struct vdi_image *img);

/* Once per submission batch: reap finished write-backs and, when none is
 * in flight and no flush owns the metadata, write what is dirty.  Takes
 * the lock. */
void vdi_meta_batch(struct vdi_image *img);

/* Handle completions on the metadata ring; with `idle`, wait until none is
 * in flight.  Under the lock. */
void vdi_meta_ring_reap(struct vdi_image *img, bool idle);

/* Queue writes of every dirty block-map run and the header on `ring`.
 * With `owner` (a flush), the writes are linked so that the next SQE
 * queued (the fsync) runs after them, and they count as that queue's.
 * Under the lock, with no other write-back in flight. */
int vdi_meta_prep(struct vdi_image *img, struct io_uring *ring,
		  struct vdi_queue *owner, bool link);

/* Queue a write of the header alone on a flush's ring, linked before
 * what follows (the barrier): a block count raised by the entries this
 * flush writes reaches the disk before them.  Under the lock. */
int vdi_meta_prep_header(struct vdi_image *img, struct io_uring *ring,
			 struct vdi_queue *owner);

/* Account for one completed metadata write and free its sub.  Under the
 * lock. */
void vdi_meta_write_done(struct vdi_image *img, struct vdi_sub *s, int res);

#endif
