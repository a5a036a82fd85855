/* Creating new images.  The image is written under a temporary name in the
 * target's directory, made durable and renamed into place, and then the
 * directory is made durable, so that the new name survives a power cut; a
 * failure before the rename leaves nothing behind, and an existing file is
 * never half overwritten. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "0-base/error.h"
#include "0-base/fault.h"
#include "0-base/fileio.h"
#include "1-format/format.h"
#include "2-image/image.h"
#include "vdi.h"

#define CHUNK (1u << 20)

/* Write the block map: all free for dynamic images, 0..n-1 for static. */
static int write_bmap(int fd, const struct vdi_header *h)
{
	unsigned char *buf = malloc(CHUNK);
	uint64_t done = 0, total = vdi_bmap_bytes(h);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (done < total && ret == 0) {
		size_t n = total - done < CHUNK ? (size_t)(total - done) : CHUNK;
		size_t i;

		for (i = 0; i < n; i += 4) {
			uint32_t e = h->type == VDI_TYPE_STATIC
					     ? (uint32_t)((done + i) / 4)
					     : VDI_BMAP_FREE;

			buf[i] = (unsigned char)e;
			buf[i + 1] = (unsigned char)(e >> 8);
			buf[i + 2] = (unsigned char)(e >> 16);
			buf[i + 3] = (unsigned char)(e >> 24);
		}
		ret = vdi_file_write(fd, buf, n, h->offset_bmap + done, 0);
		done += n;
	}
	free(buf);
	return ret;
}

/* fsync through the fault seam: 0 or -errno. */
static int sync_fd(int fd)
{
	return vdi_fault_filter(VDI_IO_FSYNC, 0, NULL, 0,
				fsync(fd) < 0 ? -errno : 0);
}

/* Make the entries of directory `dir` durable (after a rename into it).
 * A file system that cannot sync a directory says EINVAL (VirtualBox
 * shared folders, for one): there is nothing more to do there.  0 or
 * -errno. */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = sync_fd(fd);
	close(fd);
	return ret == -EINVAL ? 0 : ret;
}

static int fill_header(struct vdi_header *h, uint64_t size,
		       const struct vdi_create_opts *o, const char *path)
{
	uint32_t type = o && o->type ? (uint32_t)o->type : VDI_TYPE_DYNAMIC;
	uint32_t bs = o && o->block_size ? o->block_size
					 : VDI_DEFAULT_BLOCK_SIZE;
	unsigned char link[16] = { 0 }, parent_modify[16] = { 0 };
	uuid_t u;
	char why[256];
	int ret;

	for (size_t i = 0; o && i < sizeof(o->reserved) / sizeof(o->reserved[0]);
	     i++)
		if (o->reserved[i])
			return vdi_error(-EINVAL, "vdi_create", path,
					 "reserved[%zu] of vdi_create_opts is "
					 "not zero (zero the whole structure)",
					 i);
	if (o && o->reserved32)
		return vdi_error(-EINVAL, "vdi_create", path,
				 "reserved32 of vdi_create_opts is not zero "
				 "(zero the whole structure)");
	if (o && (o->flags & ~VDI_CREATE_REFUSE_IN_USE))
		return vdi_error(-EINVAL, "vdi_create", path,
				 "unknown flags 0x%" PRIx32 " in vdi_create_opts",
				 o->flags & ~VDI_CREATE_REFUSE_IN_USE);
	if (o && o->parent) {
		struct vdi_image *p;
		char *a = realpath(o->parent, NULL), *b = realpath(path, NULL);
		bool same = a && b && strcmp(a, b) == 0;

		free(a);
		free(b);
		if (same)
			return vdi_error(-EINVAL, "vdi_create", path,
					 "the image cannot be its own parent");

		ret = vdi_open(o->parent, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT, &p);
		if (ret < 0)
			return ret;
		if (size && size != p->disk_size)
			ret = vdi_error(-EINVAL, "vdi_create", path,
					"size %" PRIu64 " differs from the "
					"parent's %" PRIu64 " (give 0)", size,
					p->disk_size);
		else if (o->block_size && o->block_size != p->hdr.block_size)
			ret = vdi_error(-EINVAL, "vdi_create", path,
					"block size %" PRIu32 " differs from the "
					"parent's %" PRIu32, o->block_size,
					p->hdr.block_size);
		size = p->disk_size;
		bs = p->hdr.block_size;
		type = VDI_TYPE_DIFF;
		memcpy(link, p->hdr.uuid_create, 16);
		memcpy(parent_modify, p->hdr.uuid_modify, 16);
		vdi_close(p);
		if (ret < 0)
			return ret;
	} else if (type == VDI_TYPE_DIFF) {
		return vdi_error(-EINVAL, "vdi_create", path,
				 "a differencing image needs a parent");
	}
	ret = vdi_header_init(h, size, bs, type, why, sizeof(why));
	if (ret < 0)
		return vdi_error(ret, "vdi_create", path, "%s", why);
	if (o && o->description) {
		if (strlen(o->description) >= VDI_DESC_SIZE)
			return vdi_error(-EINVAL, "vdi_create", path,
					 "description is %zu bytes, longer "
					 "than %d", strlen(o->description),
					 VDI_DESC_SIZE - 1);
		strncpy(h->description, o->description, VDI_DESC_SIZE);
	}
	if (o && o->uuid) {
		memcpy(u, o->uuid, 16);
		if (uuid_is_null(u))
			return vdi_error(-EINVAL, "vdi_create", path,
					 "the image UUID must not be null");
	} else {
		uuid_generate(u);
	}
	vdi_uuid_swap(h->uuid_create, u);
	uuid_generate(u);
	vdi_uuid_swap(h->uuid_modify, u);
	if (type == VDI_TYPE_STATIC)
		h->blocks_allocated = h->blocks;
	if (type == VDI_TYPE_DIFF) {
		memcpy(h->uuid_link, link, 16);
		memcpy(h->uuid_parent_modify, parent_modify, 16);
	}
	return 0;
}

