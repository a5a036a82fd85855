/* vdi map: the allocation map, printed exactly as qemu-img map prints it
 * for a VDI image, so the two can be diffed:
 *  - free and zero blocks read as zeros: present, zero, no data, no offset;
 *  - data blocks: present, data, with their file offset;
 *  - in a static image only, qemu also asks the container file: data in a
 *    hole of the file (SEEK_HOLE) or past its end is also "zero": true;
 *  - neighbours that look the same are merged, data only when their file
 *    offsets are contiguous too. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

enum { OPT_OUTPUT = 256, OPT_START, OPT_MAXLEN };

static void help(void)
{
	fputs("Usage: vdi map [--output=human|json] [--start-offset=OFFSET]\n"
	      "               [--max-length=LENGTH] FILE\n"
	      "\n"
	      "Show which ranges of the virtual disk of the VDI image FILE hold\n"
	      "data and where in FILE that data lies, in the format of qemu-img\n"
	      "map.  Human output lists only the ranges that hold data; JSON\n"
	      "output lists every range.\n"
	      "\n"
	      "  --output=FMT            human (default) or json\n"
	      "  --start-offset=OFFSET   begin at this virtual offset\n"
	      "  --max-length=LENGTH     describe at most LENGTH bytes\n"
	      "  -f vdi                  accepted for qemu-img compatibility\n"
	      "  -h, --help              show this help\n", stdout);
}

struct entry {
	uint64_t start, length, offset;
	bool zero, data, has_offset;
};

struct mapper {
	enum output_format fmt;
	const char *path;
	int fd;             /* the container file, for SEEK_DATA/SEEK_HOLE */
	uint64_t file_size;
	bool recurse;       /* static image: look at the file's holes */
	struct entry cur;   /* the entry being merged, not yet printed */
	bool have_cur;
	unsigned printed;
};

static void print_entry(struct mapper *m, const struct entry *e)
{
	if (m->fmt == OUTPUT_JSON) {
		printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
		       ", \"depth\": 0, \"present\": true, \"zero\": %s, "
		       "\"data\": %s", m->printed ? ",\n" : "[", e->start,
		       e->length, e->zero ? "true" : "false",
		       e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %" PRIu64, e->offset);
		putchar('}');
	} else if (e->data && !e->zero) {
		/* "%#x" prints 0 without the 0x, as qemu-img's output has. */
		printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
		       e->start, e->length, e->has_offset ? e->offset : 0,
		       m->path);
	}
	m->printed++;
}

static bool mergeable(const struct entry *a, const struct entry *b)
{
	if (a->zero != b->zero || a->data != b->data ||
	    a->has_offset != b->has_offset || a->start + a->length != b->start)
		return false;
	return !a->has_offset || a->offset + a->length == b->offset;
}

static void add(struct mapper *m, const struct entry *e)
{
	if (m->have_cur && mergeable(&m->cur, e)) {
		m->cur.length += e->length;
		return;
	}
	if (m->have_cur)
		print_entry(m, &m->cur);
	m->cur = *e;
	m->have_cur = true;
}

/* A data run [start, start + len) stored at file offset `off`.  In a
 * static image, split it where the container file has holes; past the end
 * of the file it reads as zeros there.  In a dynamic image it is plain
 * data, even past the end of the file (a bad block map entry), as
 * qemu-img shows it. */
static int add_data(struct mapper *m, uint64_t start, uint64_t len,
		    uint64_t off)
{
	while (len) {
		struct entry e = { .start = start, .offset = off,
				   .data = true, .has_offset = true };
		uint64_t run = len;

		if (m->recurse && off >= m->file_size) {
			e.zero = true;
		} else if (m->recurse) {
			off_t next = lseek(m->fd, (off_t)off, SEEK_DATA);

			if (next < 0 && errno != ENXIO)
				return -errno;
			if (next < 0 || (uint64_t)next > off) {
				/* A hole up to `next` (or to the end). */
				uint64_t hole_end = next < 0 ? m->file_size
							     : (uint64_t)next;
				e.zero = true;
				run = hole_end - off;
			} else {
				off_t hole = lseek(m->fd, (off_t)off,
						   SEEK_HOLE);

				if (hole < 0)
					return -errno;
				run = (uint64_t)hole - off;
			}
			if (run > len || run == 0)
				run = len;
		}
		e.length = run;
		add(m, &e);
		start += run;
		off += run;
		len -= run;
	}
	return 0;
}

