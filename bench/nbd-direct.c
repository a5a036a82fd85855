/* A yardstick for bench/nbd-qd1, not a product: the least an nbdkit
 * plugin can do to serve a raw file with O_DIRECT.  Each request is one
 * pread or pwrite on the worker's thread, through a 4 KiB-aligned buffer
 * of its own (nbdkit's buffers are not aligned for O_DIRECT).  What it
 * costs over nbdkit's null plugin is the disk; what nbdkit-vdi costs over
 * it is the plugin.  Built by bench/nbd-qd1:
 *   cc -O2 -fPIC -shared $(pkg-config --cflags nbdkit) -o nbd-direct.so
 *   nbdkit nbd-direct.so file=disk.raw */
#define _GNU_SOURCE
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define ALIGN 4096
#define MAX_REQUEST (32u << 20) /* nbdkit's largest */

static char *path;
static int fd = -1;
static _Thread_local void *bounce;

static void direct_unload(void)
{
	if (fd >= 0)
		close(fd);
	free(path);
}

static int direct_config(const char *key, const char *value)
{
	if (strcmp(key, "file")) {
		nbdkit_error("unknown parameter '%s'", key);
		return -1;
	}
	free(path);
	path = nbdkit_absolute_path(value);
	return path ? 0 : -1;
}

static int direct_get_ready(void)
{
	if (!path) {
		nbdkit_error("give file=DISK.raw");
		return -1;
	}
	fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		nbdkit_error("open %s: %m", path);
		return -1;
	}
	return 0;
}

static void *direct_open(int readonly)
{
	return &fd;
}

static int64_t direct_get_size(void *h)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		nbdkit_error("fstat: %m");
		return -1;
	}
	return st.st_size;
}

/* This thread's aligned buffer, made on its first request. */
static void *thread_buffer(void)
{
	if (!bounce && posix_memalign(&bounce, ALIGN, MAX_REQUEST)) {
		bounce = NULL;
		nbdkit_error("out of memory");
	}
	return bounce;
}

static int direct_pread(void *h, void *buf, uint32_t count, uint64_t offset,
			uint32_t flags)
{
	void *b = thread_buffer();

	if (!b)
		return -1;
	if (pread(fd, b, count, (off_t)offset) != (ssize_t)count) {
		nbdkit_error("pread: %m");
		return -1;
	}
	memcpy(buf, b, count);
	return 0;
}

static int direct_pwrite(void *h, const void *buf, uint32_t count,
			 uint64_t offset, uint32_t flags)
{
	void *b = thread_buffer();

	if (!b)
		return -1;
	memcpy(b, buf, count);
	if (pwrite(fd, b, count, (off_t)offset) != (ssize_t)count) {
		nbdkit_error("pwrite: %m");
		return -1;
	}
	return 0;
}

static int direct_flush(void *h, uint32_t flags)
{
	if (fdatasync(fd) < 0) {
		nbdkit_error("fdatasync: %m");
		return -1;
	}
	return 0;
}

static struct nbdkit_plugin plugin = {
	.name = "nbd-direct",
	.unload = direct_unload,
	.config = direct_config,
	.magic_config_key = "file",
	.get_ready = direct_get_ready,
	.open = direct_open,
	.get_size = direct_get_size,
	.pread = direct_pread,
	.pwrite = direct_pwrite,
	.flush = direct_flush,
	.errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
