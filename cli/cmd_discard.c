/* vdi discard: make a range of the disk read as zeros and give back the
 * space of the whole blocks in it, with vdi_discard().  The work of vdi
 * zero (cmd_zero.c) is the same apart from the call and the words; both
 * run range_command() below. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"

enum { OPT_ALL = 256, OPT_OUTPUT };

static void help(void)
{
	fputs("Usage: vdi discard [-p] [-q] [--output=human|json] [-b PARENT]...\n"
	      "                   FILE OFFSET LENGTH\n"
	      "       vdi discard [-p] [-q] [--output=human|json] [-b PARENT]...\n"
	      "                   --all FILE\n"
	      "\n"
	      "Discard LENGTH bytes of the virtual disk of the VDI image FILE,\n"
	      "starting at OFFSET, as a TRIM from a guest would: the range reads\n"
	      "as zeros afterwards.  In a dynamic image the blocks that lie\n"
	      "wholly inside the range become zero blocks; the last blocks of\n"
	      "the file move into their slots and the file is cut, so that the\n"
	      "slots in use stay where QEMU and VirtualBox expect them.  The\n"
	      "parts of other blocks that hold data get zeros written.  In a\n"
	      "static image zeros are written.\n"
	      "OFFSET and LENGTH take a K, M, G, T, P or E suffix (powers of\n"
	      "1024); the range must lie within the disk.\n"
	      "\n"
	      "  --all        the whole disk (no OFFSET and LENGTH)\n"
	      "  -b, --parent=PARENT\n"
	      "               the parent of the differencing image FILE\n"
	      "               (default: looked for next to FILE); once per\n"
	      "               level: the parent, its parent...\n"
	      "  -p           show a progress bar on standard error\n"
	      "  --output=FMT report as human (default) or json\n"
	      "  -f vdi       accepted for qemu-img compatibility\n"
	      "  -q           quiet: print nothing on success\n"
	      "  -h, --help   show this help\n", stdout);
}

int cmd_discard(int argc, char **argv)
{
	static const struct range_command cmd = {
		.name = "discard",
		.done = "Discarded",
		.help = help,
		.run = vdi_discard,
	};

	return range_command(argc, argv, &cmd);
}

/* The data blocks the image maps, or -1 after a message. */
static int64_t mapped_blocks(struct vdi_image *img, const char *path)
{
	struct vdi_info in;
	int ret = vdi_get_info(img, &in);

	if (ret < 0) {
		lib_error(ret, "%s", path);
		return -1;
	}
	return in.blocks_mapped;
}

/* The range in steps of 256 MiB, for the progress bar: each step is a
 * whole call, so an error stops at a step's start. */
static int run_in_steps(struct vdi_image *img,
			const struct range_command *cmd, uint64_t offset,
			uint64_t length, struct progress *prog)
{
	const uint64_t step = 256ull << 20;
	uint64_t done = 0;
	int ret = 0;

	while (done < length && ret == 0) {
		uint64_t n = length - done < step ? length - done : step;

		ret = cmd->run(img, offset + done, n);
		done += n;
		progress_update(prog, done);
	}
	return ret;
}

int range_command(int argc, char **argv, const struct range_command *cmd)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, OPT_ALL },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "parent", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vdi_image *img = NULL;
	bool quiet = false, all = false, show_progress = false;
	enum output_format fmt = OUTPUT_HUMAN;
	struct progress prog;
	struct timespec t0;
	uint64_t offset = 0, length = 0, disk;
	int64_t before, after;
	struct parents parents = { 0 };
	const char *path;
	char a[32];
	int c, ret, want, status = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:b:pqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (add_parent(cmd->name, &parents, optarg) < 0)
				return EXIT_FAIL;
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_OUTPUT:
			if (parse_output(cmd->name, optarg, &fmt) < 0)
				return EXIT_FAIL;
			break;
		case 'p':
			show_progress = true;
			break;
		case 'f':
			if (require_vdi_format(cmd->name, optarg) < 0)
				return EXIT_FAIL;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			cmd->help();
			return 0;
		default:
			option_error(cmd->name, c, argv);
			return EXIT_FAIL;
		}
	}
	want = all ? 1 : 3;
	if (argc - optind != want) {
		if (all && argc - optind > 1)
			usage_error(cmd->name, "--all takes FILE alone, no "
				    "OFFSET or LENGTH");
		else if (all)
			usage_error(cmd->name, "expected FILE");
		else if (argc - optind == 1)
			usage_error(cmd->name, "expected FILE, OFFSET and "
				    "LENGTH (or --all FILE)");
		else
			usage_error(cmd->name, argc - optind < want
				    ? "expected FILE, OFFSET and LENGTH"
				    : "too many arguments: expected FILE, "
				      "OFFSET and LENGTH");
		return EXIT_FAIL;
	}
	path = argv[optind];
	if (!all && (parse_size("offset", argv[optind + 1], &offset) < 0 ||
		     parse_size("length", argv[optind + 2], &length) < 0))
		return EXIT_FAIL;

	if (open_chain(cmd->name, path, &parents, 0, false, &img) < 0)
		return EXIT_FAIL;
	disk = vdi_get_size(img);
	if (all) {
		length = disk;
	} else if (offset > disk || length > disk - offset) {
		format_size(a, sizeof(a), disk);
		die_msg("%s: %s: the range at offset %" PRIu64 " of length %"
			PRIu64 " goes past the end of the disk (%s, %" PRIu64
			" bytes)", cmd->name, path, offset, length, a, disk);
		goto out;
	}
	before = mapped_blocks(img, path);
	if (before < 0)
		goto out;
	timer_start(&t0);
	if (length) {
		struct vdi_compact_result cres;

		/* The blocks punched out keep their slots until
		 * vdi_reclaim moves the last blocks into them. */
		progress_init(&prog, show_progress && !quiet, length);
		ret = run_in_steps(img, cmd, offset, length, &prog);
		if (ret == 0)
			ret = vdi_flush(img);
		if (ret == 0)
			ret = vdi_reclaim(img, &cres);
		progress_finish(&prog, ret == 0);
		if (ret < 0) {
			lib_error(ret, "%s: %s: cannot %s %" PRIu64 " bytes at "
				  "offset %" PRIu64, cmd->name, path,
				  cmd->name, length, offset);
			goto out;
		}
	}
	after = mapped_blocks(img, path);
	if (after < 0)
		goto out;
	ret = vdi_close(img);
	img = NULL;
	if (ret < 0) {
		lib_error(ret, "%s: cannot close %s", cmd->name, path);
		goto out;
	}
	if (!quiet && fmt == OUTPUT_JSON) {
		fputs("{\n    \"filename\": ", stdout);
		json_string(stdout, path);
		printf(",\n    \"operation\": \"%s\",\n"
		       "    \"offset\": %" PRIu64 ",\n"
		       "    \"length\": %" PRIu64 ",\n"
		       "    \"blocks-mapped-before\": %" PRId64 ",\n"
		       "    \"blocks-mapped-after\": %" PRId64 ",\n"
		       "    \"seconds\": %.6f\n}\n", cmd->name, offset, length,
		       before, after, timer_seconds(&t0));
	} else if (!quiet) {
		int64_t freed = before > after ? before - after : 0;

		format_size(a, sizeof(a), length);
		printf("%s %" PRIu64 " bytes (%s) at offset %" PRIu64 "; %"
		       PRId64 " block%s freed.\n", cmd->done, length, a,
		       offset, freed, freed == 1 ? "" : "s");
	}
	status = 0;
out:
	vdi_close(img);
	return status;
}
