/* Layer 5, sync: what the operations (6-ops) use beyond the synchronous
 * calls of vdi.h (vdi_open, vdi_pread, vdi_pwrite, vdi_flush, vdi_close...).
 * Internal. */
#ifndef LIBVDI_SYNC_H
#define LIBVDI_SYNC_H

#include <stddef.h>

struct vdi_image;

/* vdi_open_chain() with the internal flags (VDI_OPEN_COMMIT) and the
 * depth in a chain.  (open.c) */
int vdi_open_depth(const char *path, unsigned flags,
		   const char *const *parents, size_t nparents, unsigned depth,
		   struct vdi_image **out);

#endif
