/* vdi: create, inspect, check, map, convert, compact, resize, discard,
 * zero and commit VirtualBox disk images.
 * This file only dispatches to the subcommands (cmd_*.c). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>

#include "cli.h"

#ifndef VDI_TOOL_VERSION
#define VDI_TOOL_VERSION "unknown"
#endif

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "create", cmd_create, "create a new image" },
	{ "info", cmd_info, "show what an image's header says" },
	{ "check", cmd_check, "check an image for corruption and leaks" },
	{ "map", cmd_map, "show which parts of the disk hold data" },
	{ "convert", cmd_convert, "copy a disk between raw and VDI files" },
	{ "compact", cmd_compact, "give back the space of zero and unused blocks" },
	{ "resize", cmd_resize, "grow or shrink the virtual disk" },
	{ "discard", cmd_discard, "discard a range of the disk (reads as zeros)" },
	{ "zero", cmd_zero, "make a range of the disk read as zeros" },
	{ "commit", cmd_commit, "merge a differencing image into its parent" },
	{ "compare", cmd_compare, "tell whether two disks read the same" },
	{ "measure", cmd_measure, "the file size a convert would need" },
	{ "amend", cmd_amend, "change the description, UUID or parent link" },
	{ "rebase", cmd_rebase, "give a differencing image another parent" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("Usage: vdi COMMAND [OPTIONS] ARGS...\n"
	      "       vdi COMMAND --help\n"
	      "       vdi help [COMMAND]\n"
	      "       vdi --version\n"
	      "\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fputs("\n"
	      "Sizes take a K, M, G, T, P or E suffix (powers of 1024).\n"
	      "Commands that print a report take --output=human|json.\n"
	      "Differencing images (snapshots): 'vdi create -b PARENT FILE'\n"
	      "makes one; commands that open one take -b PARENT when the\n"
	      "parent is not next to it.\n", f);
}

/* "-1M" is no option: getopt would call it "unknown option '-1'".  Every
 * argument that looks like a negative number is a size given negative,
 * wherever it stands, except for resize (where -SIZE shrinks) and after
 * an option that takes a value.  Returns true after the message. */
static bool negative_argument(const char *name, int argc, char **argv)
{
	static const char takes_value[] = "bfFoOrl";

	if (!strcmp(name, "resize"))
		return false;
	for (int i = 2; i < argc; i++) {
		const char *prev = argv[i - 1];

		if (!strcmp(argv[i], "--"))
			break;
		if (prev[0] == '-' && prev[1] && !prev[2] &&
		    strchr(takes_value, prev[1]))
			continue;
		if (looks_negative(argv[i])) {
			negative_size("size", argv[i]);
			return true;
		}
	}
	return false;
}

/* A report cut short by a full disk or a closed pipe must not exit 0. */
static int finish(int status)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		die_msg("error writing to standard output: %s", strerror(errno));
		return status ? status : EXIT_FAIL;
	}
	return status;
}

/* vdi help CMD: what vdi CMD --help prints. */
static int help_command(const char *name)
{
	char *args[] = { (char *)name, (char *)"--help", NULL };

	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name)) {
			cli_command = name;
			optind = 1;
			return finish(commands[i].run(2, args));
		}
	die_msg("help: unknown command '%s'; 'vdi help' lists them", name);
	return EXIT_FAIL;
}

int main(int argc, char **argv)
{
	const char *name;

	/* Past a file size limit (ulimit -f) a write then fails with EFBIG,
	 * reported and cleaned up like any other error, rather than the
	 * signal killing the tool half way, temporary file left behind. */
	signal(SIGXFSZ, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return EXIT_FAIL;
	}
	name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") ||
	    (!strcmp(name, "help") && argc == 2)) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("vdi version %s (libvdi API %d.%d)\n", VDI_TOOL_VERSION,
		       VDI_VERSION_MAJOR, VDI_VERSION_MINOR);
		return 0;
	}
	if (!strcmp(name, "help") && argc > 2)
		return help_command(argv[2]);
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name)) {
			cli_command = name;
			if (negative_argument(name, argc, argv))
				return EXIT_FAIL;
			return finish(commands[i].run(argc - 1, argv + 1));
		}
	if (name[0] == '-')
		die_msg("unknown option '%s'; try 'vdi --help'", name);
	else
		die_msg("unknown command '%s'; try 'vdi --help'", name);
	return EXIT_FAIL;
}
