/* Allocation extents: what each part of the virtual disk maps to. */
#include <errno.h>
#include <inttypes.h>

#include "0-base/error.h"
#include "2-image/image.h"

static enum vdi_extent_kind entry_kind(const struct vdi_image *img,
				       uint32_t e)
{
	if (e == VDI_BMAP_FREE)
		return VDI_EXTENT_UNALLOCATED;
	if (e == VDI_BMAP_ZERO)
		return VDI_EXTENT_ZERO;
	return vdi_entry_is_bad(img, e) ? VDI_EXTENT_BAD : VDI_EXTENT_DATA;
}

int vdi_map_extent(struct vdi_image *img, uint64_t start,
		   struct vdi_extent *ext)
{
	uint64_t bs = img->hdr.block_size, end;
	uint32_t vb, e;
	enum vdi_extent_kind kind;

	if (start >= img->disk_size)
		return vdi_error(-EINVAL, __func__, img->path,
				 "offset %" PRIu64 " is not below the disk "
				 "size %" PRIu64, start, img->disk_size);
	vb = (uint32_t)(start >> img->block_shift);
	e = vdi_map_get(img, vb);
	kind = entry_kind(img, e);
	ext->start = start;
	ext->kind = kind;
	ext->file_offset = kind == VDI_EXTENT_DATA || kind == VDI_EXTENT_BAD
				   ? vdi_slot_offset(img, e) + img->hdr.block_extra +
					     (start & (bs - 1))
				   : 0;
	end = ((uint64_t)vb + 1) * bs;
	for (vb++; vb < img->hdr.blocks && end < img->disk_size; vb++) {
		uint32_t next = vdi_map_get(img, vb);

		if (entry_kind(img, next) != kind)
			break;
		if (kind == VDI_EXTENT_DATA && (img->hdr.block_extra ||
						next != e + 1))
			break;
		if (kind == VDI_EXTENT_BAD)
			break;
		e = next;
		end += bs;
	}
	if (end > img->disk_size)
		end = img->disk_size;
	ext->length = end - start;
	return 0;
}
