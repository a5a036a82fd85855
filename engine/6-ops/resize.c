/* vdi_resize: change the virtual size.  Offline and synchronous.  The
 * header sector is always written last: it is the one write that switches
 * the image from the old size (and layout) to the new. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "0-base/error.h"
#include "0-base/fileio.h"
#include "2-image/image.h"
#include "6-ops/steps.h"

/* Write n entries at `at`, exactly (the metadata descriptor is buffered,
 * so no padding that could run into a data block). */
static int put_map(struct vdi_image *img, const uint32_t *map, uint32_t n,
		   uint64_t at)
{
	size_t bytes = (size_t)n * 4;
	unsigned char *buf = malloc(bytes ? bytes : 1);
	uint32_t i;
	int ret;

	if (!buf)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		buf[4 * i] = (unsigned char)map[i];
		buf[4 * i + 1] = (unsigned char)(map[i] >> 8);
		buf[4 * i + 2] = (unsigned char)(map[i] >> 16);
		buf[4 * i + 3] = (unsigned char)(map[i] >> 24);
	}
	ret = vdi_file_write(img->meta_fd, buf, bytes, at, VDI_FILE_SEAM);
	free(buf);
	return ret;
}

/* Progress (struct vdi_steps) is in blocks read: those a shrink looks
 * at, those a growing map moves, and one for the rest (map, header,
 * cut). */

/* Data entries among blocks [from, to) (from <= to), or among those
 * whose slot is below `below` when `below` is not 0. */
static uint64_t count_data(const struct vdi_image *img, uint64_t from,
			   uint64_t to, uint64_t below)
{
	uint64_t n = 0, vb;

	for (vb = from; vb < to; vb++) {
		uint32_t e = vdi_disk_get(img, (uint32_t)vb);

		if (vdi_entry_is_data(e) && (!below || e < below))
			n++;
	}
	return n;
}

static int put_header(struct vdi_image *img)
{
	int ret;

	vdi_header_encode(&img->hdr, img->preamble);
	ret = vdi_file_write(img->meta_fd, img->preamble, VDI_PREAMBLE_SIZE, 0,
			     VDI_FILE_SEAM);
	return ret < 0 ? ret : vdi_image_sync(img);
}

/* Refuse a shrink that would cut off data that is not all zeros. */
static int check_cut(struct vdi_image *img, uint64_t new_size,
		     unsigned char *buf, struct vdi_steps *rp)
{
	uint64_t bs = img->hdr.block_size;
	uint32_t vb;
	int ret;

	for (vb = (uint32_t)(new_size / bs); vb < img->hdr.blocks; vb++) {
		uint32_t e = vdi_disk_get(img, vb);
		uint64_t from = (uint64_t)vb * bs < new_size ? new_size - (uint64_t)vb * bs : 0;
		uint64_t i;

		if (!vdi_entry_is_data(e))
			continue;
		ret = vdi_read_slot(img, e, buf);
		if (ret < 0)
			return vdi_error(ret, "vdi_resize", img->path,
					 "cannot read block %" PRIu32 ": %s", vb,
					 strerror(-ret));
		vdi_step(rp);
		for (i = from; i < bs; i++)
			if (buf[img->hdr.block_extra + i])
				return vdi_error(-ENOTEMPTY, "vdi_resize",
						 img->path,
						 "cannot shrink to %" PRIu64
						 " bytes: block %" PRIu32
						 " holds data past it (at "
						 "byte %" PRIu64 ")", new_size,
						 vb, (uint64_t)vb * bs + i);
	}
	return 0;
}

/* Copy the data blocks in physical slots [0, k) to the end of the file and
 * repoint their entries (old layout), durably. */
static int evacuate(struct vdi_image *img, uint64_t k, unsigned char *buf,
		    struct vdi_steps *rp)
{
	uint32_t vb;
	int ret;

	vdi_fresh_forget(&img->fresh); /* slots written outside the queues */
	for (vb = 0; vb < img->hdr.blocks; vb++) {
		uint32_t e = vdi_disk_get(img, vb);
		uint64_t to = img->next_free;

		if (!vdi_entry_is_data(e) || e >= k)
			continue;
		ret = vdi_read_slot(img, e, buf);
		if (ret == 0)
			ret = vdi_file_write(img->meta_fd, buf, img->slot_size,
					     vdi_slot_offset(img, to),
					     VDI_FILE_SEAM);
		if (ret == 0)
			ret = vdi_image_sync(img);
		if (ret < 0)
			return vdi_error(ret, "vdi_resize", img->path,
					 "cannot move block %" PRIu32 ": %s", vb,
					 strerror(-ret));
		img->next_free++;
		/* (The handle is closed without writing after a resize:
		 * `map` may follow the disk.) */
		vdi_image_set_entry(img, vb, (uint32_t)to);
		ret = vdi_image_commit_meta(img);
		if (ret < 0)
			return ret;
		vdi_step(rp);
	}
	return 0;
}

