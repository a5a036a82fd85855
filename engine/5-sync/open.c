/* A handle's life: vdi_open sets up each layer's part of it (the image and
 * its chain of parents, then their durability state); vdi_close takes them
 * down from the top (the synchronous queues, the write-back, the image). */
#include <errno.h>
#include <stddef.h>

#include "0-base/error.h"
#include "2-image/image.h"
#include "3-durable/durable.h"
#include "5-sync/private.h"
#include "5-sync/sync.h"

/* Release an image and its parents after a failed open: nothing of theirs
 * was written. */
static void discard(struct vdi_image *img)
{
	struct vdi_image *i;

	for (i = img; i; i = i->parent)
		vdi_durable_free(i);
	vdi_image_free(img);
}

int vdi_open_depth(const char *path, unsigned flags,
		   const char *const *parents, size_t nparents, unsigned depth,
		   struct vdi_image **out)
{
	struct vdi_image *img, *i;
	int ret;

	ret = vdi_image_open(path, flags, parents, nparents, depth, &img);
	if (ret < 0) {
		*out = NULL;
		return ret;
	}
	for (i = img; i; i = i->parent) {
		ret = vdi_durable_init(i);
		if (ret < 0) {
			discard(img);
			*out = NULL;
			return ret;
		}
	}
	*out = img;
	return 0;
}

int vdi_open(const char *path, unsigned flags, struct vdi_image **out)
{
	return vdi_open_chain(path, flags, NULL, 0, out);
}

int vdi_open_parent(const char *path, unsigned flags, const char *parent,
		    struct vdi_image **out)
{
	return vdi_open_chain(path, flags, &parent, parent ? 1 : 0, out);
}

int vdi_open_chain(const char *path, unsigned flags,
		   const char *const *parents, size_t nparents,
		   struct vdi_image **out)
{
	*out = NULL;
	if (flags & ~VDI_OPEN_PUBLIC_FLAGS) {
		vdi_error_clear();
		return vdi_error(-EINVAL, "vdi_open", path,
				 "unknown flags 0x%x", flags);
	}
	return vdi_open_depth(path, flags, parents, parents ? nparents : 0, 0,
			      out);
}

int vdi_close(struct vdi_image *img)
{
	struct vdi_image *parent;
	int ret;

	if (!img)
		return 0;
	if (img->live_queues)
		return vdi_error(-EBUSY, __func__, img->path,
				 "%u queues are still open; destroy them first",
				 img->live_queues);
	vdi_sync_pool_destroy(img);
	ret = vdi_durable_close(img);
	/* The parents are handles of their own (vdi_get_parent). */
	parent = img->parent;
	img->parent = NULL;
	vdi_close(parent);
	vdi_durable_free(img);
	vdi_image_free(img);
	return ret;
}
