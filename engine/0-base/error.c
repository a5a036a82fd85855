/* Thread-local error messages. */
#include "0-base/error.h"

#include <stdarg.h>
#include <stdio.h>

#include "vdi.h"

static _Thread_local char errbuf[1024];

int vdi_error(int err, const char *fn, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (path)
		n = snprintf(errbuf, sizeof(errbuf), "%s: %s: ", fn, path);
	else
		n = snprintf(errbuf, sizeof(errbuf), "%s: ", fn);
	if (n < 0 || (size_t)n >= sizeof(errbuf))
		return err;
	va_start(ap, fmt);
	vsnprintf(errbuf + n, sizeof(errbuf) - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

void vdi_error_clear(void)
{
	errbuf[0] = '\0';
}

const char *vdi_errmsg(void)
{
	return errbuf;
}
