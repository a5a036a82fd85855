/* Process-wide registry of open VDI images: see vdi_registry.h. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vdi_registry.h"

struct vfio_entry {
	struct vfio_entry *next;
	char *key;               /* canonical path */
	struct vdi_image *img;   /* NULL for a path only remembered as created */
	unsigned flags;          /* VDI_OPEN_* the handle was opened with */
	unsigned refs;
	int created;             /* this process created or recreated it */
};

static pthread_mutex_t vfio_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vfio_entry *vfio_entries;

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The canonical name of `path`, which need not exist yet: realpath() of the
 * file, or of its directory plus the last component.  Caller frees. */
static char *canon_path(const char *path)
{
	char buf[PATH_MAX];
	const char *slash, *base;
	char *dir, *out;
	size_t n;

	if (realpath(path, buf))
		return strdup(buf);
	if (errno != ENOENT)
		return NULL;

	slash = strrchr(path, '/');
	if (!slash) {
		dir = strdup(".");
		base = path;
	} else {
		dir = strndup(path, (size_t)(slash - path) + (slash == path));
		base = slash + 1;
	}
	if (!dir)
		return NULL;
	if (!realpath(dir, buf)) {
		free(dir);
		return NULL;
	}
	free(dir);
	n = strlen(buf) + strlen(base) + 2;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", strcmp(buf, "/") ? buf : "", base);
	return out;
}

static struct vfio_entry *find_key(const char *key)
{
	struct vfio_entry *e;

	for (e = vfio_entries; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

static struct vfio_entry *find_img(const struct vdi_image *img)
{
	struct vfio_entry *e;

	for (e = vfio_entries; e; e = e->next)
		if (e->img == img)
			return e;
	return NULL;
}

/* Find or add the entry for `key`; takes ownership of key. */
static struct vfio_entry *get_entry(char *key)
{
	struct vfio_entry *e = find_key(key);

	if (e) {
		free(key);
		return e;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		free(key);
		return NULL;
	}
	e->key = key;
	e->next = vfio_entries;
	vfio_entries = e;
	return e;
}

int vfio_prepare(const char *path, const struct vfio_create *c, int *created,
		 char *err, size_t errlen)
{
	struct vdi_create_opts opts;
	struct vfio_entry *e;
	struct stat st;
	char *key;
	int exists, ret = 0;

	*created = 0;
	key = canon_path(path);
	if (!key) {
		ret = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}

	pthread_mutex_lock(&vfio_lock);
	e = get_entry(key);
	if (!e) {
		ret = -ENOMEM;
		seterr(err, errlen, "%s: out of memory", path);
		goto out_unlock;
	}

	exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT) {
		ret = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out_unlock;
	}
	if (exists && (!c->recreate || e->created))
		goto out_unlock;
	if (exists && e->img) {
		ret = -EBUSY;
		seterr(err, errlen, "%s: cannot recreate an image that is open", path);
		goto out_unlock;
	}
	if (!exists && !c->may_create) {
		ret = -ENOENT;
		seterr(err, errlen, "%s: no such image", path);
		goto out_unlock;
	}
	if (!c->size) {
		ret = -EINVAL;
		seterr(err, errlen, "%s: %s the image needs a size: set size= or filesize=",
		       path, exists ? "to recreate" : "to create");
		goto out_unlock;
	}

	memset(&opts, 0, sizeof(opts));
	opts.type = c->fixed ? VDI_TYPE_STATIC : VDI_TYPE_DYNAMIC;
	opts.block_size = c->block_size;
	opts.description = "created by the fio engine of libvdi";
	opts.overwrite = exists;
	/* Never replace an image that a VM, nbdkit, qemu-img or another
	 * fio has open: its writes would go to a file without a name. */
	opts.flags = VDI_CREATE_REFUSE_IN_USE;
	ret = vdi_create(path, c->size, &opts);
	if (ret == -EEXIST && !exists) {
		/* Another process made it between stat() and here. */
		ret = 0;
		goto out_unlock;
	}
	if (ret == -EBUSY) {
		seterr(err, errlen, "%s; vdi_recreate=1 replaces only an image "
		       "that no other process has open", vdi_errmsg());
		goto out_unlock;
	}
	if (ret < 0) {
		seterr(err, errlen, "%s", vdi_errmsg());
		goto out_unlock;
	}
	e->created = 1;
	*created = 1;
out_unlock:
	pthread_mutex_unlock(&vfio_lock);
	return ret;
}

int vfio_peek_size(const char *path, uint64_t *size, char *err, size_t errlen)
{
	struct vfio_entry *e;
	struct vdi_image *img;
	char *key;
	int ret;

	key = canon_path(path);
	if (!key) {
		ret = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}

	pthread_mutex_lock(&vfio_lock);
	e = find_key(key);
	free(key);
	if (e && e->img) {
		*size = vdi_get_size(e->img);
		pthread_mutex_unlock(&vfio_lock);
		return 0;
	}
	pthread_mutex_unlock(&vfio_lock);

	/* No lock: another process may be writing the image; only the header's
	 * disk size is read, and that never changes. */
	ret = vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NOLOCK, &img);
	if (ret < 0) {
		seterr(err, errlen, "%s", vdi_errmsg());
		return ret;
	}
	*size = vdi_get_size(img);
	vdi_close(img);
	return 0;
}

