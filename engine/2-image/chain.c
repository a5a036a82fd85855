/* Differencing images (VirtualBox snapshots): finding and checking the
 * parent, resolving a block through the chain, copy-on-write.  (Commit is
 * an operation: 6-ops/commit.c.) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "0-base/error.h"
#include "0-base/fileio.h"
#include "2-image/image.h"
#include "2-image/private.h"

/* Longest chain followed: deeper means a loop or a hostile image. */
#define MAX_CHAIN 32

static void uuid_text(const unsigned char vbox[16], char out[37])
{
	unsigned char u[16];

	vdi_uuid_swap(u, vbox);
	uuid_unparse_lower(u, out);
}

/* Does the file at `path` have the creation UUID `want` (VirtualBox
 * order)?  2 if its modification UUID is `modify` too, 1 if not, 0 if it
 * is not that image.  Reads only its first sector. */
static int has_uuid(const char *path, const unsigned char want[16],
		    const unsigned char *modify)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];
	struct vdi_header h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n <= 0 || vdi_header_decode(buf, (size_t)n, &h, NULL, 0) != 0 ||
	    memcmp(h.uuid_create, want, 16) != 0)
		return 0;
	return modify && memcmp(h.uuid_modify, modify, 16) == 0 ? 2 : 1;
}

/* Look for the parent among the .vdi files in the child's directory:
 * one whose modification UUID matches too wins over a stale copy. */
static char *find_parent(const struct vdi_image *img)
{
	char *dcopy = strdup(img->path), *dir, *found = NULL;
	int best = 0;
	DIR *d;
	struct dirent *de;

	if (!dcopy)
		return NULL;
	dir = dirname(dcopy);
	d = opendir(dir);
	while (d && best < 2 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *p;
		int score;

		if (len < 4 || strcasecmp(de->d_name + len - 4, ".vdi") != 0)
			continue;
		if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
			break;
		score = has_uuid(p, img->hdr.uuid_link,
				 img->hdr.uuid_parent_modify);
		if (score > best && !has_uuid(p, img->hdr.uuid_create, NULL)) {
			free(found);
			found = p;
			best = score;
		} else {
			free(p);
		}
	}
	if (d)
		closedir(d);
	free(dcopy);
	return found;
}

void vdi_commit_uuid(const struct vdi_image *child, unsigned char out[16])
{
	/* A name-based (SHA-1) UUID in a namespace of our own. */
	static const uuid_t ns = { 0x6c, 0x69, 0x62, 0x76, 0x64, 0x69, 0x4f,
				   0x1c, 0x8d, 0x0a, 0x63, 0x6f, 0x6d, 0x6d,
				   0x69, 0x74 };
	unsigned char name[32];
	uuid_t u;

	memcpy(name, child->hdr.uuid_create, 16);
	memcpy(name + 16, child->hdr.uuid_parent_modify, 16);
	uuid_generate_sha1(u, ns, (const char *)name, sizeof(name));
	vdi_uuid_swap(out, u);
}

int vdi_chain_open_parent(struct vdi_image *img, const char *const *parents,
			  size_t nparents, unsigned depth)
{
	const char *parent_path = nparents ? parents[0] : NULL;
	unsigned char resumed[16];
	struct vdi_image *parent;
	char *path;
	char a[37], b[37];
	int ret;

	if (depth >= MAX_CHAIN)
		return vdi_error(-ELOOP, "vdi_open", img->path,
				 "the chain of parents is longer than %d (a loop?)",
				 MAX_CHAIN);
	path = parent_path ? strdup(parent_path) : find_parent(img);
	if (!path) {
		uuid_text(img->hdr.uuid_link, a);
		return vdi_error(-ENOENT, "vdi_open", img->path,
				 "differencing image: no parent with UUID %s "
				 "found next to it; name it explicitly", a);
	}
	/* Parents are only read. */
	ret = vdi_image_open(path, (img->flags & ~VDI_OPEN_COMMIT) |
				   VDI_OPEN_RDONLY,
			     nparents ? parents + 1 : NULL,
			     nparents ? nparents - 1 : 0, depth + 1, &parent);
	if (ret < 0) {
		free(path);
		return ret;
	}
	if (memcmp(parent->hdr.uuid_create, img->hdr.uuid_link, 16)) {
		uuid_text(parent->hdr.uuid_create, a);
		uuid_text(img->hdr.uuid_link, b);
		ret = vdi_error(-EINVAL, "vdi_open", img->path,
				"parent %s has UUID %s, but the image links "
				"to %s", path, a, b);
	} else if (memcmp(parent->hdr.uuid_modify, img->hdr.uuid_parent_modify,
			  16) &&
		   !((img->flags & VDI_OPEN_COMMIT) &&
		     (vdi_commit_uuid(img, resumed),
		      !memcmp(parent->hdr.uuid_modify, resumed, 16)))) {
		uuid_text(parent->hdr.uuid_modify, a);
		uuid_text(img->hdr.uuid_parent_modify, b);
		ret = vdi_error(-ESTALE, "vdi_open", img->path,
				"parent %s was modified after this image was "
				"made from it (modification UUID %s, expected "
				"%s)%s", path, a, b,
				img->flags & VDI_OPEN_COMMIT
					? ", and not by a commit of this image"
					: "");
	} else if (parent->disk_size != img->disk_size ||
		   parent->hdr.block_size != img->hdr.block_size) {
		ret = vdi_error(-EINVAL, "vdi_open", img->path,
				"parent %s has %" PRIu64 " bytes in blocks of "
				"%" PRIu32 ", the image %" PRIu64 " in blocks "
				"of %" PRIu32, path, parent->disk_size,
				parent->hdr.block_size, img->disk_size,
				img->hdr.block_size);
	}
	if (ret < 0) {
		vdi_image_free(parent);
		free(path);
		return ret;
	}
	img->parent = parent;
	free(path);
	return 0;
}