static int walk(struct mapper *m, struct vdi_image *img, uint64_t start,
		uint64_t end)
{
	uint64_t pos = start;

	while (pos < end) {
		struct vdi_extent ext;
		uint64_t skip, len;
		int ret = vdi_map_extent(img, pos, &ext);

		if (ret < 0) {
			lib_error(ret, "map: %s: at offset %" PRIu64, m->path,
				  pos);
			return -1;
		}
		if (ext.start > pos || ext.start + ext.length <= pos) {
			die_msg("map: %s: the library described offset %"
				PRIu64 " as the extent %" PRIu64 "+%" PRIu64,
				m->path, pos, ext.start, ext.length);
			return -1;
		}
		skip = pos - ext.start;
		len = ext.start + ext.length - pos;
		if (len > end - pos)
			len = end - pos;

		if (ext.kind == VDI_EXTENT_BAD && ext.file_offset == 0) {
			/* The library did not say where the entry points. */
			struct entry e = { .start = pos, .length = len,
					   .data = true };
			add(m, &e);
		} else if (ext.kind == VDI_EXTENT_DATA ||
			   ext.kind == VDI_EXTENT_BAD) {
			ret = add_data(m, pos, len, ext.file_offset + skip);
			if (ret < 0) {
				die_msg("map: %s: %s", m->path, strerror(-ret));
				return -1;
			}
		} else {
			struct entry e = { .start = pos, .length = len,
					   .zero = true };
			add(m, &e);
		}
		pos += len;
	}
	return 0;
}

int cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "start-offset", required_argument, NULL, OPT_START },
		{ "max-length", required_argument, NULL, OPT_MAXLEN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mapper m = { .fmt = OUTPUT_HUMAN, .fd = -1 };
	struct vdi_image *img = NULL;
	struct vdi_info info;
	uint64_t start = 0, maxlen = UINT64_MAX, size, end;
	struct stat st;
	int c, ret, status = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_OUTPUT:
			if (parse_output("map", optarg, &m.fmt) < 0)
				return EXIT_FAIL;
			break;
		case OPT_START:
			if (parse_size("start offset", optarg, &start) < 0)
				return EXIT_FAIL;
			break;
		case OPT_MAXLEN:
			if (parse_size("max length", optarg, &maxlen) < 0)
				return EXIT_FAIL;
			break;
		case 'f':
			if (strcmp(optarg, "vdi")) {
				die_msg("map: only the vdi format is "
					"supported, not '%s'", optarg);
				return EXIT_FAIL;
			}
			break;
		case 'h':
			help();
			return 0;
		default:
			option_error("map", c, argv);
			return EXIT_FAIL;
		}
	}
	if (argc - optind != 1) {
		usage_error("map", "expected exactly one FILE");
		return EXIT_FAIL;
	}
	m.path = argv[optind];

	ret = vdi_open(m.path, VDI_OPEN_RDONLY, &img);
	if (ret < 0) {
		lib_error(ret, "map: cannot open %s", m.path);
		return EXIT_FAIL;
	}
	ret = vdi_get_info(img, &info);
	if (ret < 0) {
		lib_error(ret, "map: %s", m.path);
		goto out;
	}
	m.recurse = info.type == VDI_TYPE_STATIC;
	m.fd = open(m.path, O_RDONLY | O_CLOEXEC);
	if (m.fd < 0 || fstat(m.fd, &st) < 0) {
		die_msg("map: %s: %s", m.path, strerror(errno));
		goto out;
	}
	m.file_size = (uint64_t)st.st_size;

	size = vdi_get_size(img);
	end = start < size ? start : size;
	if (maxlen < size - end)
		end += maxlen;
	else
		end = size;

	if (m.fmt == OUTPUT_HUMAN)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
		       "File");
	if (walk(&m, img, start, end) < 0)
		goto out;
	if (m.have_cur)
		print_entry(&m, &m.cur);
	if (m.fmt == OUTPUT_JSON) {
		if (!m.printed)
			printf("[{ \"start\": %" PRIu64 ", \"length\": 0, "
			       "\"depth\": 0, \"present\": false, \"zero\": "
			       "false, \"data\": false}", start);
		puts("]");
	}
	status = 0;
out:
	if (m.fd >= 0)
		close(m.fd);
	vdi_close(img);
	return status;
}
