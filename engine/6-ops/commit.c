/* vdi_commit: merge a differencing image's blocks into its parent.  An
 * operation: it opens both images and writes with the synchronous API. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "0-base/error.h"
#include "2-image/image.h"
#include "5-sync/sync.h"

/* Write the header now and make it durable. */
static int write_header_now(struct vdi_image *img)
{
	int ret;

	pthread_mutex_lock(&img->lock);
	img->header_dirty = true;
	ret = vdi_image_commit_meta(img);
	pthread_mutex_unlock(&img->lock);
	return ret;
}

/* Merge the child's blocks into its parent.  Order:
 *  1. the parent gets its new modification UUID, durably, before any of
 *     its data changes: images made from its old state (the child's
 *     siblings) see the change even if the commit stops half way;
 *  2. the child records that UUID: its view is unchanged by the copy, which
 *     only puts into the parent what the child already holds;
 *  3. the blocks are copied and the parent flushed.
 * Stopped anywhere, the commit runs again: after step 2 the two images
 * agree; between 1 and 2 the parent carries the UUID this child's commit
 * derives (vdi_commit_uuid), which the child's open accepts. */
int vdi_commit(const char *path, const char *parent_path,
	       vdi_progress_fn progress, void *opaque)
{
	struct vdi_image *child, *parent = NULL;
	unsigned char *buf = NULL, u[16];
	char *ppath = NULL;
	uint32_t vb;
	int ret;

	ret = vdi_open_depth(path, VDI_OPEN_COMMIT, &parent_path,
			     parent_path ? 1 : 0, 0, &child);
	if (ret < 0)
		return ret;
	if (!child->parent) {
		ret = vdi_error(-EINVAL, __func__, path,
				"not a differencing image: nothing to commit");
		goto out;
	}
	/* Reopen the parent for writing: close the read-only chain first. */
	ppath = strdup(child->parent->path);
	vdi_close(child->parent);
	child->parent = NULL;
	if (!ppath) {
		ret = -ENOMEM;
		goto out;
	}
	ret = vdi_open_depth(ppath, 0, NULL, 0, 1, &parent);
	if (ret < 0)
		goto out;
	vdi_commit_uuid(child, u);
	if (memcmp(parent->hdr.uuid_modify, u, 16)) {
		memcpy(parent->hdr.uuid_modify, u, 16);
		ret = write_header_now(parent);
	}
	/* No other modification UUID for the writes below. */
	parent->modify_set = true;
	parent->written = true;
	if (ret == 0) {
		memcpy(child->hdr.uuid_parent_modify, u, 16);
		ret = write_header_now(child);
	}
	if (ret < 0)
		goto out;
	buf = malloc(child->slot_size);
	if (!buf) {
		ret = vdi_error(-ENOMEM, __func__, path, "out of memory");
		goto out;
	}
	for (vb = 0; vb < child->hdr.blocks && ret == 0; vb++) {
		uint32_t e = vdi_disk_get(child, vb);
		uint64_t off = (uint64_t)vb * child->hdr.block_size;
		uint64_t len = child->disk_size - off < child->hdr.block_size
				       ? child->disk_size - off
				       : child->hdr.block_size;

		if (progress)
			progress(opaque, vb, child->hdr.blocks);
		if (e == VDI_BMAP_ZERO) {
			ret = vdi_write_zeroes(parent, off, len);
		} else if (vdi_entry_is_data(e)) {
			ret = vdi_read_slot(child, e, buf);
			if (ret == 0) {
				ssize_t n = vdi_pwrite(parent,
						       buf + child->hdr.block_extra,
						       (size_t)len, off);
				ret = n < 0 ? (int)n : 0;
			}
		}
	}
	if (ret == 0)
		ret = vdi_flush(parent);
	if (ret == 0) {
		ret = vdi_close(parent);
		parent = NULL;
	}
out:
	free(buf);
	free(ppath);
	if (parent)
		vdi_close(parent);
	if (ret < 0) {
		vdi_close(child);
		return ret;
	}
	return vdi_close(child);
}
