/* vdi map: the allocation map, printed exactly as qemu-img map prints it
 * for a VDI image, so the two can be diffed:
 *  - free and zero blocks read as zeros: present, zero, no data, no offset;
 *  - data blocks: present, data, with their file offset;
 *  - in a static image only, qemu also asks the container file: data in a
 *    hole of the file (SEEK_HOLE) or past its end is also "zero": true;
 *  - neighbours that look the same are merged, data only when their file
 *    offsets are contiguous too.
 * A differencing image is mapped as qemu-img maps an image with a backing
 * file: a free block is looked up in the parent, then the grandparent...
 * and the extent says at which depth its data was found (and at which
 * offset of that image's file); a block free in every image of the chain
 * is "present": false at the depth of the bottom image. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

enum { OPT_OUTPUT = 256, OPT_START, OPT_MAXLEN, OPT_NO_PARENT };

static void help(void)
{
	fputs("Usage: vdi map [--output=human|json] [--start-offset=OFFSET]\n"
	      "               [--max-length=LENGTH] [-b PARENT]... [--no-parent]\n"
	      "               FILE\n"
	      "\n"
	      "Show which ranges of the virtual disk of the VDI image FILE hold\n"
	      "data and where in FILE that data lies, in the format of qemu-img\n"
	      "map.  Human output lists only the ranges that hold data; JSON\n"
	      "output lists every range.  For a differencing image, data found\n"
	      "in a parent has the parent's depth (1 for the parent, 2 for its\n"
	      "parent...) and an offset in the parent's file; ranges free in\n"
	      "every image of the chain are \"present\": false.  With\n"
	      "--no-parent, ranges that the parent would supply are\n"
	      "\"present\": false, \"zero\": false at depth 1.\n"
	      "\n"
	      "  --output=FMT            human (default) or json\n"
	      "  --start-offset=OFFSET   begin at this virtual offset\n"
	      "  --max-length=LENGTH     describe at most LENGTH bytes\n"
	      "  -b, --parent=PARENT     the parent of the differencing image\n"
	      "                          FILE (default: looked for next to FILE);\n"
	      "                          once per level: the parent, its parent...\n"
	      "  --no-parent             map a differencing image alone, without\n"
	      "                          opening its parent\n"
	      "  -f vdi                  accepted for qemu-img compatibility\n"
	      "  -h, --help              show this help\n", stdout);
}

struct entry {
	uint64_t start, length, offset;
	unsigned depth;     /* the image of the chain the data comes from */
	bool present;       /* false: free in every image of a chain */
	bool zero, data, has_offset;
};

/* One image of the chain: FILE at depth 0, its parent at 1... */
struct layer {
	const char *path;   /* as opened: printed by human output */
	int fd;             /* the container file, for SEEK_DATA/SEEK_HOLE */
	uint64_t file_size;
	bool recurse;       /* static image: look at the file's holes */
};

struct mapper {
	enum output_format fmt;
	struct vdi_image *img;
	struct layer *layers;
	unsigned nlayers;
	struct entry cur;   /* the entry being merged, not yet printed */
	bool have_cur;
	/* A differencing image opened without its parent (--no-parent):
	 * its free blocks are the parent's, unknown here. */
	bool alone;
	unsigned printed;
};

static void print_entry(struct mapper *m, const struct entry *e)
{
	if (m->fmt == OUTPUT_JSON) {
		printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
		       ", \"depth\": %u, \"present\": %s, \"zero\": %s, "
		       "\"data\": %s", m->printed ? ",\n" : "[", e->start,
		       e->length, e->depth, e->present ? "true" : "false",
		       e->zero ? "true" : "false", e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %" PRIu64, e->offset);
		putchar('}');
	} else if (e->data && !e->zero) {
		/* "%#x" prints 0 without the 0x, as qemu-img's output has. */
		printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
		       e->start, e->length, e->has_offset ? e->offset : 0,
		       m->layers[e->depth].path);
	}
	m->printed++;
}