/* The slots the moved block map takes over from the data area for
 * `nblocks` entries (0: it stays where it is). */
static uint64_t map_slots(const struct vdi_image *img, uint64_t nblocks)
{
	const struct vdi_header *h = &img->hdr;
	uint64_t bytes;

	if (nblocks * 4 <= (uint64_t)(h->offset_data - h->offset_bmap))
		return 0;
	bytes = (nblocks * 4 + VDI_ALIGN - 1) / VDI_ALIGN * VDI_ALIGN;
	return (bytes + img->slot_size - 1) / img->slot_size;
}

static int resize_locked(struct vdi_image *img, uint64_t new_size,
			 unsigned flags, unsigned char *buf,
			 struct vdi_steps *rp)
{
	struct vdi_header *h = &img->hdr;
	uint64_t bs = h->block_size, nblocks, k, i, last = 0, end;
	uint64_t old_blocks, old_offset_data;
	struct stat st;
	uint32_t *map;
	int ret;

	if (new_size > (uint64_t)VDI_MAX_BLOCKS * bs)
		return vdi_error(-EINVAL, "vdi_resize", img->path,
				 "size %" PRIu64 " is larger than %u blocks of "
				 "%" PRIu64 " bytes", new_size, VDI_MAX_BLOCKS, bs);
	new_size = (new_size + VDI_SECTOR - 1) & ~(uint64_t)(VDI_SECTOR - 1);
	nblocks = (new_size + bs - 1) / bs;
	if (nblocks > VDI_MAX_BLOCKS)
		return vdi_error(-EINVAL, "vdi_resize", img->path,
				 "size %" PRIu64 " needs %" PRIu64 " blocks, more "
				 "than %u", new_size, nblocks, VDI_MAX_BLOCKS);
	if (new_size < img->disk_size &&
	    !(flags & VDI_RESIZE_SHRINK))
		return vdi_error(-EINVAL, "vdi_resize", img->path,
				 "%" PRIu64 " is smaller than the disk "
				 "(%" PRIu64 " bytes); shrinking must "
				 "be asked for", new_size, img->disk_size);
	/* The work ahead, known before any of it is done. */
	k = map_slots(img, nblocks);
	rp->total = 1;
	if (new_size < img->disk_size)
		rp->total += count_data(img, new_size / bs, h->blocks, 0);
	if (k)
		rp->total += count_data(img, 0, h->blocks, k);
	rp->done = 0;
	if (rp->fn)
		rp->fn(rp->opaque, 0, rp->total);
	if (new_size < img->disk_size) {
		ret = check_cut(img, new_size, buf, rp);
		if (ret < 0)
			return ret;
	}