struct vdi_image *vdi_chain_resolve(struct vdi_image *img, uint32_t vb,
				    uint32_t *entry)
{
	uint32_t e = vdi_map_get(img, vb);

	while (e == VDI_BMAP_FREE && img->parent) {
		img = img->parent;
		e = vdi_map_get(img, vb);
	}
	*entry = e;
	return img;
}

/* Copy what the parents hold for block `vb` into physical block `index`
 * of `img` (nothing when they hold no data).  The parents are read-only
 * and `index` is not yet named by any entry: no lock is needed, but
 * vdi_chain_copy_up_pending holds it to keep its pending bit in step. */
static int copy_block_up(struct vdi_image *img, uint32_t vb, uint64_t index)
{
	struct vdi_image *src;
	unsigned char *buf;
	uint32_t e;
	int ret;

	src = vdi_chain_resolve(img->parent, vb, &e);
	if (!vdi_entry_is_data(e))
		return 0;
	if (vdi_entry_is_bad(src, e))
		return vdi_error(-EIO, "vdi_queue_submit", src->path,
				 "block %" PRIu32 " maps to physical block %"
				 PRIu32 ", past the end of the file", vb, e);
	buf = malloc(src->slot_size);
	if (!buf)
		return -ENOMEM;
	ret = vdi_read_slot(src, e, buf);
	if (ret == 0)
		ret = vdi_file_write(img->meta_fd, buf + src->hdr.block_extra,
				     img->hdr.block_size,
				     vdi_slot_offset(img, index) +
					     img->hdr.block_extra,
				     VDI_FILE_SEAM);
	free(buf);
	if (ret < 0)
		return vdi_error(ret, "vdi_queue_submit", img->path,
				 "cannot copy block %" PRIu32 " up from %s: %s",
				 vb, src->path, strerror(-ret));
	return 0;
}

int vdi_chain_no_parent(struct vdi_image *img, uint32_t vb, const char *fn)
{
	if (img->hdr.type != VDI_TYPE_DIFF)
		return 0;
	return vdi_error(-ENOLINK, fn, img->path,
			 "block %" PRIu32 " is in the parent image, which was "
			 "not opened (VDI_OPEN_NO_PARENT)", vb);
}

bool vdi_chain_has_parent_data(struct vdi_image *img, uint32_t vb)
{
	uint32_t e;

	if (vdi_map_get(img, vb) != VDI_BMAP_FREE || !img->parent)
		return false;
	vdi_chain_resolve(img->parent, vb, &e);
	return vdi_entry_is_data(e);
}

int vdi_chain_copy_up(struct vdi_image *img, uint32_t vb, uint64_t index)
{
	return copy_block_up(img, vb, index);
}

int vdi_chain_copy_up_pending(struct vdi_image *img, uint32_t vb,
			      uint32_t index)
{
	int ret = 0;

	pthread_mutex_lock(&img->lock);
	if (vdi_is_pending(img, vb)) {
		ret = copy_block_up(img, vb, index);
		if (ret == 0)
			vdi_set_pending(img, vb, false);
	}
	pthread_mutex_unlock(&img->lock);
	return ret;
}

struct vdi_image *vdi_get_parent(struct vdi_image *img)
{
	return img->parent;
}

const char *vdi_get_filename(const struct vdi_image *img)
{
	return img->path;
}