static bool mergeable(const struct entry *a, const struct entry *b)
{
	if (a->zero != b->zero || a->data != b->data ||
	    a->depth != b->depth || a->present != b->present ||
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

/* A data run [start, start + len) stored at file offset `off` of the
 * image at `depth`.  In a static image, split it where the container file
 * has holes; past the end of the file it reads as zeros there.  In a
 * dynamic image it is plain data, even past the end of the file (a bad
 * block map entry), as qemu-img shows it. */
static int add_data(struct mapper *m, unsigned depth, uint64_t start,
		    uint64_t len, uint64_t off)
{
	const struct layer *l = &m->layers[depth];

	while (len) {
		struct entry e = { .start = start, .offset = off,
				   .depth = depth, .present = true,
				   .data = true, .has_offset = true };
		uint64_t run = len;

		if (l->recurse && off >= l->file_size) {
			e.zero = true;
		} else if (l->recurse) {
			off_t next = lseek(l->fd, (off_t)off, SEEK_DATA);

			if (next < 0 && errno != ENXIO)
				return -errno;
			if (next < 0 || (uint64_t)next > off) {
				/* A hole up to `next` (or to the end). */
				uint64_t hole_end = next < 0 ? l->file_size
							     : (uint64_t)next;
				e.zero = true;
				run = hole_end - off;
			} else {
				off_t hole = lseek(l->fd, (off_t)off,
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

static int walk(struct mapper *m, uint64_t start, uint64_t end)
{
	uint64_t pos = start;

	while (pos < end) {
		struct chain_extent ext;
		uint64_t len;
		int ret = chain_extent("map", m->img, pos, end - pos, &ext);

		if (ret < 0)
			return -1;
		len = ext.length;
		if (ext.kind == VDI_EXTENT_BAD && ext.file_offset == 0) {
			/* The library did not say where the entry points. */
			struct entry e = { .start = pos, .length = len,
					   .depth = ext.depth, .present = true,
					   .data = true };
			add(m, &e);
		} else if (ext.kind == VDI_EXTENT_DATA ||
			   ext.kind == VDI_EXTENT_BAD) {
			ret = add_data(m, ext.depth, pos, len, ext.file_offset);
			if (ret < 0) {
				die_msg("map: %s: %s",
					m->layers[ext.depth].path,
					strerror(-ret));
				return -1;
			}
		} else {
			/* Zero, or free.  Free at the bottom of a chain: not
			 * present in any image, as qemu-img says of a range
			 * no backing file holds.  An image without parent
			 * says its free blocks are zeros, as QEMU's VDI
			 * driver does. */
			struct entry e = { .start = pos, .length = len,
					   .depth = ext.depth, .zero = true,
					   .present = ext.kind != VDI_EXTENT_UNALLOCATED ||
						      ext.depth == 0 };

			/* The parent that was not opened holds these bytes. */
			if (m->alone && ext.kind == VDI_EXTENT_UNALLOCATED) {
				e.depth++;
				e.zero = false;
				e.present = false;
			}
			add(m, &e);
		}
		pos += len;
	}
	return 0;
}

/* Open the container file of each image of the chain. */
static int open_layers(struct mapper *m)
{
	struct vdi_image *img = m->img;
	unsigned n = chain_length(img);

	m->layers = calloc(n, sizeof(*m->layers));
	if (!m->layers) {
		die_msg("out of memory");
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		m->layers[i].fd = -1;
	m->nlayers = n;
	for (unsigned i = 0; i < n; i++, img = vdi_get_parent(img)) {
		struct layer *l = &m->layers[i];
		struct vdi_info info;
		struct stat st;
		int ret = vdi_get_info(img, &info);

		l->path = vdi_get_filename(img);
		if (ret < 0) {
			lib_error(ret, "map: %s", l->path);
			return -1;
		}
		l->recurse = info.type == VDI_TYPE_STATIC;
		l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
		if (l->fd < 0 || fstat(l->fd, &st) < 0) {
			die_msg("map: %s: %s", l->path, strerror(errno));
			return -1;
		}
		l->file_size = (uint64_t)st.st_size;
	}
	return 0;
}

int cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "start-offset", required_argument, NULL, OPT_START },
		{ "max-length", required_argument, NULL, OPT_MAXLEN },
		{ "parent", required_argument, NULL, 'b' },
		{ "no-parent", no_argument, NULL, OPT_NO_PARENT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mapper m = { .fmt = OUTPUT_HUMAN };
	uint64_t start = 0, maxlen = UINT64_MAX, size, end;
	struct parents parents = { 0 };
	unsigned flags = VDI_OPEN_RDONLY;
	const char *path;
	int c, status = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:b:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (add_parent("map", &parents, optarg) < 0)
				return EXIT_FAIL;
			break;
		case OPT_NO_PARENT:
			flags |= VDI_OPEN_NO_PARENT;
			break;
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
			if (require_vdi_format("map", optarg) < 0)
				return EXIT_FAIL;
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
	path = argv[optind];

	if ((flags & VDI_OPEN_NO_PARENT) && parents.n) {
		usage_error("map", "-b and --no-parent contradict each other");
		return EXIT_FAIL;
	}
	if (open_chain("map", path, &parents, flags, true, &m.img) < 0)
		return EXIT_FAIL;
	if (flags & VDI_OPEN_NO_PARENT) {
		struct vdi_info in;

		m.alone = vdi_get_info(m.img, &in) == 0 &&
			  in.type == VDI_TYPE_DIFF;
	}
	if (open_layers(&m) < 0)
		goto out;

	size = vdi_get_size(m.img);
	end = start < size ? start : size;
	if (maxlen < size - end)
		end += maxlen;
	else
		end = size;

	if (m.fmt == OUTPUT_HUMAN)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
		       "File");
	if (walk(&m, start, end) < 0)
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
	for (unsigned i = 0; i < m.nlayers; i++)
		if (m.layers[i].fd >= 0)
			close(m.layers[i].fd);
	free(m.layers);
	vdi_close(m.img);
	return status;
}
