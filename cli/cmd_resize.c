/* vdi resize: change the virtual size with vdi_resize(), taking the size
 * the way qemu-img resize does: absolute, or relative with + or -. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"

enum { OPT_SHRINK = 256, OPT_OUTPUT };

static void help(void)
{
	fputs("Usage: vdi resize [--shrink] [-p] [-q] [--output=human|json]\n"
	      "                  [-b PARENT]... FILE [+|-]SIZE\n"
	      "\n"
	      "Change the virtual size of the VDI image FILE (dynamic or static)\n"
	      "to SIZE bytes, or grow it by +SIZE or shrink it by -SIZE.  SIZE\n"
	      "takes a K, M, G, T, P or E suffix (powers of 1024); the new size\n"
	      "is rounded up to a multiple of 512.  Growing a static image\n"
	      "allocates the new blocks.  When the block map has no room for\n"
	      "the new blocks it moves, and the data blocks in its way move to\n"
	      "the end of the file.\n"
	      "\n"
	      "Shrinking must be asked for with --shrink, and is refused when\n"
	      "the part cut off holds any data that is not zeros; the image is\n"
	      "then left as it was.\n"
	      "\n"
	      "A differencing image has its parent's size and cannot be\n"
	      "resized; resize the parent before making snapshots of it.\n"
	      "\n"
	      "  --shrink     allow the disk to get smaller\n"
	      "  -b, --parent=PARENT\n"
	      "               accepted as by the other commands: FILE is\n"
	      "               checked to be no differencing image without\n"
	      "               its parents being opened\n"
	      "  --output=FMT report as human (default) or json\n"
	      "  -f vdi       accepted for qemu-img compatibility\n"
	      "  -p           show a progress bar on standard error (blocks\n"
	      "               a shrink reads, blocks a moving map displaces)\n"
	      "  -q           quiet: no progress bar, print nothing on success\n"
	      "  -h, --help   show this help\n", stdout);
}

/* A negative size ("-512M") would look like an option to getopt: as
 * qemu-img does, take it out of the arguments first (wherever it is, so
 * that options may follow it).  No option of ours looks like that; main()
 * lets such an argument through for resize alone. */
static bool is_differencing(struct vdi_image *img)
{
	struct vdi_info in;

	return vdi_get_info(img, &in) == 0 && in.type == VDI_TYPE_DIFF;
}

/* The current virtual size, from a read-only open.  A differencing image
 * is refused here: its size must stay its parent's, and vdi_resize()
 * does not check that (a resized child no longer opens). */
static int current_size(const char *path, uint64_t *out)
{
	struct vdi_image *img;
	/* Alone: a differencing image is refused whether or not its
	 * parent is found. */
	int ret = vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT, &img);

	if (ret < 0) {
		lib_error(ret, "resize: cannot open %s", path);
		return -1;
	}
	if (vdi_get_parent(img) || is_differencing(img)) {
		die_msg("resize: %s is a differencing image: its size is its "
			"parent's; resize the parent before making snapshots "
			"of it", path);
		vdi_close(img);
		return -1;
	}
	*out = vdi_get_size(img);
	vdi_close(img);
	return 0;
}

int cmd_resize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "shrink", no_argument, NULL, OPT_SHRINK },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "parent", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path, *size_arg = NULL;
	struct parents parents = { 0 };
	enum output_format fmt = OUTPUT_HUMAN;
	struct timespec t0;
	struct progress prog;
	bool quiet = false, shrink = false, show_progress = false;
	uint64_t cur, delta, size;
	char a[32], b[32];
	int c, ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (looks_negative(argv[i]) && strcmp(argv[i - 1], "-f") &&
		    strcmp(argv[i - 1], "-b")) {
			size_arg = argv[i];
			memmove(argv + i, argv + i + 1,
				(size_t)(argc - i) * sizeof(*argv));
			argc--;
			break;
		}
	}

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:b:pqh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SHRINK:
			shrink = true;
			break;
		case OPT_OUTPUT:
			if (parse_output("resize", optarg, &fmt) < 0)
				return EXIT_FAIL;
			break;
		case 'f':
			if (strcmp(optarg, "vdi")) {
				die_msg("resize: only the vdi format can be "
					"resized, not '%s'", optarg);
				return EXIT_FAIL;
			}
			break;
		case 'b':
			if (add_parent("resize", &parents, optarg) < 0)
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
			option_error("resize", c, argv);
			return EXIT_FAIL;
		}
	}
	if (argc - optind != (size_arg ? 1 : 2)) {
		usage_error("resize", argc - optind < (size_arg ? 1 : 2)
			    ? "expected FILE and SIZE"
			    : "too many arguments: expected FILE and SIZE");
		return EXIT_FAIL;
	}
	path = argv[optind];
	if (!size_arg)
		size_arg = argv[optind + 1];

	if (size_arg[0] == '+' || size_arg[0] == '-') {
		if (parse_size_shown("size", size_arg + 1, size_arg,
				     &delta) < 0)
			return EXIT_FAIL;
		if (current_size(path, &cur) < 0)
			return EXIT_FAIL;
		if (size_arg[0] == '+') {
			if (delta > UINT64_MAX - cur) {
				die_msg("resize: %s: growing %" PRIu64
					" bytes by %s is too large", path, cur,
					size_arg);
				return EXIT_FAIL;
			}
			size = cur + delta;
		} else {
			if (delta > cur) {
				format_size(a, sizeof(a), cur);
				die_msg("resize: %s: cannot shrink by %s: the "
					"disk is only %s (%" PRIu64 " bytes)",
					path, size_arg + 1, a, cur);
				return EXIT_FAIL;
			}
			size = cur - delta;
		}
	} else {
		if (parse_size("size", size_arg, &size) < 0)
			return EXIT_FAIL;
		if (current_size(path, &cur) < 0)
			return EXIT_FAIL;
	}

	/* The library rounds up to 512 and refuses a smaller size without
	 * the flag; say which option allows it. */
	if (size > UINT64_MAX - 511) {
		die_msg("resize: size %s is too large", size_arg);
		return EXIT_FAIL;
	}
	if (((size + 511) & ~(uint64_t)511) < cur && !shrink) {
		format_size(a, sizeof(a), size);
		format_size(b, sizeof(b), cur);
		die_msg("resize: %s: %s (%" PRIu64 " bytes) is smaller than the "
			"disk (%s); use --shrink to shrink it", path, a, size,
			b);
		return EXIT_FAIL;
	}
	timer_start(&t0);
	progress_init(&prog, show_progress && !quiet, 1);
	ret = vdi_resize_with_progress(path, size,
				       shrink ? VDI_RESIZE_SHRINK : 0,
				       progress_callback, &prog);
	progress_finish(&prog, ret == 0);
	if (ret < 0) {
		lib_error(ret, "resize: cannot resize %s", path);
		return EXIT_FAIL;
	}
	if (!quiet && fmt == OUTPUT_JSON) {
		fputs("{\n    \"filename\": ", stdout);
		json_string(stdout, path);
		printf(",\n    \"old-size\": %" PRIu64 ",\n"
		       "    \"virtual-size\": %" PRIu64 ",\n"
		       "    \"seconds\": %.6f\n}\n", cur,
		       (size + 511) & ~(uint64_t)511, timer_seconds(&t0));
	} else if (!quiet) {
		puts("Image resized.");
	}
	return 0;
}
