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

int add_parent(const char *cmd, struct parents *p, const char *path)
{
	if (p->n == CLI_MAX_PARENTS) {
		die_msg("%s: more than %d -b options", cmd, CLI_MAX_PARENTS);
		return -1;
	}
	p->path[p->n++] = path;
	return 0;
}

/* Would the image open without its parents?  Then the chain failed. */
static bool opens_alone(const char *path)
{
	struct vdi_image *img;

	if (vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT |
				   VDI_OPEN_NOLOCK, &img) < 0)
		return false;
	vdi_close(img);
	return true;
}

int open_chain(const char *cmd, const char *path, const struct parents *p,
	       unsigned flags, bool no_parent_hint, struct vdi_image **out)
{
	static const struct parents none;
	struct vdi_image *img;
	unsigned levels;
	int ret;

	if (!p)
		p = &none;
	ret = vdi_open_chain(path, flags, p->path, p->n, &img);
	if (ret < 0) {
		lib_error(ret, "%s: cannot open %s", cmd, path);
		probe_hint(cmd, path);
		if (no_parent_hint && ret != -EBUSY && opens_alone(path))
			die_msg("%s: hint: --no-parent looks at %s alone", cmd,
				path);
		return ret;
	}
	/* The library ignores parents given for an image that has fewer:
	 * the user meant something else. */
	levels = chain_length(img) - 1;
	if (p->n > levels && !(flags & VDI_OPEN_NO_PARENT)) {
		if (levels == 0)
			die_msg("%s: %s is not a differencing image, so it has "
				"no parent; drop -b %s", cmd, path,
				p->path[0]);
		else
			die_msg("%s: %s has %u parent%s, but %zu %s named "
				"with -b", cmd, path, levels,
				levels == 1 ? "" : "s", p->n,
				p->n == 1 ? "was" : "were");
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
