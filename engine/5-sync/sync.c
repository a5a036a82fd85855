/* The synchronous API: each call borrows a queue from the image's pool
 * (making one on first use), runs one request on it and waits. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include "0-base/error.h"
#include "2-image/image.h"
#include "4-queue/queue.h"
#include "5-sync/private.h"

enum sync_op { OP_READ, OP_WRITE, OP_FLUSH, OP_ZERO };

static int pool_get(struct vdi_image *img, struct vdi_queue **q)
{
	pthread_mutex_lock(&img->lock);
	*q = img->sync_pool;
	if (*q)
		img->sync_pool = *vdi_queue_pool_link(*q);
	pthread_mutex_unlock(&img->lock);
	if (*q)
		return 0;
	return vdi_queue_create_internal(img, 1, 0, true, q);
}

static void pool_put(struct vdi_image *img, struct vdi_queue *q)
{
	pthread_mutex_lock(&img->lock);
	*vdi_queue_pool_link(q) = img->sync_pool;
	img->sync_pool = q;
	pthread_mutex_unlock(&img->lock);
}

void vdi_sync_pool_destroy(struct vdi_image *img)
{
	struct vdi_queue *q;

	while ((q = img->sync_pool)) {
		img->sync_pool = *vdi_queue_pool_link(q);
		vdi_queue_destroy(q);
	}
}

static const char *const op_names[] = {
	[OP_READ] = "vdi_pread", [OP_WRITE] = "vdi_pwrite",
	[OP_FLUSH] = "vdi_flush", [OP_ZERO] = "vdi_write_zeroes",
};

/* Queue with `prep`, submit, wait: the request's result.  A request that
 * failed in the kernel (a data write hitting ENOSPC, say) completes with
 * its errno but no message: then the message is made here. */
static int64_t run_one(struct vdi_image *img, enum sync_op op, void *buf,
		       size_t len, uint64_t offset)
{
	struct vdi_completion c;
	struct vdi_queue *q;
	int ret;

	vdi_error_clear();
	ret = pool_get(img, &q);
	if (ret < 0)
		return ret;
	if (op == OP_ZERO)
		ret = vdi_queue_write_zeroes(q, offset, len, NULL);
	else if (op == OP_READ)
		ret = vdi_queue_read(q, buf, len, offset, NULL);
	else if (op == OP_WRITE)
		ret = vdi_queue_write(q, buf, len, offset, NULL);
	else
		ret = vdi_queue_flush(q, NULL);
	if (ret == 0)
		ret = vdi_queue_submit(q);
	if (ret >= 0) {
		ret = vdi_queue_reap(q, &c, 1, 1, NULL);
		if (ret == 1)
			ret = 0;
		else if (ret >= 0)
			ret = -EIO;
	}
	pool_put(img, q);
	if (ret < 0)
		return ret;
	if (c.res < 0 && !vdi_errmsg()[0]) {
		if (op == OP_FLUSH)
			vdi_error((int)c.res, op_names[op], img->path,
				  "flush failed: %s", strerror((int)-c.res));
		else
			vdi_error((int)c.res, op_names[op], img->path,
				  "%s of %zu bytes at offset %" PRIu64
				  " failed: %s", op == OP_READ ? "read" : op == OP_ZERO
				  ? "zeroing" : "write",
				  len, offset, strerror((int)-c.res));
	}
	return c.res;
}

ssize_t vdi_pread(struct vdi_image *img, void *buf, size_t len,
		  uint64_t offset)
{
	return (ssize_t)run_one(img, OP_READ, buf, len, offset);
}

ssize_t vdi_pwrite(struct vdi_image *img, const void *buf, size_t len,
		   uint64_t offset)
{
	return (ssize_t)run_one(img, OP_WRITE, (void *)buf, len, offset);
}

int vdi_flush(struct vdi_image *img)
{
	return (int)run_one(img, OP_FLUSH, NULL, 0, 0);
}

int vdi_write_zeroes(struct vdi_image *img, uint64_t offset, uint64_t len)
{
	int64_t ret = run_one(img, OP_ZERO, NULL, (size_t)len, offset);

	return ret < 0 ? (int)ret : 0;
}

int vdi_discard(struct vdi_image *img, uint64_t offset, uint64_t len)
{
	return vdi_write_zeroes(img, offset, len);
}
