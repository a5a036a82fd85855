/* Inter-process locking, in the byte-lock scheme QEMU uses, so that libvdi
 * and QEMU keep each other out of an image the same way two QEMUs do.
 *
 * Each permission has two lock bytes: 100 + bit ("I hold it") and
 * 200 + bit ("I do not let others hold it").  Every lock is a shared (read)
 * OFD lock; a conflict is found by testing whether anyone else holds a
 * byte (F_OFD_GETLK with a write lock).  The bits:
 *   0 consistent read, 1 write, 2 write-unchanged, 3 resize.
 * A writer holds read, write and resize and shares only read and
 * write-unchanged; a reader holds read and shares all but write and resize.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "0-base/error.h"
#include "2-image/image.h"

#define PERM_BASE 100
#define SHARED_BASE 200
enum { P_READ = 1 << 0, P_WRITE = 1 << 1, P_WRITE_UNCHANGED = 1 << 2,
       P_RESIZE = 1 << 3, P_ALL = 0xF };

static int lock_byte(int fd, int type, int cmd, off_t at)
{
	struct flock fl = { .l_type = (short)type, .l_whence = SEEK_SET,
			    .l_start = at, .l_len = 1 };

	if (fcntl(fd, cmd, &fl) < 0)
		return -errno;
	return cmd == F_OFD_GETLK && fl.l_type != F_UNLCK ? -EBUSY : 0;
}

int vdi_image_lock(struct vdi_image *img)
{
	bool rd = img->flags & VDI_OPEN_RDONLY;
	unsigned held = rd ? P_READ : P_READ | P_WRITE | P_RESIZE;
	unsigned shared = P_READ | P_WRITE_UNCHANGED;
	int bit, ret = 0;

	if (img->flags & VDI_OPEN_NOLOCK)
		return 0;
	/* The locks live on a descriptor of their own that no ring ever holds:
	 * a ring's teardown in the kernel is asynchronous and would keep
	 * locks on a registered descriptor alive after vdi_close(). */
	img->lock_fd = open(img->path, O_RDONLY | O_CLOEXEC);
	if (img->lock_fd < 0)
		return vdi_error(-errno, "vdi_open", img->path, "%s",
				 strerror(errno));
	for (bit = 0; bit < 4 && ret == 0; bit++) {
		if (held & (1u << bit))
			ret = lock_byte(img->lock_fd, F_RDLCK, F_OFD_SETLK,
					PERM_BASE + bit);
		if (ret == 0 && !(shared & (1u << bit)))
			ret = lock_byte(img->lock_fd, F_RDLCK, F_OFD_SETLK,
					SHARED_BASE + bit);
	}
	/* Does anyone refuse to share what we hold, or hold what we refuse
	 * to share? */
	for (bit = 0; bit < 4 && ret == 0; bit++) {
		if (held & (1u << bit))
			ret = lock_byte(img->lock_fd, F_WRLCK, F_OFD_GETLK,
					SHARED_BASE + bit);
		if (ret == 0 && !(shared & (1u << bit)))
			ret = lock_byte(img->lock_fd, F_WRLCK, F_OFD_GETLK,
					PERM_BASE + bit);
	}
	if (ret == -EBUSY || ret == -EAGAIN || ret == -EACCES)
		return vdi_error(-EBUSY, "vdi_open", img->path,
				 "image is in use by another process");
	if (ret < 0)
		return vdi_error(ret, "vdi_open", img->path,
				 "cannot lock the image: %s", strerror(-ret));
	return 0;
}
