/* Shared by the files of layer 2 (2-image/) and by no other layer. */
#ifndef LIBVDI_IMAGE_PRIVATE_H
#define LIBVDI_IMAGE_PRIVATE_H

#include <stddef.h>

struct vdi_image;

/* Open and check the parent of a differencing image (and, through
 * vdi_image_open, its own parents).  (chain.c) */
int vdi_chain_open_parent(struct vdi_image *img, const char *const *parents,
			  size_t nparents, unsigned depth);

#endif
