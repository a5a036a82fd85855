/* The freeing calls accept NULL, and the error message is per thread:
 * vdi_close(NULL) returns 0, vdi_queue_destroy(NULL) does nothing,
 * vdi_errmsg() is "" (never NULL) on a fresh thread, and one thread's
 * failure does not show in another's message. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <vdi.h>

static int failed;

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,      \
				__LINE__, #cond);                          \
			failed = 1;                                        \
		}                                                          \
	} while (0)

static void *other_thread(void *arg)
{
	const char *m = vdi_errmsg();

	(void)arg;
	CHECK(m != NULL && m[0] == '\0');
	return NULL;
}

int main(void)
{
	struct vdi_image *img = (struct vdi_image *)&failed;
	pthread_t t;
	const char *m;
	int ret;

	m = vdi_errmsg();
	CHECK(m != NULL && m[0] == '\0');

	CHECK(vdi_close(NULL) == 0);
	vdi_queue_destroy(NULL);

	/* A failure leaves a message that names the call and the file, and
	 * sets the handle to NULL. */
	ret = vdi_open("/nonexistent/dir/disk.vdi", VDI_OPEN_RDONLY, &img);
	CHECK(ret == -ENOENT);
	CHECK(img == NULL);
	m = vdi_errmsg();
	CHECK(strncmp(m, "vdi_open: /nonexistent/dir/disk.vdi: ", 37) == 0);

	/* vdi_close(NULL) after a failure: still 0. */
	CHECK(vdi_close(NULL) == 0);

	/* Another thread does not see this thread's message. */
	CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(strncmp(vdi_errmsg(), "vdi_open: ", 10) == 0);

	if (!failed)
		printf("ok: vdi_close(NULL), vdi_queue_destroy(NULL), "
		       "per-thread vdi_errmsg()\n");
	return failed;
}