	map = calloc(nblocks ? nblocks : 1, sizeof(*map));
	if (!map)
		return vdi_error(-ENOMEM, "vdi_resize", img->path, "out of memory");
	if (k) {
		/* The map moves to where the first data blocks are now. */
		if (h->offset_data + k * img->slot_size > UINT32_MAX) {
			free(map);
			return vdi_error(-EFBIG, "vdi_resize", img->path,
					 "the block map for %" PRIu64 " blocks "
					 "does not fit below 4 GiB", nblocks);
		}
		ret = evacuate(img, k, buf, rp);
		if (ret < 0) {
			free(map);
			return ret;
		}
	}
	for (i = 0; i < nblocks; i++) {
		uint32_t e = i < h->blocks ? vdi_disk_get(img, i) : VDI_BMAP_FREE;

		if (vdi_entry_is_data(e))
			e -= (uint32_t)k;
		else if (i >= h->blocks && h->type == VDI_TYPE_STATIC)
			e = (uint32_t)(img->next_free++ - k);
		map[i] = e;
	}
	if (h->type == VDI_TYPE_STATIC && nblocks > h->blocks) {
		uint64_t end = vdi_slot_offset(img, img->next_free);

		int err = posix_fallocate(img->meta_fd, 0, (off_t)end);

		/* Where the file system cannot preallocate, a sparse
		 * extension still reads as zeros; no space is an error. */
		if (err == EOPNOTSUPP || err == EINVAL)
			err = ftruncate(img->meta_fd, (off_t)end) < 0 ? errno : 0;
		if (err) {
			free(map);
			return vdi_error(-err, "vdi_resize", img->path,
					 "cannot extend the file to %" PRIu64
					 " bytes: %s", end, strerror(err));
		}
	}
	/* New entries go where the old header does not look: past the old
	 * block count, or into the evacuated blocks. */
	ret = put_map(img, map + (k ? 0 : h->blocks),
		      (uint32_t)(nblocks > h->blocks || k ? nblocks - (k ? 0 : h->blocks) : 0),
		      k ? h->offset_data : h->offset_bmap + (uint64_t)h->blocks * 4);
	if (ret == 0)
		ret = vdi_image_sync(img);
	if (ret < 0) {
		free(map);
		return vdi_error(ret, "vdi_resize", img->path,
				 "cannot write the block map: %s",
				 strerror(-ret));
	}
	old_blocks = h->blocks;
	old_offset_data = h->offset_data;
	if (k) {
		h->offset_bmap = h->offset_data;
		h->offset_data = (uint32_t)(h->offset_data + k * img->slot_size);
	}
	h->disk_size = new_size;
	h->blocks = (uint32_t)nblocks;
	h->blocks_allocated = 0;
	for (i = 0; i < nblocks; i++)
		if (vdi_entry_is_data(map[i])) {
			h->blocks_allocated++;
			if ((uint64_t)map[i] + 1 > last)
				last = (uint64_t)map[i] + 1;
		}
	/* Never below a slot in use: QEMU and VirtualBox allocate at the
	 * count.  (Blocks a shrink dropped leave their slots unused below
	 * it until 'vdi check -r leaks' or 'vdi compact' moves blocks in.) */
	if (last > h->blocks_allocated)
		h->blocks_allocated = (uint32_t)last;
	free(map);
	ret = put_header(img);
	if (ret < 0)
		return vdi_error(ret, "vdi_resize", img->path,
				 "cannot write the header: %s", strerror(-ret));
	/* Blocks a shrink cut off held only zeros: give their space back
	 * (they are no longer in the map).  Then cut the unused end. */
	for (i = nblocks; i < old_blocks; i++)
		if (vdi_entry_is_data(vdi_disk_get(img, i)))
			fallocate(img->meta_fd,
				  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)(old_offset_data +
					  (uint64_t)vdi_disk_get(img, i) * img->slot_size),
				  (off_t)img->slot_size);
	end = h->offset_data + last * img->slot_size;
	if (fstat(img->meta_fd, &st) == 0 && (uint64_t)st.st_size > end &&
	    ftruncate(img->meta_fd, (off_t)end) == 0)
		ret = vdi_image_sync(img);
	if (ret == 0)
		vdi_steps_finish(rp);
	return ret;
}

int vdi_resize(const char *path, uint64_t new_size, unsigned flags)
{
	return vdi_resize_with_progress(path, new_size, flags, NULL, NULL);
}

int vdi_resize_with_progress(const char *path, uint64_t new_size,
			     unsigned flags, vdi_progress_fn progress,
			     void *opaque)
{
	struct vdi_steps rp = { .fn = progress, .opaque = opaque };
	struct vdi_image *img;
	unsigned char *buf;
	int ret;

	if (flags & ~VDI_RESIZE_SHRINK)
		return vdi_error(-EINVAL, "vdi_resize", path,
				 "unknown flags 0x%x", flags);
	ret = vdi_open(path, 0, &img);
	if (ret < 0)
		return ret;
	if (img->hdr.type == VDI_TYPE_DIFF) {
		vdi_close(img);
		return vdi_error(-ENOTSUP, "vdi_resize", path,
				 "a differencing image has its parent's size "
				 "and cannot be resized");
	}
	buf = malloc(img->slot_size);
	if (!buf) {
		vdi_close(img);
		return vdi_error(-ENOMEM, "vdi_resize", path, "out of memory");
	}
	pthread_mutex_lock(&img->lock);
	ret = resize_locked(img, new_size, flags, buf, &rp);
	/* The handle describes the old layout: close it without writing. */
	img->written = false;
	img->dirty_count = 0;
	img->header_dirty = false;
	memset(img->dirty, 0, ((img->bmap_sectors + 63) / 64 + 1) * sizeof(uint64_t));
	pthread_mutex_unlock(&img->lock);
	free(buf);
	if (ret < 0) {
		vdi_close(img);
		return ret;
	}
	return vdi_close(img);
}
