/* Layer 4, the queue: what the layers above (5-sync, 6-ops) use beyond
 * the vdi_queue_* calls of vdi.h.  Internal. */
#ifndef LIBVDI_QUEUE_H
#define LIBVDI_QUEUE_H

#include <stdbool.h>

struct vdi_image;
struct vdi_queue;

/* vdi_queue_create(); `internal` queues belong to the image's synchronous
 * pool and do not count as the caller's. */
int vdi_queue_create_internal(struct vdi_image *img, unsigned depth,
			      unsigned flags, bool internal,
			      struct vdi_queue **out);

/* The link of the image's pool of synchronous queues (5-sync/sync.c): a
 * field of the queue that only the pool uses. */
struct vdi_queue **vdi_queue_pool_link(struct vdi_queue *q);

#endif
