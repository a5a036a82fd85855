/* vdi commit: merge a differencing image into its parent with
 * vdi_commit(), as qemu-img commit merges an overlay into its backing
 * file. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
	fputs("Usage: vdi commit [-p] [-q] [-d] [-b PARENT] FILE\n"
	      "\n"
	      "Write the changes held by the differencing image FILE into its\n"
	      "parent: its data blocks over the parent's, its zero blocks as\n"
	      "zeros.  The parent then reads as FILE did.  FILE keeps its\n"
	      "blocks and is pointed at the parent's new state, so it still\n"
	      "reads the same and stays usable.  Other differencing images of\n"
	      "the same parent refuse to open afterwards (their parent\n"
	      "changed).  Neither image may be in use.\n"
	      "\n"
	      "  -b, --parent=PARENT\n"
	      "               the parent of FILE (default: looked for next to\n"
	      "               FILE); only the direct parent can be committed\n"
	      "               into\n"
	      "  -d           accepted for qemu-img compatibility: FILE is never\n"
	      "               emptied\n"
	      "  -p           show a progress bar on standard error\n"
	      "  -q           quiet: no progress bar, no message\n"
	      "  -f vdi       accepted for qemu-img compatibility\n"
	      "  -h, --help   show this help\n", stdout);
}

/* The library gives the block it is at and the block count. */
int cmd_commit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "parent", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
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
	if (argc - optind != 1) {
		usage_error("commit", argc - optind < 1
			    ? "expected FILE"
			    : "too many arguments: expected one FILE");
		return EXIT_FAIL;
	}
	path = argv[optind];

	progress_init(&prog, show_progress && !quiet, 1);
	ret = vdi_commit(path, parent, progress_callback, &prog);
	progress_finish(&prog, ret == 0);
	if (ret < 0) {
		lib_error(ret, "commit: cannot commit %s", path);
		return EXIT_FAIL;
	}
	if (!quiet)
		puts("Image committed.");
	return 0;
}
