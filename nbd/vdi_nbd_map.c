/* The extents of nbdkit-vdi-plugin (NBD base:allocation), from libvdi's
 * block map along the chain of a differencing image: what vdi map shows.
 * A static image also has its container file asked for holes, as vdi map
 * and qemu-img map do: its blocks there read as zeros. */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdi_nbd.h"

#define MAX_STATIC 33 /* an image and its parents */

/* The container files of the static images of the chain. */
static struct static_file {
	struct vdi_image *img;
	int fd;
	uint64_t size;
} statics[MAX_STATIC];
static unsigned nstatics;

int vdi_nbd_map_open(void)
{
	for (struct vdi_image *img = vdi_nbd_img; img;
	     img = vdi_get_parent(img)) {
		struct static_file *f = &statics[nstatics];
		struct vdi_info info;
		struct stat st;

		if (vdi_get_info(img, &info) < 0) {
			nbdkit_error("%s", vdi_errmsg());
			return -1;
		}
		if (info.type != VDI_TYPE_STATIC || nstatics == MAX_STATIC)
			continue;
		f->fd = open(vdi_get_filename(img), O_RDONLY | O_CLOEXEC);
		if (f->fd < 0 || fstat(f->fd, &st) < 0) {
			nbdkit_error("%s: %s", vdi_get_filename(img),
				     strerror(errno));
			if (f->fd >= 0)
				close(f->fd);
			return -1;
		}
		f->img = img;
		f->size = (uint64_t)st.st_size;
		nstatics++;
	}
	return 0;
}

void vdi_nbd_map_close(void)
{
	while (nstatics)
		close(statics[--nstatics].fd);
}

static const struct static_file *static_file(const struct vdi_image *img)
{
	for (unsigned i = 0; i < nstatics; i++)
		if (statics[i].img == img)
			return &statics[i];
	return NULL;
}

/* Data of a static image at file offset `fo`: a hole of the file (or past
 * its end) reads as zeros but stays allocated.  Shortens *len to the run. */
static int static_type(const struct static_file *f, uint64_t fo,
		       uint64_t *len, uint32_t *type)
{
	uint64_t run = *len;
	off_t next;

	*type = 0;
	if (fo >= f->size) {
		*type = NBDKIT_EXTENT_ZERO;
		return 0;
	}
	next = lseek(f->fd, (off_t)fo, SEEK_DATA);
	if (next < 0 && errno != ENXIO)
		goto out_errno;
	if (next < 0 || (uint64_t)next > fo) {
		*type = NBDKIT_EXTENT_ZERO;
		run = (next < 0 ? f->size : (uint64_t)next) - fo;
	} else {
		off_t hole = lseek(f->fd, (off_t)fo, SEEK_HOLE);

		if (hole < 0)
			goto out_errno;
		run = (uint64_t)hole - fo;
	}
	if (run && run < *len)
		*len = run;
	return 0;

out_errno:
	return vdi_nbd_fail(-errno, strerror(errno), "extents (SEEK_DATA)",
			    *len, fo);
}

/* What the chain says about `off`: the NBD extent type and, in *len (at
 * most its value on entry), how far it goes on.  A free entry shows the
 * parent's block; a zero entry hides it; free at the bottom reads zeros. */
static int chain_type(uint64_t off, uint64_t *len, uint32_t *type)
{
	struct vdi_image *img = vdi_nbd_img;

	for (;;) {
		const struct static_file *f;
		struct vdi_extent e;
		uint64_t run;
		int ret = vdi_map_extent(img, off, &e);

		if (ret < 0)
			return vdi_nbd_fail(ret, vdi_errmsg(), "extents",
					    *len, off);
		if (e.start > off || e.start + e.length <= off)
			return vdi_nbd_fail(-EIO, "the block map gave an "
					    "extent not covering the offset",
					    "extents", *len, off);
		run = e.start + e.length - off;
		if (run < *len)
			*len = run;
		if (e.kind == VDI_EXTENT_DATA && (f = static_file(img)))
			return static_type(f, e.file_offset + (off - e.start),
					   len, type);
		if (e.kind != VDI_EXTENT_UNALLOCATED || !vdi_get_parent(img)) {
			*type = e.kind == VDI_EXTENT_DATA ||
						e.kind == VDI_EXTENT_BAD
					? 0
					: NBDKIT_EXTENT_HOLE |
						  NBDKIT_EXTENT_ZERO;
			return 0;
		}
		img = vdi_get_parent(img);
	}
}
/* Runs of one type, merged, from `offset` to at least offset + count
 * (the last may reach a little past it); with REQ_ONE, the first only. */
int vdi_nbd_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags,
		    struct nbdkit_extents *extents)
{
	uint64_t size = vdi_get_size(vdi_nbd_img), end = offset + count;
	uint64_t pos = offset, run_start = offset;
	uint32_t run_type = 0;

	while (pos < size) {
		uint64_t len = size - pos;
		uint32_t type = 0;

		if (chain_type(pos, &len, &type) < 0)
			return -1;
		if (pos > run_start && type != run_type) {
			if (nbdkit_add_extent(extents, run_start,
					      pos - run_start, run_type) < 0)
				return -1;
			if ((flags & NBDKIT_FLAG_REQ_ONE) || pos >= end)
				return 0;
			run_start = pos;
		}
		run_type = type;
		pos += len;
		if (pos >= end)
			break;
	}
	return nbdkit_add_extent(extents, run_start, pos - run_start,
				 run_type);
}
