/* vdi_amend: change what a header says about an image without touching
 * its data: the description, the creation UUID, and a differencing
 * image's link to its parent (what VBoxManage modifymedium --description,
 * internalcommands sethduuid and sethdparentuuid do).  An operation on
 * one image, built on the open and header write-back of the I/O core. */
#include <errno.h>
#include <string.h>

#include "0-base/error.h"
#include "1-format/format.h"
#include "2-image/image.h"

static bool is_null(const unsigned char u[16])
{
	static const unsigned char zero[16];

	return !memcmp(u, zero, 16);
}

int vdi_amend(const char *path, const struct vdi_amend_opts *opts)
{
	struct vdi_image *img;
	int ret;

	if (!opts || !path)
		return vdi_error(-EINVAL, __func__, path, "no options given");
	for (size_t i = 0;
	     i < sizeof(opts->reserved) / sizeof(opts->reserved[0]); i++)
		if (opts->reserved[i])
			return vdi_error(-EINVAL, __func__, path,
					 "reserved options are not zero (zero "
					 "the whole structure)");
	if (opts->description && strlen(opts->description) >= VDI_DESC_SIZE)
		return vdi_error(-EINVAL, __func__, path,
				 "the description is %zu bytes; at most %d fit",
				 strlen(opts->description), VDI_DESC_SIZE - 1);
	if ((opts->uuid && is_null(opts->uuid)) ||
	    (opts->parent_uuid && is_null(opts->parent_uuid)))
		return vdi_error(-EINVAL, __func__, path,
				 "the null UUID cannot name an image");
	/* Alone, and as the only writer: the parent link may be what is
	 * being mended. */
	ret = vdi_open(path, VDI_OPEN_NO_PARENT, &img);
	if (ret < 0)
		return ret;
	if ((opts->parent_uuid || opts->parent_modify_uuid) &&
	    img->hdr.type != VDI_TYPE_DIFF) {
		ret = vdi_error(-EINVAL, __func__, path,
				"not a differencing image: it has no parent "
				"to link to");
		goto out;
	}
	pthread_mutex_lock(&img->lock);
	if (opts->description) {
		memset(img->hdr.description, 0, sizeof(img->hdr.description));
		memcpy(img->hdr.description, opts->description,
		       strlen(opts->description));
	}
	/* Stored in VirtualBox's byte order. */
	if (opts->uuid)
		vdi_uuid_swap(img->hdr.uuid_create, opts->uuid);
	if (opts->parent_uuid)
		vdi_uuid_swap(img->hdr.uuid_link, opts->parent_uuid);
	if (opts->parent_modify_uuid)
		vdi_uuid_swap(img->hdr.uuid_parent_modify,
			      opts->parent_modify_uuid);
	/* The disk is unchanged: no new modification UUID, so the image's
	 * own children still open. */
	img->modify_set = true;
	img->header_dirty = true;
	ret = vdi_image_writeback_sync(img);
	if (ret == 0)
		ret = vdi_image_sync(img);
	pthread_mutex_unlock(&img->lock);
out:
	if (ret < 0) {
		vdi_close(img);
		return ret;
	}
	return vdi_close(img);
}
