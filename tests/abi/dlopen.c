/* libvdi can be loaded at run time, as a plugin host would: dlopen() by
 * its soname, dlsym() of the calls, the LIBVDI_0.1 version node, and no
 * internal symbol visible.
 *   dlopen LIBDIR    (opens LIBDIR/libvdi.so.0) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <vdi.h>

int main(int argc, char **argv)
{
	static const char *const internal[] = {
		"vdi_error", "vdi_error_clear", "vdi_header_decode",
		"vdi_header_validate", "vdi_image_alloc", "vdi_image_lock",
		"vdi_meta_batch", "vdi_queue_create_internal",
	};
	int (*open_fn)(const char *, unsigned, struct vdi_image **);
	int (*close_fn)(struct vdi_image *);
	const char *(*errmsg_fn)(void);
	struct vdi_image *img;
	char path[4096];
	void *h;
	size_t i;
	int failed = 0, ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s LIBDIR\n", argv[0]);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/libvdi.so.0", argv[1]);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "FAIL: dlopen: %s\n", dlerror());
		return 1;
	}
	*(void **)&open_fn = dlsym(h, "vdi_open");
	*(void **)&close_fn = dlsym(h, "vdi_close");
	*(void **)&errmsg_fn = dlvsym(h, "vdi_errmsg", "LIBVDI_0.1");
	if (!open_fn || !close_fn || !errmsg_fn) {
		fprintf(stderr, "FAIL: dlsym: vdi_open %p, vdi_close %p, "
			"vdi_errmsg@LIBVDI_0.1 %p\n", *(void **)&open_fn,
			*(void **)&close_fn, *(void **)&errmsg_fn);
		return 1;
	}
	for (i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
		if (dlsym(h, internal[i])) {
			fprintf(stderr, "FAIL: internal symbol %s is visible\n",
				internal[i]);
			failed = 1;
		}

	/* The calls work through the pointers. */
	ret = open_fn("/nonexistent/disk.vdi", VDI_OPEN_RDONLY, &img);
	if (ret >= 0 || strncmp(errmsg_fn(), "vdi_open: ", 10) != 0) {
		fprintf(stderr, "FAIL: vdi_open through dlsym: %d '%s'\n", ret,
			errmsg_fn());
		failed = 1;
	}
	if (close_fn(NULL) != 0) {
		fprintf(stderr, "FAIL: vdi_close(NULL) through dlsym\n");
		failed = 1;
	}
	if (dlclose(h) != 0) {
		fprintf(stderr, "FAIL: dlclose: %s\n", dlerror());
		failed = 1;
	}
	if (!failed)
		printf("ok: dlopen(%s), dlsym, dlvsym LIBVDI_0.1, no internal "
		       "symbols\n", path);
	return failed;
}
