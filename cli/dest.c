/* The file that vdi create or vdi convert is about to make: may it take
 * that name?  A new name is fine if its directory can be written.  An
 * existing file is replaced only with --force, only if it is a regular
 * file the user may write (the new file is renamed over it, which the
 * file's own permissions would not stop), and only if no process has it
 * open through QEMU's byte locks, which libvdi takes too (engine/2-image/lock.c):
 * a writer that still has the old file open would go on writing into a
 * file that no longer has a name, and lose everything it writes.
 *
 * The old file is locked as a writer locks it until the new one has
 * replaced it, so nothing can open it for writing in between. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* QEMU's lock bytes (see engine/2-image/lock.c): 100 + bit says "I hold this
 * permission", 200 + bit "I let no one else hold it". */
static const struct {
	off_t byte;
	const char *what;
} lock_bytes[] = {
	{ 101, "has it open for writing (it holds QEMU's write lock, byte "
	       "101)" },
	{ 103, "may resize it (it holds QEMU's resize lock, byte 103)" },
	{ 201, "has it open and forbids writing it (it holds QEMU's lock "
	       "byte 201: write not shared)" },
	{ 203, "has it open and forbids resizing it (it holds QEMU's lock "
	       "byte 203: resize not shared)" },
};
#define NLOCKS (sizeof(lock_bytes) / sizeof(lock_bytes[0]))

static int lock_byte(int fd, int cmd, short type, off_t byte, short *found)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = byte, .l_len = 1 };

	if (fcntl(fd, cmd, &fl) < 0)
		return -errno;
	if (found)
		*found = fl.l_type;
	return 0;
}

/* Take a writer's locks on the old file, then look for anyone else's.
 * Our own shared locks do not conflict with each other (one open file
 * description), so the test sees other processes only. */
static int lock_old(const char *cmd, const char *path, struct dest *d)
{
	size_t i;
	short type;
	int ret = 0;

	d->lock_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (d->lock_fd < 0) {
		die_msg("%s: cannot open %s to look at its locks: %s", cmd,
			path, strerror(errno));
		return -1;
	}
	for (i = 0; i < NLOCKS && ret == 0; i++)
		ret = lock_byte(d->lock_fd, F_OFD_SETLK, F_RDLCK,
				lock_bytes[i].byte, NULL);
	if (ret == -EAGAIN || ret == -EACCES) {
		i--;
		goto busy;
	}
	for (i = 0; i < NLOCKS && ret == 0; i++) {
		ret = lock_byte(d->lock_fd, F_OFD_GETLK, F_WRLCK,
				lock_bytes[i].byte, &type);
		if (ret == 0 && type != F_UNLCK)
			goto busy;
	}
	if (ret < 0) {
		die_msg("%s: cannot look at the locks of %s: %s", cmd, path,
			strerror(-ret));
		goto close_fd;
	}
	return 0;

busy:
	die_msg("%s: %s is in use: another process %s; stop that process "
		"first", cmd, path, lock_bytes[i].what);
close_fd:
	close(d->lock_fd);
	d->lock_fd = -1;
	return -1;
}

/* The new file is made in the directory of `path` and renamed there. */
static int check_dir(const char *cmd, const char *path)
{
	char buf[PATH_MAX];
	const char *dir;

	if (strlen(path) >= sizeof(buf)) {
		die_msg("%s: %s: %s", cmd, path, strerror(ENAMETOOLONG));
		return -1;
	}
	strcpy(buf, path);
	dir = dirname(buf);
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0) {
		die_msg("%s: cannot make %s: the directory %s cannot be "
			"written: %s", cmd, path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

int dest_claim(const char *cmd, const char *path, bool force, struct dest *d)
{
	struct stat lst;

	d->lock_fd = -1;
	d->exists = false;
	if (stat(path, &d->st) < 0) {
		if (errno != ENOENT || lstat(path, &lst) == 0) {
			/* ENOENT with a name: a symbolic link to nothing. */
			die_msg("%s: %s: %s", cmd, path,
				errno == ENOENT ? "a broken symbolic link"
						: strerror(errno));
			return -1;
		}
		return check_dir(cmd, path);
	}
	d->exists = true;
	if (!S_ISREG(d->st.st_mode)) {
		die_msg("%s: %s exists and is not a regular file; give a new "
			"file name", cmd, path);
		return -1;
	}
	/* The test the kernel makes when the file is opened for writing
	 * (so root, who may write any file, may replace a read-only one,
	 * as qemu-img does). */
	if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) < 0) {
		die_msg("%s: cannot replace %s: you may not write it: %s", cmd,
			path, strerror(errno));
		return -1;
	}
	if (check_dir(cmd, path) < 0 || lock_old(cmd, path, d) < 0)
		return -1;
	if (!force) {
		die_msg("%s: %s exists; add --force to replace it", cmd, path);
		dest_release(d);
		return -1;
	}
	return 0;
}

bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

mode_t dest_mode(const struct dest *d, mode_t fallback)
{
	return d->exists ? d->st.st_mode & 07777 : fallback;
}

void dest_release(struct dest *d)
{
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
}

const char *chain_member(struct vdi_image *top, const char *path)
{
	for (struct vdi_image *img = top; img; img = vdi_get_parent(img))
		if (same_file(vdi_get_filename(img), path))
			return vdi_get_filename(img);
	return NULL;
}
