/* The --output=json report of vdi convert, written after the copy: what
 * was copied, how big, how long it took.  (Apart from cmd_convert.c, which
 * is about the copy.) */
#include <inttypes.h>
#include <sys/stat.h>

#include "cli.h"

void convert_report_json(const char *src, const char *src_fmt,
			 const char *dst, const char *dst_fmt, uint64_t size,
			 double seconds)
{
	struct stat st;
	uint64_t actual = stat(dst, &st) == 0 ? (uint64_t)st.st_blocks * 512
					      : 0;

	fputs("{\n    \"filename\": ", stdout);
	json_string(stdout, dst);
	printf(",\n    \"format\": \"%s\",\n    \"source\": ", dst_fmt);
	json_string(stdout, src);
	printf(",\n    \"source-format\": \"%s\",\n"
	       "    \"virtual-size\": %" PRIu64 ",\n"
	       "    \"actual-size\": %" PRIu64 ",\n"
	       "    \"seconds\": %.6f\n}\n", src_fmt, size, actual, seconds);
}
