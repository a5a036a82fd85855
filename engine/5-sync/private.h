/* Shared by the files of layer 5 (5-sync/) and by no other layer. */
#ifndef LIBVDI_SYNC_PRIVATE_H
#define LIBVDI_SYNC_PRIVATE_H

struct vdi_image;

/* Destroy the image's pooled synchronous queues (at close).  (sync.c) */
void vdi_sync_pool_destroy(struct vdi_image *img);

#endif
