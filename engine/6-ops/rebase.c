/* vdi_rebase: give a differencing image another parent, as qemu-img
 * rebase does.  Safe (the default): every block the child takes from its
 * parents and that reads differently from the new parent is first copied
 * into the child, so the child reads the same afterwards; then the link
 * is switched in one header write.  Stopped half way, the child still
 * links to its old parent and reads the same (the blocks copied are what
 * the old parent gave), so the rebase simply runs again.  Unsafe
 * (VDI_REBASE_UNSAFE): only the link is switched, for a parent that is
 * known to read the same (VBoxManage internalcommands sethdparentuuid).
 * An operation on whole images, built on the I/O core. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "0-base/error.h"
#include "1-format/format.h"
#include "2-image/image.h"

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The new parent: read-only, its own parents looked for next to it; not
 * the child or one of its descendants (that would be a loop).  Opened
 * before the child, whose writer's lock would make a descendant fail
 * to open. */
static int open_new_parent(const char *path, const char *new_parent,
			   struct vdi_image **out)
{
	struct vdi_image *p, *cur;
	int ret = vdi_open(new_parent, VDI_OPEN_RDONLY, &p);

	if (ret < 0)
		return ret;
	for (cur = p; cur; cur = cur->parent)
		if (same_file(cur->path, path)) {
			vdi_close(p);
			return vdi_error(-ELOOP, "vdi_rebase", path,
					 "%s reads from this image: it cannot "
					 "be its parent", new_parent);
		}
	*out = p;
	return 0;
}

/* The same geometry, or the child would not open. */
static int same_geometry(struct vdi_image *child, struct vdi_image *p)
{
	if (p->disk_size == child->disk_size &&
	    p->hdr.block_size == child->hdr.block_size)
		return 0;
	return vdi_error(-EINVAL, "vdi_rebase", child->path,
			 "the new parent %s has size %" PRIu64 " and %" PRIu32
			 "-byte blocks; this image has %" PRIu64 " and %"
			 PRIu32, p->path, p->disk_size, p->hdr.block_size,
			 child->disk_size, child->hdr.block_size);
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Copy into the child each block it takes from its parents that the new
 * parent (NULL: none, zeros) reads differently. */
static int copy_differences(struct vdi_image *child, struct vdi_image *np,
			    vdi_progress_fn progress, void *opaque)
{
	size_t bs = child->hdr.block_size;
	unsigned char *a = malloc(bs), *b = malloc(bs);
	int ret = 0;

	if (!a || !b) {
		ret = vdi_error(-ENOMEM, "vdi_rebase", child->path,
				"out of memory");
		goto out;
	}
	for (uint32_t vb = 0; vb < child->hdr.blocks && ret == 0; vb++) {
		uint64_t off = (uint64_t)vb * bs;
		size_t len = child->disk_size - off < bs
				     ? (size_t)(child->disk_size - off) : bs;
		ssize_t n;

		if (progress)
			progress(opaque, vb, child->hdr.blocks);
		/* Data and zero entries hide every parent. */
		if (vdi_disk_get(child, vb) != VDI_BMAP_FREE)
			continue;
		n = vdi_pread(child, a, len, off);
		if (n >= 0 && np)
			n = vdi_pread(np, b, len, off);
		else if (n >= 0)
			memset(b, 0, len);
		if (n < 0) {
			ret = (int)n;
			break;
		}
		if (!memcmp(a, b, len))
			continue;
		/* Zeros take no space: a zero entry hides the parent. */
		if (all_zero(a, len)) {
			ret = vdi_write_zeroes(child, off, len);
			continue;
		}
		n = vdi_pwrite(child, a, len, off);
		ret = n < 0 ? (int)n : 0;
	}
	if (ret == 0)
		ret = vdi_flush(child);
out:
	free(a);
	free(b);
	return ret;
}

int vdi_rebase(const char *path, const char *const *parents,
	       size_t nparents, const char *new_parent, unsigned flags,
	       vdi_progress_fn progress, void *opaque)
{
	bool unsafe = flags & VDI_REBASE_UNSAFE;
	struct vdi_image *child, *np = NULL;
	int ret;

	if (flags & ~VDI_REBASE_UNSAFE)
		return vdi_error(-EINVAL, __func__, path,
				 "unknown flags 0x%x", flags);
	if (unsafe && !new_parent)
		return vdi_error(-EINVAL, __func__, path,
				 "an image without parent must hold every "
				 "block: that needs a safe rebase");
	if (new_parent && same_file(path, new_parent))
		return vdi_error(-ELOOP, __func__, path,
				 "an image cannot be its own parent");
	if (new_parent) {
		ret = open_new_parent(path, new_parent, &np);
		if (ret < 0)
			return ret;
	}
	/* Safe: through the old chain, which must still open. */
	ret = unsafe ? vdi_open(path, VDI_OPEN_NO_PARENT, &child)
		     : vdi_open_chain(path, 0, parents, nparents, &child);
	if (ret < 0) {
		vdi_close(np);
		return ret;
	}
	if (child->hdr.type != VDI_TYPE_DIFF) {
		ret = vdi_error(-EINVAL, __func__, path,
				"not a differencing image: it has no parent "
				"to change");
		goto out;
	}
	if (np) {
		ret = same_geometry(child, np);
		if (ret < 0)
			goto out;
	}
	/* The child reads the same: no new modification UUID, so its own
	 * children still open. */
	child->modify_set = true;
	if (!unsafe) {
		ret = copy_differences(child, np, progress, opaque);
		if (ret < 0)
			goto out;
	}
	pthread_mutex_lock(&child->lock);
	if (np) {
		memcpy(child->hdr.uuid_link, np->hdr.uuid_create, 16);
		memcpy(child->hdr.uuid_parent_modify, np->hdr.uuid_modify, 16);
	} else {
		child->hdr.type = VDI_TYPE_DYNAMIC;
		memset(child->hdr.uuid_link, 0, 16);
		memset(child->hdr.uuid_parent_modify, 0, 16);
	}
	child->header_dirty = true;
	ret = vdi_image_writeback_sync(child);
	if (ret == 0)
		ret = vdi_image_sync(child);
	pthread_mutex_unlock(&child->lock);
	if (progress && ret == 0)
		progress(opaque, child->hdr.blocks, child->hdr.blocks);
out:
	vdi_close(np);
	if (ret < 0) {
		vdi_close(child);
		return ret;
	}
	return vdi_close(child);
}
