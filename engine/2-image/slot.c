/* Slot I/O: synchronous reads and writes of an image's blocks (slots),
 * block map and header, outside the rings: the write-back of close, copy-up
 * and the offline operations. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "0-base/error.h"
#include "0-base/fault.h"
#include "0-base/fileio.h"
#include "2-image/image.h"
#include "2-image/private.h"

#define ENTRIES_PER_SECTOR VDI_SECTOR_ENTRIES

/* Read a whole slot; what the file does not hold reads as zeros. */
int vdi_read_slot(struct vdi_image *img, uint64_t index, unsigned char *buf)
{
	return vdi_file_read(img->meta_fd, buf, img->slot_size,
			     vdi_slot_offset(img, index), VDI_FILE_ZEROS_AT_EOF);
}

void vdi_image_bmap_bytes(const struct vdi_image *img, uint32_t first,
			  uint32_t n, unsigned char *buf)
{
	uint32_t s, i;

	for (s = first; s < first + n; s++) {
		const struct vdi_disk_sector *ds = vdi_disk_sector(img, s);

		for (i = 0; i < ENTRIES_PER_SECTOR; i++, buf += 4) {
			uint32_t e = ds ? ds->e[i]
					: vdi_map_peek(img, s * ENTRIES_PER_SECTOR + i);

			buf[0] = (unsigned char)e;
			buf[1] = (unsigned char)(e >> 8);
			buf[2] = (unsigned char)(e >> 16);
			buf[3] = (unsigned char)(e >> 24);
		}
	}
}

int vdi_image_writeback_sync(struct vdi_image *img)
{
	uint32_t s = 0;
	int ret;

	while ((s = vdi_image_next_dirty(img, s)) < img->bmap_sectors) {
		uint32_t end;
		unsigned char *buf;

		for (end = s; end < img->bmap_sectors &&
			      (img->dirty[end / 64] & (1ull << (end % 64)));
		     end++)
			img->dirty[end / 64] &= ~(1ull << (end % 64));
		img->dirty_count -= end - s;
		buf = malloc((size_t)(end - s) * VDI_SECTOR);
		if (!buf)
			return vdi_error(-ENOMEM, "vdi_close", img->path,
					 "out of memory");
		vdi_image_bmap_bytes(img, s, end - s, buf);
		ret = vdi_file_write(img->meta_fd, buf,
				     (size_t)(end - s) * VDI_SECTOR,
				     img->hdr.offset_bmap +
					     (uint64_t)s * VDI_SECTOR,
				     VDI_FILE_SEAM);
		free(buf);
		if (ret < 0)
			return vdi_error(ret, "vdi_close", img->path,
					 "cannot write the block map: %s",
					 strerror(-ret));
		atomic_fetch_add(&img->stats.meta_writes, 1);
		atomic_fetch_add(&img->stats.meta_write_bytes,
				 (uint64_t)(end - s) * VDI_SECTOR);
		s = end;
	}
	if (img->header_dirty) {
		vdi_header_encode(&img->hdr, img->preamble);
		ret = vdi_file_write(img->meta_fd, img->preamble,
				     VDI_PREAMBLE_SIZE, 0, VDI_FILE_SEAM);
		if (ret < 0)
			return vdi_error(ret, "vdi_close", img->path,
					 "cannot write the header: %s",
					 strerror(-ret));
		img->header_dirty = false;
		img->count_on_disk = img->hdr.blocks_allocated;
		atomic_fetch_add(&img->stats.meta_writes, 1);
		atomic_fetch_add(&img->stats.meta_write_bytes, VDI_PREAMBLE_SIZE);
	}
	return 0;
}

/* Write back the dirty map and header, then make them durable. */
int vdi_image_commit_meta(struct vdi_image *img)
{
	int ret = vdi_image_writeback_sync(img);

	return ret < 0 ? ret : vdi_image_sync(img);
}

int vdi_image_sync(struct vdi_image *img)
{
	int ret = fdatasync(img->meta_fd) < 0 ? -errno : 0;

	ret = vdi_fault_filter(VDI_IO_FSYNC, 0, NULL, 0, ret);
	if (ret < 0)
		return vdi_error(ret, "vdi_flush", img->path, "fdatasync: %s",
				 strerror(-ret));
	return 0;
}

bool vdi_range_is_hole(int fd, uint64_t start, uint64_t end)
{
	uint64_t at = (start + 4095) / 4096 * 4096;
	off_t data;

	end = end / 4096 * 4096;
	data = lseek(fd, (off_t)at, SEEK_DATA);
	return (data < 0 && errno == ENXIO) ||
	       (data >= 0 && (uint64_t)data >= end);
}