/* VDI_CREATE_REFUSE_IN_USE: take a writer's locks on the file at `path`,
 * if there is one, as vdi_open would (engine/2-image/lock.c), on
 * *lock_fd, to be held until the new file has replaced it.  -EBUSY when
 * another process holds the file. */
static int lock_old(const char *path, int *lock_fd)
{
	struct vdi_image old = { .lock_fd = -1 };
	int ret;

	*lock_fd = -1;
	if (access(path, F_OK) < 0)
		return 0; /* nothing to replace */
	old.path = (char *)path;
	ret = vdi_image_lock(&old);
	*lock_fd = old.lock_fd;
	if (ret == -EBUSY)
		return vdi_error(-EBUSY, "vdi_create", path,
				 "cannot replace it: it is in use by another "
				 "process");
	if (ret < 0)
		return vdi_error(ret, "vdi_create", path,
				 "cannot lock it to replace it: %s",
				 strerror(-ret));
	return 0;
}

int vdi_create(const char *path, uint64_t size,
	       const struct vdi_create_opts *opts)
{
	unsigned char pre[VDI_PREAMBLE_SIZE] = { 0 };
	struct vdi_header h;
	char *tmp = NULL, *dcopy = NULL, *bcopy = NULL;
	const char *dir;
	uint64_t end;
	int fd = -1, lock_fd = -1, ret;

	vdi_error_clear();
	ret = fill_header(&h, size, opts, path);
	if (ret < 0)
		return ret;
	if (!(opts && opts->overwrite) && access(path, F_OK) == 0)
		return vdi_error(-EEXIST, "vdi_create", path,
				 "file exists (remove it or ask to overwrite)");
	if (opts && opts->overwrite &&
	    (opts->flags & VDI_CREATE_REFUSE_IN_USE)) {
		ret = lock_old(path, &lock_fd);
		if (ret < 0)
			goto out;
	}
	dcopy = strdup(path);
	bcopy = strdup(path);
	dir = dcopy ? dirname(dcopy) : NULL;
	if (!dir || !bcopy ||
	    asprintf(&tmp, "%s/.%s.XXXXXX", dir, basename(bcopy)) < 0) {
		tmp = NULL;
		ret = vdi_error(-ENOMEM, "vdi_create", path, "out of memory");
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = vdi_error(-errno, "vdi_create", path,
				"cannot create a file next to it: %s",
				strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	fchmod(fd, 0644);

	vdi_header_encode(&h, pre);
	ret = vdi_file_write(fd, pre, sizeof(pre), 0, 0);
	if (ret < 0) {
		ret = vdi_error(ret, "vdi_create", path,
				"cannot write the header: %s", strerror(-ret));
		goto out;
	}
	ret = write_bmap(fd, &h);
	if (ret < 0) {
		ret = vdi_error(ret, "vdi_create", path,
				"cannot write the block map (%" PRIu64 " bytes "
				"at %" PRIu32 "): %s", vdi_bmap_bytes(&h),
				h.offset_bmap, strerror(-ret));
		goto out;
	}
	end = h.offset_data;
	if (h.type == VDI_TYPE_STATIC) {
		end += (uint64_t)h.blocks * h.block_size;
		ret = posix_fallocate(fd, h.offset_data, (off_t)(end - h.offset_data));
		if (ret == ENOSPC || ret == EFBIG) {
			ret = vdi_error(-ret, "vdi_create", path,
					"cannot preallocate %" PRIu64 " bytes: %s",
					end - h.offset_data, strerror(ret));
			goto out;
		}
	}
	if (ftruncate(fd, (off_t)end) < 0) {
		ret = vdi_error(-errno, "vdi_create", path,
				"cannot size the file to %" PRIu64 " bytes: %s",
				end, strerror(errno));
		goto out;
	}
	ret = sync_fd(fd);
	if (ret < 0) {
		ret = vdi_error(ret, "vdi_create", path, "fsync: %s",
				strerror(-ret));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		ret = vdi_error(-errno, "vdi_create", path, "rename: %s",
				strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* Without this a power cut can lose the new name (or bring back the
	 * file it replaced).  The image is complete and durable by now, and
	 * may have replaced a file (overwrite): removing it would lose both,
	 * so a failure here leaves it and says so. */
	ret = sync_dir(dir);
	if (ret < 0) {
		ret = vdi_error(ret, "vdi_create", path,
				"the image is in place, but the directory %s "
				"could not be synced: %s (a power cut may lose "
				"its name)", dir, strerror(-ret));
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	/* The old file's locks go only now, with the new file in place. */
	if (lock_fd >= 0)
		close(lock_fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(dcopy);
	free(bcopy);
	return ret;
}
