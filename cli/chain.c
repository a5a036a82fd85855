/* Differencing images (VirtualBox snapshots) in the tool: the -b PARENT
 * option, opening an image together with its parents, and finding where
 * the data of a virtual offset comes from along the chain. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"

int parent_format(const char *cmd, const char *fmt)
{
	if (!strcmp(fmt, "vdi"))
		return 0;
	die_msg("%s: a VDI image can only have a VDI parent, not '%s'", cmd,
		fmt);
	return -1;
}

int open_chain(const char *cmd, const char *path, const char *parent,
	       unsigned flags, struct vdi_image **out)
{
	struct vdi_image *img;
	int ret = vdi_open_parent(path, flags, parent, &img);

	if (ret < 0) {
		lib_error(ret, "%s: cannot open %s", cmd, path);
		return ret;
	}
	/* The library ignores a parent given for an image that has none:
	 * the user meant something else. */
	if (parent && !vdi_get_parent(img)) {
		die_msg("%s: %s is not a differencing image, so it has no "
			"parent; drop -b %s", cmd, path, parent);
		vdi_close(img);
		return -EINVAL;
	}
	*out = img;
	return 0;
}

unsigned chain_length(struct vdi_image *img)
{
	unsigned n = 0;

	for (; img; img = vdi_get_parent(img))
		n++;
	return n;
}

int chain_extent(const char *cmd, struct vdi_image *top, uint64_t off,
		 uint64_t max, struct chain_extent *out)
{
	struct vdi_image *img = top;
	unsigned depth = 0;
	uint64_t len = max;

	for (;;) {
		struct vdi_extent ext;
		uint64_t run;
		int ret = vdi_map_extent(img, off, &ext);

		if (ret < 0) {
			lib_error(ret, "%s: %s: cannot map offset %" PRIu64,
				  cmd, vdi_get_filename(img), off);
			return ret;
		}
		if (ext.start > off || ext.start + ext.length <= off) {
			die_msg("%s: %s: the library described offset %" PRIu64
				" as the extent %" PRIu64 "+%" PRIu64, cmd,
				vdi_get_filename(img), off, ext.start,
				ext.length);
			return -EIO;
		}
		run = ext.start + ext.length - off;
		if (run < len)
			len = run;
		/* A free entry lets the parent's block show through; a zero
		 * entry hides it. */
		if (ext.kind != VDI_EXTENT_UNALLOCATED || !vdi_get_parent(img)) {
			out->length = len;
			out->kind = ext.kind;
			out->file_offset = ext.kind == VDI_EXTENT_DATA ||
						   ext.kind == VDI_EXTENT_BAD
					   ? ext.file_offset + (off - ext.start)
					   : 0;
			out->depth = depth;
			out->img = img;
			return 0;
		}
		img = vdi_get_parent(img);
		depth++;
	}
}
