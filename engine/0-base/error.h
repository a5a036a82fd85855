/* Thread-local error messages: every failing public call leaves one. */
#ifndef LIBVDI_ERROR_H
#define LIBVDI_ERROR_H

/* Record "<fn>: <path>: <message>" (path may be NULL) for this thread and
 * return `err` (a negative errno) so callers can write
 *   return vdi_error(-EINVAL, __func__, path, "...", ...); */
int vdi_error(int err, const char *fn, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void vdi_error_clear(void);

#endif
