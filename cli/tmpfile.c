/* The temporary destination of vdi convert.  The copy is written under a
 * hidden name in the destination's directory and renamed into place only
 * when it is complete and durable, so a failed or interrupted convert
 * leaves the old destination (or none) and no half-written file.  A
 * signal handler deletes the temporary file: unlink() is safe there. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "convert.h"

static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_armed;

static const int cleanup_signals[] = { SIGINT, SIGTERM, SIGHUP };
#define NSIGNALS (sizeof(cleanup_signals) / sizeof(cleanup_signals[0]))

static void on_signal(int sig)
{
	if (tmp_armed)
		unlink(tmp_path);
	tmp_armed = 0;
	/* Die of the signal, so the caller sees how we ended. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void block_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < NSIGNALS; i++)
		sigaddset(&set, cleanup_signals[i]);
	sigprocmask(SIG_BLOCK, &set, old);
}

int tmpfile_create(const char *dst)
{
	char dir_buf[PATH_MAX], base_buf[PATH_MAX];
	struct sigaction sa;
	sigset_t old;
	mode_t mask;
	int fd, n;

	if (strlen(dst) >= sizeof(dir_buf)) {
		die_msg("convert: %s: name too long", dst);
		return -1;
	}
	strcpy(dir_buf, dst);
	strcpy(base_buf, dst);
	n = snprintf(tmp_path, sizeof(tmp_path), "%s/.%s.vdi-convert-XXXXXX",
		     dirname(dir_buf), basename(base_buf));
	if (n < 0 || (size_t)n >= sizeof(tmp_path)) {
		die_msg("convert: %s: name too long", dst);
		return -1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NSIGNALS; i++)
		sigaction(cleanup_signals[i], &sa, NULL);

	block_signals(&old);
	fd = mkostemp(tmp_path, O_CLOEXEC);
	if (fd >= 0)
		tmp_armed = 1;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (fd < 0) {
		die_msg("convert: cannot create a temporary file next to %s: "
			"%s", dst, strerror(errno));
		return -1;
	}
	/* mkstemp makes the file 0600; give it the mode a new file gets. */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) < 0) {
		die_msg("convert: %s: %s", tmp_path, strerror(errno));
		close(fd);
		tmpfile_discard();
		return -1;
	}
	return fd;
}

const char *tmpfile_path(void)
{
	return tmp_armed ? tmp_path : NULL;
}

int tmpfile_chmod(mode_t mode)
{
	if (chmod(tmp_path, mode) < 0) {
		die_msg("convert: %s: cannot set its permissions: %s", tmp_path,
			strerror(errno));
		return -1;
	}
	return 0;
}

int tmpfile_vdi_create(uint64_t size, const struct vdi_create_opts *opts)
{
	sigset_t old;
	int ret;

	block_signals(&old);
	ret = vdi_create(tmp_path, size, opts);
	if (ret < 0)
		lib_error(ret, "convert: cannot create %s", tmp_path);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret < 0 ? -1 : 0;
}

int tmpfile_commit(const char *dst)
{
	char dir_buf[PATH_MAX];
	sigset_t old;
	int dfd, ret;

	block_signals(&old);
	ret = rename(tmp_path, dst);
	if (ret == 0)
		tmp_armed = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		die_msg("convert: cannot rename %s to %s: %s", tmp_path, dst,
			strerror(errno));
		tmpfile_discard();
		return -1;
	}
	/* Make the rename itself durable. */
	strcpy(dir_buf, dst);
	dfd = open(dirname(dir_buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

void tmpfile_discard(void)
{
	sigset_t old;

	block_signals(&old);
	if (tmp_armed)
		unlink(tmp_path);
	tmp_armed = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
}