/* How long vfio_image_get() retries an image that is locked before it
 * gives up.  The holder may be a process that is just exiting (the previous
 * fio run, a qemu-img that has not quite gone); a real second writer is
 * refused after this grace.  (libvdi before its lock.c kept the lock on a
 * descriptor registered with io_uring, whose release the kernel defers past
 * vdi_close(): reopening right away then failed every time.) */
#define VFIO_LOCK_WAIT_MS 1000
#define VFIO_LOCK_STEP_MS 20

int vfio_image_get(const char *path, unsigned flags, struct vdi_image **img,
		   int *flags_differ, char *err, size_t errlen)
{
	struct timespec step = { 0, VFIO_LOCK_STEP_MS * 1000000L };
	struct vfio_entry *e;
	unsigned waited = 0;
	char *key;
	int ret = 0;

	*img = NULL;
	*flags_differ = 0;
	key = canon_path(path);
	if (!key) {
		ret = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}

	pthread_mutex_lock(&vfio_lock);
	e = get_entry(key);
	if (!e) {
		ret = -ENOMEM;
		seterr(err, errlen, "%s: out of memory", path);
		goto out_unlock;
	}
	for (;;) {
		if (e->img) {
			if ((e->flags & VDI_OPEN_RDONLY) && !(flags & VDI_OPEN_RDONLY)) {
				ret = -EROFS;
				seterr(err, errlen,
				       "%s: another job of this fio process has the image open read-only",
				       path);
				goto out_unlock;
			}
			if ((e->flags ^ flags) & VDI_OPEN_DIRECT)
				*flags_differ = 1;
			e->refs++;
			*img = e->img;
			goto out_unlock;
		}
		ret = vdi_open(path, flags, &e->img);
		if (ret != -EBUSY || waited >= VFIO_LOCK_WAIT_MS)
			break;
		/* Sleep without the registry lock; another thread may open
		 * the image meanwhile, which the loop then shares. */
		e->img = NULL;
		pthread_mutex_unlock(&vfio_lock);
		nanosleep(&step, NULL);
		waited += VFIO_LOCK_STEP_MS;
		pthread_mutex_lock(&vfio_lock);
	}
	if (ret < 0) {
		e->img = NULL;
		seterr(err, errlen, "%s", vdi_errmsg());
		goto out_unlock;
	}
	e->flags = flags;
	e->refs = 1;
	*img = e->img;
out_unlock:
	pthread_mutex_unlock(&vfio_lock);
	return ret;
}

int vfio_image_put(struct vdi_image *img, char *err, size_t errlen)
{
	struct vfio_entry *e;
	int ret = 0;

	if (!img)
		return 0;
	pthread_mutex_lock(&vfio_lock);
	e = find_img(img);
	if (!e) {
		/* Not ours: close it anyway rather than leak it. */
		pthread_mutex_unlock(&vfio_lock);
		ret = vdi_close(img);
		if (ret < 0)
			seterr(err, errlen, "%s", vdi_errmsg());
		return ret;
	}
	if (--e->refs == 0) {
		ret = vdi_close(e->img);
		if (ret < 0)
			seterr(err, errlen, "%s", vdi_errmsg());
		e->img = NULL;
		e->flags = 0;
	}
	pthread_mutex_unlock(&vfio_lock);
	return ret;
}
