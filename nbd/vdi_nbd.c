/* nbdkit-vdi-plugin: serve a VirtualBox disk image over NBD with libvdi.
 *   nbdkit vdi file=disk.vdi [parent=base.vdi]... [readonly=true]
 *                            [direct=true]
 * This file takes the parameters, opens the image and says what the export
 * can do; vdi_nbd_io.c does the I/O.  Only the public API of vdi.h is used. */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vdi_nbd.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* As deep as a chain libvdi opens. */
#define MAX_PARENTS 32

struct vdi_image *vdi_nbd_img;
bool vdi_nbd_readonly;
bool vdi_nbd_static;

static char *file;
static char *parents[MAX_PARENTS];
static size_t nparents;
static bool direct;

/* How long .cleanup waits for connections still being closed: nbdkit
 * 1.32 closes them after .cleanup when it has not before (waits of 5 s
 * all ran out), so only a moment for one that is closing. */
#define CLEANUP_WAIT_MS 50

static void vdi_nbd_unload(void)
{
	free(file);
	for (size_t i = 0; i < nparents; i++)
		free(parents[i]);
}

static int parse_flag(const char *key, const char *value, bool *out)
{
	int r = nbdkit_parse_bool(value);

	if (r < 0) {
		nbdkit_error("%s=%s: expected true or false", key, value);
		return -1;
	}
	*out = r;
	return 0;
}

/* Would `file` open without its parents?  Then it is a differencing image
 * whose parent was not found: say how to name it. */
static bool opens_alone(void)
{
	struct vdi_image *img;

	if (vdi_open(file, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT |
				   VDI_OPEN_NOLOCK, &img) < 0)
		return false;
	vdi_close(img);
	return true;
}

static int vdi_nbd_config(const char *key, const char *value)
{
	if (!strcmp(key, "file")) {
		if (file) {
			nbdkit_error("file= given twice");
			return -1;
		}
		file = nbdkit_absolute_path(value);
		return file ? 0 : -1;
	}
	if (!strcmp(key, "parent")) {
		if (nparents == MAX_PARENTS) {
			nbdkit_error("more than %d parent= parameters",
				     MAX_PARENTS);
			return -1;
		}
		parents[nparents] = nbdkit_absolute_path(value);
		if (!parents[nparents])
			return -1;
		nparents++;
		return 0;
	}
	if (!strcmp(key, "readonly"))
		return parse_flag(key, value, &vdi_nbd_readonly);
	if (!strcmp(key, "direct"))
		return parse_flag(key, value, &direct);
	nbdkit_error("unknown parameter '%s' (see nbdkit-vdi-plugin(1))", key);
	return -1;
}

static int vdi_nbd_config_complete(void)
{
	if (!file) {
		nbdkit_error("no image: give file=DISK.vdi");
		return -1;
	}
	return 0;
}

#define vdi_nbd_config_help \
	"file=<DISK.vdi>     (required) The VDI image to serve.\n" \
	"parent=<PARENT.vdi> The parent of a differencing image (repeat for\n" \
	"                    its parent...); default: found by UUID next to it.\n" \
	"readonly=true       Open read-only (shared lock) and refuse writes.\n" \
	"direct=true         Bypass the page cache (O_DIRECT)."

/* Open the image before nbdkit forks into the background, so that a bad
 * image or a lock held elsewhere stops nbdkit with libvdi's message on
 * stderr. */
static int vdi_nbd_get_ready(void)
{
	unsigned flags = 0, levels = 0;
	struct vdi_info info;
	int ret;

	if (vdi_nbd_readonly)
		flags |= VDI_OPEN_RDONLY;
	if (direct)
		flags |= VDI_OPEN_DIRECT;
	ret = vdi_open_chain(file, flags, (const char *const *)parents,
			     nparents, &vdi_nbd_img);
	if (ret < 0) {
		nbdkit_error("%s", vdi_errmsg());
		if (ret != -EBUSY && !nparents && opens_alone())
			nbdkit_error("%s is a differencing image: name its "
				     "parent with parent=PARENT.vdi", file);
		return -1;
	}
	for (struct vdi_image *p = vdi_get_parent(vdi_nbd_img); p;
	     p = vdi_get_parent(p))
		levels++;
	/* libvdi ignores parents beyond the chain's length: a mistake. */
	if (nparents > levels) {
		if (levels == 0)
			nbdkit_error("%s is not a differencing image, so it has "
				     "no parent: drop parent=%s", file,
				     parents[0]);
		else
			nbdkit_error("%s has %u parent%s, but %zu parent= "
				     "were given", file, levels,
				     levels == 1 ? "" : "s", nparents);
		goto out_close;
	}
	ret = vdi_get_info(vdi_nbd_img, &info);
	if (ret < 0) {
		nbdkit_error("%s", vdi_errmsg());
		goto out_close;
	}
	vdi_nbd_static = info.type == VDI_TYPE_STATIC;
	if (vdi_nbd_map_open() < 0)
		goto out_close;
	return 0;

out_close:
	vdi_nbd_map_close();
	vdi_close(vdi_nbd_img);
	vdi_nbd_img = NULL;
	return -1;
}

