/* vdi rebase: give a differencing image another parent with
 * vdi_rebase(), as qemu-img rebase does: safe by default (the blocks
 * that would read differently are copied into the image first), or with
 * -u only the link is switched. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "cli.h"

enum { OPT_OUTPUT = 256, OPT_OLD };

static void help(void)
{
	fputs("Usage: vdi rebase [-u] [-p] [-q] [--output=human|json] -b NEWPARENT\n"
	      "                  [-F vdi] [--old-parent=PARENT]... FILE\n"
	      "\n"
	      "Make the VDI image NEWPARENT the parent of the differencing\n"
	      "image FILE, as qemu-img rebase does.  By default FILE reads the\n"
	      "same afterwards: each block FILE takes from its current parents\n"
	      "that NEWPARENT reads differently is copied into FILE first, then\n"
	      "the link is switched in one header write (a rebase stopped half\n"
	      "way runs again).  This needs the current parents to open.  With\n"
	      "-b \"\" FILE gets every block of its parents and becomes an image\n"
	      "without parent.\n"
	      "\n"
	      "With -u (unsafe) only the link is switched: FILE then reads what\n"
	      "NEWPARENT gives where FILE holds nothing.  Use it when NEWPARENT\n"
	      "holds the data FILE was made from, for example to link again an\n"
	      "image whose parent was changed by a commit of a sibling, or a\n"
	      "parent that was copied or moved (VBoxManage internalcommands\n"
	      "sethdparentuuid).\n"
	      "\n"
	      "  -b, --parent=NEWPARENT\n"
	      "               the new parent (\"\": none)\n"
	      "  -F vdi       the format of NEWPARENT (only vdi)\n"
	      "  -u           unsafe: switch the link only, copy nothing\n"
	      "  --old-parent=PARENT\n"
	      "               the current parent of FILE when it is not next\n"
	      "               to FILE; once per level\n"
	      "  -p           show a progress bar on standard error\n"
	      "  --output=FMT report as human (default) or json\n"
	      "  -f vdi       accepted for qemu-img compatibility\n"
	      "  -q           quiet: no progress bar, no message\n"
	      "  -h, --help   show this help\n", stdout);
}

int cmd_rebase(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "parent", required_argument, NULL, 'b' },
		{ "old-parent", required_argument, NULL, OPT_OLD },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum output_format fmt = OUTPUT_HUMAN;
	struct parents old = { 0 };
	struct progress prog;
	struct timespec t0;
	bool unsafe = false, quiet = false, show_progress = false;
	const char *path, *newp = NULL;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:F:b:upqh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'b':
			newp = optarg;
			break;
		case OPT_OLD:
			if (add_parent("rebase", &old, optarg) < 0)
				return EXIT_FAIL;
			break;
		case OPT_OUTPUT:
			if (parse_output("rebase", optarg, &fmt) < 0)
				return EXIT_FAIL;
			break;
		case 'F':
			if (parent_format("rebase", optarg) < 0)
				return EXIT_FAIL;
			break;
		case 'f':
			if (require_vdi_format("rebase", optarg) < 0)
				return EXIT_FAIL;
			break;
		case 'u':
			unsafe = true;
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
			option_error("rebase", c, argv);
			return EXIT_FAIL;
		}
	}
	if (!one_file_operand("rebase", argc - optind))
		return EXIT_FAIL;
	path = argv[optind];
	if (!newp) {
		usage_error("rebase", "name the new parent with -b NEWPARENT "
			    "(-b \"\" for none)");
		return EXIT_FAIL;
	}
	if (!*newp && unsafe) {
		die_msg("rebase: -u with -b \"\" would leave %s without the "
			"blocks its parents give; drop -u to copy them", path);
		return EXIT_FAIL;
	}
	if (unsafe && old.n) {
		usage_error("rebase", "-u does not open the old parents; drop "
			    "--old-parent");
		return EXIT_FAIL;
	}

	timer_start(&t0);
	progress_init(&prog, show_progress && !quiet && !unsafe, 1);
	ret = vdi_rebase(path, old.path, old.n, *newp ? newp : NULL,
			 unsafe ? VDI_REBASE_UNSAFE : 0, progress_callback,
			 &prog);
	progress_finish(&prog, ret == 0);
	if (ret < 0) {
		lib_error(ret, "rebase: cannot rebase %s", path);
		if (!unsafe && (ret == -ESTALE || ret == -ENOENT) && *newp)
			die_msg("rebase: hint: if %s holds the data %s was "
				"made from, 'vdi rebase -u -b %s %s' links it "
				"without reading the old parent", newp, path,
				newp, path);
		return EXIT_FAIL;
	}
	if (quiet)
		return 0;
	if (fmt == OUTPUT_JSON) {
		fputs("{\n    \"filename\": ", stdout);
		json_string(stdout, path);
		if (*newp) {
			fputs(",\n    \"backing-filename\": ", stdout);
			json_string(stdout, newp);
		}
		printf(",\n    \"unsafe\": %s,\n    \"seconds\": %.6f\n}\n",
		       unsafe ? "true" : "false", timer_seconds(&t0));
	} else {
		puts("Image rebased.");
	}
	return 0;
}
