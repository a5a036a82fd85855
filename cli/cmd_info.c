/* vdi info: what the header says, in qemu-img info's shape.  The keys
 * qemu-img has ("virtual-size", "cluster-size", ...) mean the same here;
 * the VDI fields go under "format-specific", as qcow2's do in qemu-img. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include <uuid/uuid.h>

#include "cli.h"

enum { OPT_OUTPUT = 256 };

static void help(void)
{
	fputs("Usage: vdi info [--output=human|json] FILE\n"
	      "\n"
	      "Show the virtual size, the space used and the header fields of\n"
	      "the VDI image FILE.  The image is opened read-only.\n"
	      "\n"
	      "  --output=FMT   human (default) or json\n"
	      "  -f vdi         accepted for qemu-img compatibility\n"
	      "  -h, --help     show this help\n", stdout);
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
	f[n++] = (struct field){ "block-size", NULL, in->block_size };
	f[n++] = (struct field){ "block-extra", NULL, in->block_extra };
	f[n++] = (struct field){ "blocks", NULL, in->blocks };
	f[n++] = (struct field){ "blocks-allocated", NULL,
				 in->blocks_allocated };
	f[n++] = (struct field){ "blocks-mapped", NULL, in->blocks_mapped };
	f[n++] = (struct field){ "description", in->description, 0 };
	return n;
}

static void print_json(const char *path, const struct vdi_info *in,
		       uint64_t actual, const struct field *f, size_t n)
{
	printf("{\n    \"virtual-size\": %" PRIu64 ",\n    \"filename\": ",
	       in->disk_size);
	json_string(stdout, path);
	printf(",\n    \"cluster-size\": %" PRIu32 ",\n"
	       "    \"format\": \"vdi\",\n"
	       "    \"actual-size\": %" PRIu64 ",\n"
	       "    \"dirty-flag\": false,\n"
	       "    \"format-specific\": {\n"
	       "        \"type\": \"vdi\",\n"
	       "        \"data\": {\n", in->block_size, actual);
	for (size_t i = 0; i < n; i++) {
		printf("            \"%s\": ", f[i].key);
		if (f[i].str)
			json_string(stdout, f[i].str);
		else
			printf("%" PRIu64, f[i].num);
		fputs(i + 1 < n ? ",\n" : "\n", stdout);
	}
	fputs("        }\n    }\n}\n", stdout);
}

static void print_human(const char *path, const struct vdi_info *in,
			uint64_t actual, const struct field *f, size_t n)
{
	char vsize[32], dsize[32];

	format_size(vsize, sizeof(vsize), in->disk_size);
	format_size(dsize, sizeof(dsize), actual);
	printf("image: %s\n"
	       "file format: vdi\n"
	       "virtual size: %s (%" PRIu64 " bytes)\n"
	       "disk size: %s\n"
	       "cluster_size: %" PRIu32 "\n"
	       "Format specific information:\n",
	       path, vsize, in->disk_size, dsize, in->block_size);
	for (size_t i = 0; i < n; i++) {
		fputs("    ", stdout);
		for (const char *k = f[i].key; *k; k++)
			putchar(*k == '-' ? ' ' : *k);
		if (f[i].str)
			printf(":%s%s\n", *f[i].str ? " " : "", f[i].str);
		else
			printf(": %" PRIu64 "\n", f[i].num);
	}
}

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum output_format fmt = OUTPUT_HUMAN;
	struct vdi_image *img = NULL;
	struct vdi_info in;
	struct field fields[24];
	char uuids[4][37], version[24];
	struct stat st;
	const char *path;
	size_t n;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_OUTPUT:
			if (parse_output("info", optarg, &fmt) < 0)
				return EXIT_FAIL;
			break;
		case 'f':
			if (strcmp(optarg, "vdi")) {
				die_msg("info: only the vdi format is "
					"supported, not '%s'", optarg);
				return EXIT_FAIL;
			}
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

	ret = vdi_open(path, VDI_OPEN_RDONLY, &img);
	if (ret < 0) {
		lib_error(ret, "info: cannot open %s", path);
		return EXIT_FAIL;
	}
	ret = vdi_get_info(img, &in);
	if (ret < 0) {
		lib_error(ret, "info: %s", path);
		vdi_close(img);
		return EXIT_FAIL;
	}
	if (stat(path, &st) < 0) {
		die_msg("info: %s: %s", path, strerror(errno));
		vdi_close(img);
		return EXIT_FAIL;
	}
	vdi_close(img);

	n = collect(&in, fields, uuids, version, sizeof(version));
	if (fmt == OUTPUT_JSON)
		print_json(path, &in, (uint64_t)st.st_blocks * 512, fields, n);
	else
		print_human(path, &in, (uint64_t)st.st_blocks * 512, fields, n);
	return 0;
}
