/* vdi commit: merge a differencing image into its parent with
 * vdi_commit(), as qemu-img commit merges an overlay into its backing
 * file. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
	fputs("Usage: vdi commit [-p] [-q] [-d] [--output=human|json] [-b BASE] FILE\n"
	      "\n"
	      "Write the changes held by the differencing image FILE into its\n"
	      "parent: its data blocks over the parent's, its zero blocks as\n"
	      "zeros.  The parent then reads as FILE did.  FILE keeps its\n"
	      "blocks and is pointed at the parent's new state, so it still\n"
	      "reads the same and stays usable.  Other differencing images of\n"
	      "the same parent refuse to open afterwards (their parent\n"
	      "changed).  Neither image may be in use.\n"
	      "\n"
	      "  -b, --parent=BASE\n"
	      "               the image to commit into, as qemu-img commit -b:\n"
	      "               FILE's parent (default: looked for next to\n"
	      "               FILE).  A BASE further down the chain is\n"
	      "               refused with the commands that reach it one\n"
	      "               level at a time\n"
	      "  -d           accepted for qemu-img compatibility: FILE is never\n"
	      "               emptied\n"
	      "  -p           show a progress bar on standard error\n"
	      "  -q           quiet: no progress bar, no message\n"
	      "  --output=FMT report as human (default) or json\n"
	      "  -f vdi       accepted for qemu-img compatibility\n"
	      "  -h, --help   show this help\n", stdout);
}

/* qemu-img commit -b BASE commits through every image between FILE and
 * BASE.  vdi_commit() merges one level; when BASE is further down the
 * chain, say what to run instead.  Returns -1 after that message, 0 when
 * BASE is not found deeper (vdi_commit() then judges it as the parent). */
static int base_is_deeper(const char *path, const char *base)
{
	struct vdi_image *img, *cur;
	char steps[2048] = "";
	unsigned depth = 0;
	size_t used = 0;
	int ret = 0;

	if (vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NOLOCK, &img) < 0)
		return 0;
	for (cur = img; cur; cur = vdi_get_parent(cur), depth++) {
		if (depth >= 2 && same_file(vdi_get_filename(cur), base)) {
			die_msg("commit: %s is %u levels below %s and a commit "
				"merges one level; run %s", base, depth, path,
				steps);
			ret = -1;
			break;
		}
		/* The commands so far: commit this image, then the next. */
		if (used < sizeof(steps))
			used += (size_t)snprintf(steps + used,
						 sizeof(steps) - used,
						 "%s'vdi commit %s'",
						 depth ? ", then " : "",
						 depth ? vdi_get_filename(cur)
						       : path);
	}
	vdi_close(img);
	return ret;
}

enum { OPT_OUTPUT = 256 };

/* The library gives the block it is at and the block count. */
int cmd_commit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "parent", required_argument, NULL, 'b' },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum output_format fmt = OUTPUT_HUMAN;
	struct timespec t0;
	struct progress prog;
	bool show_progress = false, quiet = false;
	const char *path, *parent = NULL;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:b:dpqh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'b':
			parent = optarg;
			break;
		case 'd':
			break;
		case OPT_OUTPUT:
			if (parse_output("commit", optarg, &fmt) < 0)
				return EXIT_FAIL;
			break;
		case 'f':
			if (require_vdi_format("commit", optarg) < 0)
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
			option_error("commit", c, argv);
			return EXIT_FAIL;
		}
	}
	if (!one_file_operand("commit", argc - optind))
		return EXIT_FAIL;
	path = argv[optind];

	if (parent && base_is_deeper(path, parent) < 0)
		return EXIT_FAIL;
	timer_start(&t0);
	progress_init(&prog, show_progress && !quiet, 1);
	ret = vdi_commit(path, parent, progress_callback, &prog);
	progress_finish(&prog, ret == 0);
	if (ret < 0) {
		lib_error(ret, "commit: cannot commit %s", path);
		return EXIT_FAIL;
	}
	if (!quiet && fmt == OUTPUT_JSON) {
		fputs("{\n    \"filename\": ", stdout);
		json_string(stdout, path);
		if (parent) {
			fputs(",\n    \"base\": ", stdout);
			json_string(stdout, parent);
		}
		printf(",\n    \"committed\": true,\n"
		       "    \"seconds\": %.6f\n}\n", timer_seconds(&t0));
	} else if (!quiet) {
		puts("Image committed.");
	}
	return 0;
}
