/* vdi info: what the header says, in qemu-img info's shape.  The keys
 * qemu-img has ("virtual-size", "cluster-size", ...) mean the same here;
 * the VDI fields go under "format-specific", as qcow2's do in qemu-img.
 * A differencing image names its parent as qemu-img names a backing file
 * ("backing file", "backing-filename"...), and --backing-chain prints
 * every image of the chain, the image itself first. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uuid/uuid.h>

#include "cli.h"

enum { OPT_OUTPUT = 256, OPT_CHAIN, OPT_NO_PARENT, OPT_FORCE_SHARE };

static void help(void)
{
	fputs("Usage: vdi info [--output=human|json] [--backing-chain] [-U]\n"
	      "                [-b PARENT]... [--no-parent] FILE\n"
	      "\n"
	      "Show the virtual size, the space used and the header fields of\n"
	      "the VDI image FILE.  The image is opened read-only.  For a\n"
	      "differencing image (a VirtualBox snapshot) the parent is shown\n"
	      "as qemu-img shows a backing file; the parent must be found,\n"
	      "unless --no-parent is given.\n"
	      "\n"
	      "  --output=FMT          human (default) or json\n"
	      "  --backing-chain       show every image of the chain, FILE\n"
	      "                        first, then its parent...; JSON output\n"
	      "                        is then an array\n"
	      "  -b, --parent=PARENT   the parent of the differencing image\n"
	      "                        FILE (default: looked for next to FILE);\n"
	      "                        once per level: the parent, its parent...\n"
	      "  --no-parent           show a differencing image alone, without\n"
	      "                        opening its parent\n"
	      "  -U, --force-share     read the image even while a writer holds\n"
	      "                        it (no lock is taken), as qemu-img info\n"
	      "                        -U; what it shows may be changing\n"
	      "  -f vdi                accepted for qemu-img compatibility\n"
	      "  -h, --help            show this help\n", stdout);
}

static const char *type_name(uint32_t type)
{
	switch (type) {
	case VDI_TYPE_DYNAMIC: return "dynamic";
	case VDI_TYPE_STATIC: return "static";
	case VDI_TYPE_UNDO: return "undo";
	case VDI_TYPE_DIFF: return "differencing";
	default: return "unknown";
	}
}

/* The fields under "format-specific"/"data", in order.  Each is a number
 * or a string; human output prints the key with spaces for dashes. */
struct field {
	const char *key;
	const char *str; /* NULL: a number */
	uint64_t num;
};

static size_t collect(const struct vdi_info *in, struct field *f,
		      char uuids[4][37], char *version, size_t vlen)
{
	size_t n = 0;

	uuid_unparse_lower(in->uuid_create, uuids[0]);
	uuid_unparse_lower(in->uuid_modify, uuids[1]);
	uuid_unparse_lower(in->uuid_link, uuids[2]);
	uuid_unparse_lower(in->uuid_parent_modify, uuids[3]);
	snprintf(version, vlen, "%u.%u", in->version >> 16,
		 in->version & 0xFFFFu);

	f[n++] = (struct field){ "image-type", type_name(in->type), 0 };
	f[n++] = (struct field){ "header-version", version, 0 };
	f[n++] = (struct field){ "header-size", NULL, in->header_size };
	f[n++] = (struct field){ "image-flags", NULL, in->image_flags };
	f[n++] = (struct field){ "uuid", uuids[0], 0 };
	f[n++] = (struct field){ "modification-uuid", uuids[1], 0 };
	f[n++] = (struct field){ "link-uuid", uuids[2], 0 };
	f[n++] = (struct field){ "parent-uuid", uuids[3], 0 };
	f[n++] = (struct field){ "disk-size-stored", NULL,
				 in->disk_size_stored };
	f[n++] = (struct field){ "offset-bmap", NULL, in->offset_bmap };
	f[n++] = (struct field){ "offset-data", NULL, in->offset_data };
	f[n++] = (struct field){ "data-alignment", NULL, data_alignment(in) };
	f[n++] = (struct field){ "block-size", NULL, in->block_size };
	f[n++] = (struct field){ "block-extra", NULL, in->block_extra };
	f[n++] = (struct field){ "blocks", NULL, in->blocks };
	f[n++] = (struct field){ "blocks-allocated", NULL,
				 in->blocks_allocated };
	f[n++] = (struct field){ "blocks-mapped", NULL, in->blocks_mapped };
	f[n++] = (struct field){ "description", in->description, 0 };
	return n;
}

