/* The public structures keep their sizes (new fields come out of their
 * reserved space), the library zeroes the reserved space of what it
 * fills, and vdi_create refuses options whose reserved space is not zero:
 * the two halves of the rule in vdi.h that lets fields be added later. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vdi.h>

#if UINTPTR_MAX == UINT64_MAX /* LP64: x86-64, arm64, ... */
_Static_assert(sizeof(struct vdi_create_opts) == 88, "vdi_create_opts");
_Static_assert(sizeof(struct vdi_info) == 552, "vdi_info");
_Static_assert(sizeof(struct vdi_check_result) == 104, "vdi_check_result");
_Static_assert(sizeof(struct vdi_compact_result) == 56, "vdi_compact_result");
_Static_assert(sizeof(struct vdi_stats) == 128, "vdi_stats");
_Static_assert(sizeof(struct vdi_repair_result) == 168, "vdi_repair_result");
_Static_assert(sizeof(struct vdi_extent) == 32, "vdi_extent");
_Static_assert(sizeof(struct vdi_completion) == 16, "vdi_completion");
_Static_assert(sizeof(struct vdi_amend_opts) == 80, "vdi_amend_opts");
#endif

static int failed;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "FAIL: " __VA_ARGS__);             \
			fputc('\n', stderr);                               \
			failed = 1;                                        \
		}                                                          \
	} while (0)

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

int main(void)
{
	const char *dir = getenv("TMPDIR");
	struct vdi_create_opts o;
	struct vdi_check_result cr;
	struct vdi_image *img;
	struct vdi_stats st;
	struct vdi_info in;
	char path[4096];

	snprintf(path, sizeof(path), "%s/abi-sizes-%d.vdi", dir ? dir : "/tmp",
		 (int)getpid());
	memset(&o, 0, sizeof(o));
	o.reserved[4] = 1;
	CHECK(vdi_create(path, 1 << 20, &o) == -EINVAL,
	      "vdi_create took non-zero reserved options");
	CHECK(strstr(vdi_errmsg(), "reserved[4]"), "message: %s", vdi_errmsg());
	o.reserved[4] = 0;
	/* flags and reserved32 came out of reserved[0] (libvdi 0.2). */
	o.reserved32 = 1;
	CHECK(vdi_create(path, 1 << 20, &o) == -EINVAL,
	      "vdi_create took a non-zero reserved32");
	CHECK(strstr(vdi_errmsg(), "reserved32"), "message: %s", vdi_errmsg());
	o.reserved32 = 0;
	o.flags = 0x80000000u;
	CHECK(vdi_create(path, 1 << 20, &o) == -EINVAL,
	      "vdi_create took unknown flags");
	CHECK(strstr(vdi_errmsg(), "unknown flags 0x80000000"), "message: %s",
	      vdi_errmsg());
	o.flags = 0;
	if (vdi_create(path, 1 << 20, &o) < 0 || vdi_open(path, 0, &img) < 0) {
		fprintf(stderr, "FAIL: %s\n", vdi_errmsg());
		return 1;
	}
	memset(&in, 0xA5, sizeof(in));
	memset(&cr, 0xA5, sizeof(cr));
	memset(&st, 0xA5, sizeof(st));
	CHECK(vdi_get_info(img, &in) == 0, "vdi_get_info");
	CHECK(vdi_check(img, &cr, NULL, NULL) == 0, "vdi_check");
	vdi_get_stats(img, &st);
	CHECK(all_zero(in.reserved, sizeof(in.reserved)), "vdi_info.reserved");
	CHECK(all_zero(cr.reserved, sizeof(cr.reserved)),
	      "vdi_check_result.reserved");
	CHECK(all_zero(st.reserved, sizeof(st.reserved)), "vdi_stats.reserved");
	vdi_close(img);
	unlink(path);
	return failed;
}