/* At shutdown: write back metadata and drop the lock.  With --run,
 * nbdkit may get here before it has closed the connection of the command
 * that just exited (`qemu-img info` does it most runs), so that
 * connection's queues are still there and vdi_close would refuse.  Then
 * the completed writes are flushed instead, and the exit drops the lock. */
static void vdi_nbd_cleanup(void)
{
	if (!vdi_nbd_img)
		return;
	if (!vdi_nbd_conns_wait(CLEANUP_WAIT_MS)) {
		if (!vdi_nbd_readonly && vdi_flush(vdi_nbd_img) < 0)
			nbdkit_error("%s", vdi_errmsg());
		else
			nbdkit_debug("a connection was still open at shutdown: "
				     "its completed writes were flushed");
		return;
	}
	vdi_nbd_map_close();
	if (vdi_close(vdi_nbd_img) < 0)
		nbdkit_error("%s", vdi_errmsg());
	vdi_nbd_img = NULL;
}

static void *vdi_nbd_open(int readonly)
{
	return vdi_nbd_conn_new();
}

static void vdi_nbd_close(void *h)
{
	vdi_nbd_conn_free(h);
}

static int64_t vdi_nbd_get_size(void *h)
{
	return (int64_t)vdi_get_size(vdi_nbd_img);
}

static int vdi_nbd_can_write(void *h)
{
	return !vdi_nbd_readonly;
}

static int vdi_nbd_can_flush(void *h)
{
	return 1;
}

/* Every connection shares the one image handle, and a libvdi flush makes
 * every write that completed before it durable, whichever queue carried
 * it (one fdatasync of the file, then the block map and header).  So a
 * flush on one connection covers the others': safe for multi-conn. */
static int vdi_nbd_can_multi_conn(void *h)
{
	return 1;
}

/* FUA: the write, then a flush on the same queue. */
static int vdi_nbd_can_fua(void *h)
{
	return NBDKIT_FUA_NATIVE;
}

static int vdi_nbd_can_trim(void *h)
{
	return !vdi_nbd_readonly;
}

static int vdi_nbd_can_zero(void *h)
{
	return !vdi_nbd_readonly;
}

/* We answer NBD_CMD_FLAG_FAST_ZERO honestly (see vdi_nbd_zero): only
 * zeroing that may trim a dynamic or differencing image is fast. */
static int vdi_nbd_can_fast_zero(void *h)
{
	return 1;
}

static int vdi_nbd_can_extents(void *h)
{
	return 1;
}

static struct nbdkit_plugin plugin = {
	.name = "vdi",
	.longname = "nbdkit VirtualBox disk image (VDI) plugin, on libvdi",
	.version = VDI_NBD_VERSION,
	.description = "Serves a VDI image (dynamic, static or differencing) "
		       "with libvdi's io_uring queues.",
	.unload = vdi_nbd_unload,
	.config = vdi_nbd_config,
	.config_complete = vdi_nbd_config_complete,
	.config_help = vdi_nbd_config_help,
	.magic_config_key = "file",
	.get_ready = vdi_nbd_get_ready,
	.cleanup = vdi_nbd_cleanup,
	.open = vdi_nbd_open,
	.close = vdi_nbd_close,
	.get_size = vdi_nbd_get_size,
	.can_write = vdi_nbd_can_write,
	.can_flush = vdi_nbd_can_flush,
	.can_multi_conn = vdi_nbd_can_multi_conn,
	.can_fua = vdi_nbd_can_fua,
	.can_trim = vdi_nbd_can_trim,
	.can_zero = vdi_nbd_can_zero,
	.can_fast_zero = vdi_nbd_can_fast_zero,
	.can_extents = vdi_nbd_can_extents,
	.pread = vdi_nbd_pread,
	.pwrite = vdi_nbd_pwrite,
	.flush = vdi_nbd_flush,
	.trim = vdi_nbd_trim,
	.zero = vdi_nbd_zero,
	.extents = vdi_nbd_extents,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