/* One image of the report. */
struct report {
	const char *path;      /* "filename": as given, or as the library
				* opened a parent */
	struct vdi_info in;
	uint64_t actual;       /* bytes the file takes on disk */
	const char *backing;   /* the parent's path as opened; NULL: none */
	char *full_backing;    /* the same, absolute (malloc'd) */
	struct field fields[24];
	char uuids[4][37], version[24];
	size_t n;
};

static void print_json(const struct report *r, const char *ind)
{
	const struct vdi_info *in = &r->in;

	printf("%s{\n", ind);
	if (r->backing)
		printf("%s    \"backing-filename-format\": \"vdi\",\n", ind);
	printf("%s    \"virtual-size\": %" PRIu64 ",\n%s    \"filename\": ",
	       ind, in->disk_size, ind);
	json_string(stdout, r->path);
	printf(",\n%s    \"cluster-size\": %" PRIu32 ",\n"
	       "%s    \"format\": \"vdi\",\n"
	       "%s    \"actual-size\": %" PRIu64 ",\n", ind, in->block_size,
	       ind, ind, r->actual);
	if (r->backing) {
		printf("%s    \"full-backing-filename\": ", ind);
		json_string(stdout, r->full_backing);
		printf(",\n%s    \"backing-filename\": ", ind);
		json_string(stdout, r->backing);
		fputs(",\n", stdout);
	}
	printf("%s    \"dirty-flag\": false,\n"
	       "%s    \"format-specific\": {\n"
	       "%s        \"type\": \"vdi\",\n"
	       "%s        \"data\": {\n", ind, ind, ind, ind);
	for (size_t i = 0; i < r->n; i++) {
		printf("%s            \"%s\": ", ind, r->fields[i].key);
		if (r->fields[i].str)
			json_string(stdout, r->fields[i].str);
		else
			printf("%" PRIu64, r->fields[i].num);
		fputs(i + 1 < r->n ? ",\n" : "\n", stdout);
	}
	printf("%s        }\n%s    }\n%s}", ind, ind, ind);
}

static void print_human(const struct report *r)
{
	const struct vdi_info *in = &r->in;
	char vsize[32], dsize[32];

	format_size(vsize, sizeof(vsize), in->disk_size);
	format_size(dsize, sizeof(dsize), r->actual);
	printf("image: %s\n"
	       "file format: vdi\n"
	       "virtual size: %s (%" PRIu64 " bytes)\n"
	       "disk size: %s\n"
	       "cluster_size: %" PRIu32 "\n",
	       r->path, vsize, in->disk_size, dsize, in->block_size);
	if (r->backing) {
		/* As qemu-img: the actual path only when it differs. */
		if (strcmp(r->backing, r->full_backing))
			printf("backing file: %s (actual path: %s)\n",
			       r->backing, r->full_backing);
		else
			printf("backing file: %s\n", r->backing);
		puts("backing file format: vdi");
	}
	puts("Format specific information:");
	for (size_t i = 0; i < r->n; i++) {
		fputs("    ", stdout);
		for (const char *k = r->fields[i].key; *k; k++)
			putchar(*k == '-' ? ' ' : *k);
		if (r->fields[i].str) {
			/* A description may hold newlines: one line each. */
			fputs(*r->fields[i].str ? ": " : ":", stdout);
			text_escaped(stdout, r->fields[i].str);
			putchar('\n');
		} else
			printf(": %" PRIu64 "\n", r->fields[i].num);
	}
	print_alignment_hint(r->path, in);
}

/* Fill `r` from an open image; `path` names it.  0, or -1 after a
 * message. */
