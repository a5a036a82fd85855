/* Shared by the files of layer 2 (2-image/) and by no other layer. */
#ifndef LIBVDI_IMAGE_PRIVATE_H
#define LIBVDI_IMAGE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vdi_image;

/* Open and check the parent of a differencing image (and, through
 * vdi_image_open, its own parents).  (chain.c) */
int vdi_chain_open_parent(struct vdi_image *img, const char *const *parents,
			  size_t nparents, unsigned depth);

/* Does a partial write to block `vb`, still free in `img`, need the
 * parents' block copied up first?  Under the lock.  (chain.c) */
bool vdi_chain_has_parent_data(struct vdi_image *img, uint32_t vb);

/* Copy block `vb` up from the parent chain into physical block `index` of
 * `img` (the allocator, for a partial write).  Without the lock: the
 * block is marked preparing, and the parents do not change.  (chain.c) */
int vdi_chain_copy_up(struct vdi_image *img, uint32_t vb, uint64_t index);

#endif
