/* A VDI image as a convert endpoint: requests go through one vdi_queue;
 * free and zero blocks, found with vdi_map_extent(), are never read.  A
 * differencing source is read through its chain of parents (the library
 * does that for reads); its extents are looked up along the chain too, so
 * a block free in the child but holding data in a parent is copied. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "convert.h"

struct vdi_ep {
	struct endpoint ep;
	struct vdi_image *img;
	struct vdi_queue *q;
	bool writable;
};

#define VEP(ep) ((struct vdi_ep *)(ep))

static int v_read(struct endpoint *ep, void *buf, size_t len, uint64_t off,
		  void *tag)
{
	return vdi_queue_read(VEP(ep)->q, buf, len, off, tag);
}

static int v_write(struct endpoint *ep, const void *buf, size_t len,
		   uint64_t off, void *tag)
{
	return vdi_queue_write(VEP(ep)->q, buf, len, off, tag);
}

static int v_submit(struct endpoint *ep)
{
	return vdi_queue_submit(VEP(ep)->q);
}

static int v_reap(struct endpoint *ep, struct vdi_completion *out,
		  unsigned min, unsigned max)
{
	return vdi_queue_reap(VEP(ep)->q, out, min, max, NULL);
}

static unsigned v_pending(const struct endpoint *ep)
{
	return vdi_queue_pending(VEP(ep)->q);
}

static int v_extent(struct endpoint *ep, uint64_t off, uint64_t *len,
		    bool *zero)
{
	struct chain_extent ext;
	int ret = chain_extent("convert", VEP(ep)->img, off, ep->size - off,
			       &ext);

	if (ret < 0)
		return ret;
	*len = ext.length;
	/* A bad entry is read like data: the read reports the problem. */
	*zero = ext.kind == VDI_EXTENT_UNALLOCATED ||
		ext.kind == VDI_EXTENT_ZERO;
	return 0;
}

static int v_finish(struct endpoint *ep)
{
	struct vdi_ep *v = VEP(ep);
	struct vdi_completion c;
	int ret = 0, n;

	if (v->writable) {
		/* A flush queued after every write completed covers them all,
		 * with the block map and header that point at them. */
		ret = vdi_queue_flush(v->q, NULL);
		if (ret >= 0)
			ret = vdi_queue_submit(v->q);
		if (ret < 0)
			lib_error(ret, "convert: cannot flush %s", ep->path);
		while (ret >= 0 && vdi_queue_pending(v->q)) {
			n = vdi_queue_reap(v->q, &c, 1, 1, NULL);
			if (n < 0) {
				lib_error(n, "convert: cannot flush %s",
					  ep->path);
				ret = n;
			} else if (n == 1 && c.res < 0) {
				ret = (int)c.res;
				die_msg("convert: cannot flush %s: %s",
					ep->path, strerror(-ret));
			}
		}
	}
	vdi_queue_destroy(v->q);
	n = vdi_close(v->img);
	if (n < 0 && ret >= 0) {
		lib_error(n, "convert: cannot close %s", ep->path);
		ret = n;
	}
	free(v);
	return ret < 0 ? ret : 0;
}

static void v_abort(struct endpoint *ep)
{
	struct vdi_ep *v = VEP(ep);

	vdi_queue_destroy(v->q);
	vdi_close(v->img);
	free(v);
}

static const struct endpoint_ops vdi_ops = {
	.read = v_read,
	.write = v_write,
	.submit = v_submit,
	.reap = v_reap,
	.pending = v_pending,
	.extent = v_extent,
	.finish = v_finish,
	.abort = v_abort,
};

static int v_open(const char *path, const struct parents *parents,
		  bool writable,
		  unsigned depth, struct endpoint **out)
{
	struct vdi_ep *v = calloc(1, sizeof(*v));
	int ret;

	if (!v) {
		die_msg("out of memory");
		return -1;
	}
	ret = open_chain("convert", path, parents,
			 writable ? 0 : VDI_OPEN_RDONLY, false, &v->img);
	if (ret < 0) {
		free(v);
		return -1;
	}
	ret = vdi_queue_create(v->img, depth, 0, &v->q);
	if (ret < 0) {
		lib_error(ret, "convert: cannot set up a queue for %s", path);
		vdi_close(v->img);
		free(v);
		return -1;
	}
	v->ep.ops = &vdi_ops;
	v->ep.path = path;
	v->ep.size = vdi_get_size(v->img);
	v->writable = writable;
	*out = &v->ep;
	return 0;
}

int vdi_open_source(const char *path, const struct parents *parents,
		    unsigned depth, struct endpoint **out)
{
	return v_open(path, parents, false, depth, out);
}

int vdi_open_dest(const char *path, unsigned depth, struct endpoint **out)
{
	return v_open(path, NULL, true, depth, out);
}

struct vdi_image *vdi_endpoint_image(const struct endpoint *ep)
{
	return VEP(ep)->img;
}
