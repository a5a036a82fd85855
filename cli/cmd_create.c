/* vdi create: make a new dynamic or static image with vdi_create(). */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
	fputs("Usage: vdi create [-q] [-o OPTIONS]... FILE SIZE\n"
	      "\n"
	      "Create the VDI image FILE holding a disk of SIZE bytes (rounded\n"
	      "up to 512).  SIZE takes a K, M, G, T, P or E suffix (powers of\n"
	      "1024).  An existing FILE is replaced.\n"
	      "\n"
	      "  -o OPTIONS   comma-separated key=value options, may repeat\n"
	      "               (-o help lists them); a comma inside a value is\n"
	      "               written ',,'\n"
	      "  -f vdi       accepted for qemu-img compatibility\n"
	      "  -q           quiet: print nothing on success\n"
	      "  -h, --help   show this help\n"
	      "\n", stdout);
	image_opts_help(stdout);
}

int cmd_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct image_opts io = { 0 };
	struct vdi_create_opts co;
	bool quiet = false;
	uint64_t size;
	const char *path;
	int c, ret, status = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "vdi")) {
				die_msg("create: only the vdi format can be "
					"created, not '%s'", optarg);
				goto out;
			}
			break;
		case 'o':
			ret = image_opts_parse(&io, "create", optarg);
			if (ret) {
				status = ret > 0 ? 0 : EXIT_FAIL;
				goto out;
			}
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help();
			status = 0;
			goto out;
		default:
			option_error("create", c, argv);
			goto out;
		}
	}
	if (argc - optind != 2) {
		usage_error("create", argc - optind < 2
			    ? "expected FILE and SIZE"
			    : "too many arguments: expected FILE and SIZE");
		goto out;
	}
	path = argv[optind];
	if (parse_size("size", argv[optind + 1], &size) < 0)
		goto out;

	image_opts_to_create(&io, &co);
	if (!quiet) {
		printf("Formatting '%s', fmt=vdi size=%llu static=%s "
		       "block_size=%u\n", path, (unsigned long long)size,
		       io.is_static ? "on" : "off",
		       io.block_size ? io.block_size : VDI_DEFAULT_BLOCK_SIZE);
		fflush(stdout);
	}
	ret = vdi_create(path, size, &co);
	if (ret < 0) {
		lib_error(ret, "create: cannot create %s", path);
		goto out;
	}
	status = 0;
out:
	image_opts_free(&io);
	return status;
}
