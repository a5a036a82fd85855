/* vdi compact: give back the space of zero and discarded blocks with
 * vdi_compact(), in place, and say what changed. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

enum { OPT_OUTPUT = 256 };

static void help(void)
{
	fputs("Usage: vdi compact [-p] [-q] [--output=human|json] [-b PARENT]...\n"
	      "                   FILE\n"
	      "\n"
	      "Compact the dynamic or differencing VDI image FILE in place, as\n"
	      "VBoxManage modifymedium --compact does: in a differencing image,\n"
	      "data blocks that read the same as the parent become free again;\n"
	      "data blocks that hold only zeros become zero blocks; the\n"
	      "remaining data blocks move down into the unused space, and the\n"
	      "file is cut after the last one.  The virtual disk reads the same\n"
	      "before and after.  Each move is crash-safe.  FILE must not be in\n"
	      "use and must have no corruption (run 'vdi check -r all' first);\n"
	      "static images cannot be compacted.\n"
	      "\n"
	      "  -b, --parent=PARENT\n"
	      "                 the parent of the differencing image FILE\n"
	      "                 (default: looked for next to FILE); once per\n"
	      "                 level: the parent, its parent...\n"
	      "  -p             show a progress bar on standard error\n"
	      "  -q             quiet: no progress bar, no report\n"
	      "  --output=FMT   report as human (default) or json\n"
	      "  -f vdi         accepted for qemu-img compatibility\n"
	      "  -h, --help     show this help\n", stdout);
}

/* The library tells the total with each call (the number of blocks, twice:
 * one pass finds zero blocks, one moves blocks). */
/* Bytes the file takes on disk, as qemu-img info's "disk size". */
static uint64_t actual_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static void print_human(const struct vdi_compact_result *r,
			uint64_t actual_before, uint64_t actual_after)
{
	char a[32], b[32];

	puts("Image compacted.");
	format_size(a, sizeof(a), r->file_size_before);
	format_size(b, sizeof(b), r->file_size_after);
	printf("File size: %s -> %s (%" PRIu64 " -> %" PRIu64 " bytes)\n",
	       a, b, r->file_size_before, r->file_size_after);
	format_size(a, sizeof(a), actual_before);
	format_size(b, sizeof(b), actual_after);
	printf("Disk size: %s -> %s\n", a, b);
	printf("Zero blocks found: %" PRIu32 "\n", r->zero_blocks);
	if (r->parent_blocks)
		printf("Blocks equal to the parent's, freed: %" PRIu32 "\n",
		       r->parent_blocks);
	printf("Blocks moved: %" PRIu32 "\n", r->blocks_moved);
}

static void print_json(const char *path, const struct vdi_compact_result *r,
		       uint64_t actual_before, uint64_t actual_after)
{
	fputs("{\n    \"filename\": ", stdout);
	json_string(stdout, path);
	printf(",\n    \"format\": \"vdi\",\n"
	       "    \"file-size-before\": %" PRIu64 ",\n"
	       "    \"file-size-after\": %" PRIu64 ",\n"
	       "    \"actual-size-before\": %" PRIu64 ",\n"
	       "    \"actual-size-after\": %" PRIu64 ",\n"
	       "    \"zero-blocks\": %" PRIu32 ",\n"
	       "    \"parent-blocks\": %" PRIu32 ",\n"
	       "    \"blocks-moved\": %" PRIu32 "\n"
	       "}\n",
	       r->file_size_before, r->file_size_after, actual_before,
	       actual_after, r->zero_blocks, r->parent_blocks,
	       r->blocks_moved);
}

int cmd_compact(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "parent", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum output_format fmt = OUTPUT_HUMAN;
	struct vdi_compact_result res;
	struct parents parents = { 0 };
	struct progress prog;
	bool show_progress = false, quiet = false;
	uint64_t actual_before;
	const char *path;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:b:pqh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_OUTPUT:
			if (parse_output("compact", optarg, &fmt) < 0)
				return EXIT_FAIL;
			break;
		case 'f':
			if (strcmp(optarg, "vdi")) {
				die_msg("compact: only the vdi format can be "
					"compacted, not '%s'", optarg);
				return EXIT_FAIL;
			}
			break;
		case 'b':
			if (add_parent("compact", &parents, optarg) < 0)
				return EXIT_FAIL;
			break;
		case 'p':
			show_progress = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help();
			return 0;
		default:
			option_error("compact", c, argv);
			return EXIT_FAIL;
		}
	}
	if (!one_file_operand("compact", argc - optind))
		return EXIT_FAIL;
	path = argv[optind];

	actual_before = actual_size(path);
	progress_init(&prog, show_progress && !quiet, 1);
	ret = vdi_compact_chain(path, parents.path, parents.n, &res,
				progress_callback, &prog);
	progress_finish(&prog, ret == 0);
	if (ret < 0) {
		lib_error(ret, "compact: cannot compact %s", path);
		return EXIT_FAIL;
	}
	if (quiet)
		return 0;
	if (fmt == OUTPUT_JSON)
		print_json(path, &res, actual_before, actual_size(path));
	else
		print_human(&res, actual_before, actual_size(path));
	return 0;
}