static int describe(struct report *r, struct vdi_image *img, const char *path)
{
	struct vdi_image *parent = vdi_get_parent(img);
	struct stat st;
	int ret;

	memset(r, 0, sizeof(*r));
	r->path = path;
	ret = vdi_get_info(img, &r->in);
	if (ret < 0) {
		lib_error(ret, "info: %s", path);
		return -1;
	}
	if (stat(path, &st) < 0) {
		die_msg("info: %s: %s", path, strerror(errno));
		return -1;
	}
	r->actual = (uint64_t)st.st_blocks * 512;
	if (parent) {
		char full[PATH_MAX];

		r->backing = vdi_get_filename(parent);
		r->full_backing = strdup(realpath(r->backing, full)
					 ? full : r->backing);
		if (!r->full_backing) {
			die_msg("out of memory");
			return -1;
		}
	}
	r->n = collect(&r->in, r->fields, r->uuids, r->version,
		       sizeof(r->version));
	return 0;
}

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "backing-chain", no_argument, NULL, OPT_CHAIN },
		{ "no-parent", no_argument, NULL, OPT_NO_PARENT },
		{ "force-share", no_argument, NULL, 'U' },
		{ "parent", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum output_format fmt = OUTPUT_HUMAN;
	struct vdi_image *img = NULL, *cur;
	struct report *reports = NULL;
	struct parents parents = { 0 };
	unsigned flags = VDI_OPEN_RDONLY;
	const char *path;
	bool chain = false;
	unsigned n = 0, want;
	int c, status = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:b:Uh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_OUTPUT:
			if (parse_output("info", optarg, &fmt) < 0)
				return EXIT_FAIL;
			break;
		case OPT_CHAIN:
			chain = true;
			break;
		case 'b':
			if (add_parent("info", &parents, optarg) < 0)
				return EXIT_FAIL;
			break;
		case OPT_NO_PARENT:
			flags |= VDI_OPEN_NO_PARENT;
			break;
		case 'U':
			flags |= VDI_OPEN_NOLOCK;
			break;
		case 'f':
			if (require_vdi_format("info", optarg) < 0)
				return EXIT_FAIL;
			break;
		case 'h':
			help();
			return 0;
		default:
			option_error("info", c, argv);
			return EXIT_FAIL;
		}
	}
	if (argc - optind != 1) {
		usage_error("info", "expected exactly one FILE");
		return EXIT_FAIL;
	}
	path = argv[optind];

	if ((flags & VDI_OPEN_NO_PARENT) && parents.n) {
		usage_error("info", "-b and --no-parent contradict each other");
		return EXIT_FAIL;
	}
	if (open_chain("info", path, &parents, flags, true, &img) < 0)
		return EXIT_FAIL;
	if (flags & VDI_OPEN_NOLOCK)
		die_msg("info: warning: %s is read without a lock "
			"(--force-share); a writer may be changing it", path);
	want = chain ? chain_length(img) : 1;
	reports = calloc(want, sizeof(*reports));
	if (!reports) {
		die_msg("out of memory");
		goto out;
	}
	/* Everything is gathered before anything is printed, so a failure
	 * leaves no half report.  The names of the parents belong to the
	 * open chain: it stays open until the end. */
	for (cur = img; n < want; n++, cur = vdi_get_parent(cur))
		if (describe(&reports[n], cur, n ? vdi_get_filename(cur)
						 : path) < 0)
			goto out;

	if (fmt == OUTPUT_JSON && chain) {
		puts("[");
		for (unsigned i = 0; i < n; i++) {
			print_json(&reports[i], "    ");
			puts(i + 1 < n ? "," : "");
		}
		puts("]");
	} else if (fmt == OUTPUT_JSON) {
		print_json(&reports[0], "");
		putchar('\n');
	} else {
		for (unsigned i = 0; i < n; i++) {
			if (i)
				putchar('\n');
			print_human(&reports[i]);
		}
	}
	status = 0;
out:
	for (unsigned i = 0; reports && i < want; i++)
		free(reports[i].full_backing);
	free(reports);
	vdi_close(img);
	return status;
}
