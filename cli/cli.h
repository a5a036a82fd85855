/* vdi: the command-line tool.  Shared declarations of the subcommands and
 * of the small helpers in util.c, opts.c and progress.c. */
#ifndef VDI_CLI_H
#define VDI_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <vdi.h>

/* Exit status of every subcommand on failure (vdi check has its own
 * codes, see cmd_check.c). */
#define EXIT_FAIL 1

/* ---- Subcommands (cmd_*.c): argv[0] is the subcommand's name. ---- */
int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_discard(int argc, char **argv);
int cmd_zero(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_amend(int argc, char **argv);
int cmd_rebase(int argc, char **argv);

/* vdi discard and vdi zero (cmd_discard.c): parse [-q] FILE OFFSET LENGTH
 * or --all FILE, check the range, run `run` on it and report. */
struct range_command {
	const char *name;  /* the subcommand */
	const char *done;  /* the report's first word: "Discarded" */
	void (*help)(void);
	int (*run)(struct vdi_image *img, uint64_t offset, uint64_t len);
};
int range_command(int argc, char **argv, const struct range_command *cmd);

/* vdi convert --output=json (report.c). */
void convert_report_json(const char *src, const char *src_fmt,
			 const char *dst, const char *dst_fmt, uint64_t size,
			 double seconds);

/* The inputs of vdi compare and vdi measure (input.c): a raw file or a
 * VDI image (through its parents), read in steps of at most INPUT_STEP. */
#define INPUT_STEP (1u << 20)
struct input {
	const char *path;
	bool is_vdi;
	int fd;                 /* raw */
	struct vdi_image *img;  /* vdi */
	uint64_t size;
	unsigned char *buf;
	/* vdi: the container files of the static images of the chain, by
	 * depth, opened when input_block_status() first needs one (-1). */
	int *layer_fd;
	unsigned layers;
};

/* Open `path` as raw (fmt 0), VDI (1) or what its first bytes say (-1).
 * 0, or -1 after a message; close_input() either way. */
int open_input(struct input *in, const char *path, int fmt);
void close_input(struct input *in);
/* How far from `off` (at most `max`) the allocation stays the same, and
 * whether data is stored there (qemu's "allocated"): a raw file stores it
 * everywhere, a VDI chain where some image holds a data block.  0 or -1
 * after a message. */
int input_status(struct input *in, uint64_t off, uint64_t max,
		 uint64_t *len, bool *data);
/* Read `len` (at most INPUT_STEP) bytes at `off` into in->buf. */
int input_read(struct input *in, uint64_t off, size_t len);

/* The block status QEMU gives `off` (qemu-img compare -s compares these
 * flags): from a raw file's holes (SEEK_DATA/SEEK_HOLE), or from the
 * block map of a VDI chain, one block at a time, with the holes of a
 * static image's file.  *len is how far the status holds (a raw file's
 * whole hole or data run, to the end of the VDI block); BLOCK_EOF is set
 * when that reaches the end of the disk.  0 or -1 after a message. */
enum {
	BLOCK_DATA = 0x1,
	BLOCK_ZERO = 0x2,
	BLOCK_OFFSET_VALID = 0x4,
	BLOCK_EOF = 0x8,
};
int input_block_status(struct input *in, uint64_t off, uint64_t *len,
		       unsigned *flags);

/* ---- Differencing images (chain.c) ---- */

/* The -b PARENT option that names the parent of a differencing image is
 * "--parent" in long form; -F names the parent's format, only "vdi".
 * Returns 0, or -1 after a message. */
int parent_format(const char *cmd, const char *fmt);

/* -b given once per level of a chain: the parent, then its parent... */
#define CLI_MAX_PARENTS 32
struct parents {
	const char *path[CLI_MAX_PARENTS];
	size_t n;
};
/* Add one -b.  Returns 0, or -1 after a message. */
int add_parent(const char *cmd, struct parents *p, const char *path);

/* vdi_open_chain() with the library's message on failure.  Parents given
 * for an image that has none, or more than its chain has, are an error
 * (the library would ignore them).  When the chain is what failed and
 * `no_parent_hint` is set, says that --no-parent looks at the image
 * alone.  Returns 0 or a negative errno. */
int open_chain(const char *cmd, const char *path, const struct parents *p,
	       unsigned flags, bool no_parent_hint, struct vdi_image **out);

/* Images in the chain from `img` down: 1 for an image without parent. */
unsigned chain_length(struct vdi_image *img);

/* Where the bytes at virtual offset `off` come from: the run of at most
 * `max` bytes from `off` that reads from one image of the chain in one
 * way.  Free entries are followed to the parent; a zero entry ends the
 * walk (it hides the parent), as do data and the bottom image. */
struct chain_extent {
	uint64_t length;
	uint64_t file_offset;     /* DATA and BAD: in `img`'s file */
	enum vdi_extent_kind kind;
	unsigned depth;           /* 0: the image itself, 1: its parent... */
	struct vdi_image *img;    /* the image the walk ended in */
};
/* Returns 0, or a negative errno after a message naming `cmd`. */
int chain_extent(const char *cmd, struct vdi_image *top, uint64_t off,
		 uint64_t max, struct chain_extent *out);

/* ---- The file create and convert make (dest.c) ---- */

struct dest {
	bool exists;     /* a file of that name is being replaced */
	struct stat st;  /* the existing file */
	int lock_fd;     /* holds its locks until dest_release(); or -1 */
};
/* May the new file take the name `path`?  Either nothing has that name
 * and its directory may be written, or (with `force` only) it is a
 * regular file the user may write that no other process holds through
 * QEMU's or libvdi's locks; that file is then kept locked against new
 * users until dest_release().  Returns 0, or -1 after a message naming
 * `cmd`. */
int dest_claim(const char *cmd, const char *path, bool force,
	       struct dest *d);
void dest_release(struct dest *d);
/* The permissions the new file gets: the replaced file's, or `fallback`. */
mode_t dest_mode(const struct dest *d, mode_t fallback);
/* Do both names lead to one file (device and inode)?  Hard links,
 * symbolic links and /proc/self/fd/N all do. */
bool same_file(const char *a, const char *b);
/* The name of the image of the chain from `top` down that is the file
 * `path`, or NULL if none is. */
const char *chain_member(struct vdi_image *top, const char *path);

/* ---- Image formats (probe.c) ---- */

/* The format of the file open on `fd`: "vdi", a format libvdi does not
 * read, by qemu-img's name ("qcow2", "qcow", "qed", "vmdk", "vpc" (VHD),
 * "vhdx", "luks"), or else "raw".  Returns 0 or -errno. */
int probe_format(int fd, const char **format);
/* The same for a path.  Returns 0, or -1 after a message naming `cmd`. */
int probe_path(const char *cmd, const char *path, const char **format);
/* A format that is neither VDI nor raw. */
bool probe_is_foreign(const char *format);
/* "a qcow2 image", for messages. */
const char *probe_describe(const char *format);
/* After a failed open of `path` as a VDI image: if it is another known
 * format, say so ("x.qcow2 is a qcow2 image; libvdi reads VDI and raw"). */
void probe_hint(const char *cmd, const char *path);

/* ---- Messages (util.c) ---- */

/* The subcommand running (set by main), named in every message. */
extern const char *cli_command;

/* Print "vdi: CMD: <message>\n" on stderr (CMD: cli_command, unless the
 * message starts with it already). */
void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Right after a failing libvdi call: print "vdi: CMD: <vdi_errmsg()>", or,
 * if the library left no message, "vdi: CMD: <message>: <strerror(-err)>". */
void lib_error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The usage error line for an unknown option or a missing operand:
 * "vdi: <cmd>: <what>; try 'vdi <cmd> --help'". */
void usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Whether `nargs` operands are exactly one FILE; if not, the usage error
 * says whether it is missing or followed by too many. */
bool one_file_operand(const char *cmd, int nargs);
/* Report what getopt_long() (run with opterr = 0 and a leading ':' in its
 * option string) returned as '?' or ':'. */
void option_error(const char *cmd, int c, char **argv);

/* ---- Values (util.c) ---- */

/* Parse a size: a decimal number, optionally with a fraction, optionally
 * followed by one of B K M G T P E (powers of 1024, either case).  Returns
 * 0, or -1 after printing a message that names `what` and the bad text. */
int parse_size(const char *what, const char *text, uint64_t *out);
/* The same, naming `shown` in messages (resize parses "-10G" as 10G). */
int parse_size_shown(const char *what, const char *text, const char *shown,
		     uint64_t *out);
/* "-5M", "-.5G": a negative number, not an option. */
bool looks_negative(const char *s);
/* The message for one: "invalid size '-1M': a size cannot be negative". */
void negative_size(const char *what, const char *text);

/* Parse on/off (also yes/no, true/false).  Returns 0 or -1 after a message. */
int parse_bool(const char *what, const char *text, bool *out);

/* Parse the --output argument: "human" or "json". */
enum output_format { OUTPUT_HUMAN, OUTPUT_JSON };
int parse_output(const char *cmd, const char *text, enum output_format *out);

/* The -f argument: only "vdi" is accepted.  Returns 0, or -1 after a
 * message naming `cmd` and the format given. */
int require_vdi_format(const char *cmd, const char *format);

/* Format a byte count the way qemu-img does ("1.41 MiB", "8 GiB"). */
void format_size(char *buf, size_t len, uint64_t bytes);

/* The alignment of every block's data in the file: the largest power of
 * two that divides the data offset and the slot size (block + extra). */
uint64_t data_alignment(const struct vdi_info *in);

/* Under 4 KiB (QEMU's layout, old VirtualBox images): say so, and how to
 * get an aligned copy.  Nothing for aligned images. */
void print_alignment_hint(const char *path, const struct vdi_info *in);

/* Write text from an image on one line: a newline as \n, a backslash as
 * \\, other control characters as \xHH. */
void text_escaped(FILE *f, const char *s);

/* Wall-clock time of an operation, for the "seconds" of JSON reports. */
void timer_start(struct timespec *t0);
double timer_seconds(const struct timespec *t0);

/* Write `s` as a JSON string literal (quotes included). */
void json_string(FILE *f, const char *s);

/* ---- -o key=value[,key=value...] lists (opts.c) ---- */

struct image_opts {
	bool is_static;
	uint32_t block_size;     /* 0: the library's default */
	char *description;       /* NULL: none */
	bool has_uuid;
	unsigned char uuid[16];  /* RFC 4122 order */
	bool any;                /* at least one option given */
};

/* Parse one -o argument into `o` (later keys override earlier ones).
 * `cmd` names the subcommand in messages.  "help" prints the list of
 * options and returns 1; errors print a message and return -1. */
int image_opts_parse(struct image_opts *o, const char *cmd, const char *arg);
void image_opts_free(struct image_opts *o);
/* Split a -o list into its items (",," undone) and call `fn` with each
 * key and value (NULL for a bare key).  Stops at the first `fn` that
 * fails.  Returns 0, or -1 after a message. */
int opts_split(const char *cmd, const char *arg,
	       int (*fn)(void *opaque, const char *key, const char *val),
	       void *opaque);
/* Fill library create options from `o`; the strings stay owned by `o`. */
void image_opts_to_create(const struct image_opts *o,
			  struct vdi_create_opts *c);
void image_opts_help(FILE *f);

/* ---- Progress bar on stderr (progress.c) ---- */

struct progress {
	bool enabled;
	uint64_t total;
	int last_permille; /* -1 before the first draw */
};

void progress_init(struct progress *p, bool enabled, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
/* A vdi_progress_fn for library calls; `opaque` is the struct progress. */
void progress_callback(void *opaque, uint64_t done, uint64_t total);
/* Draw 100% (if `complete`) and end the line. */
void progress_finish(struct progress *p, bool complete);
/* End the bar's line if one is drawn (before a message on stderr). */
void progress_break_line(void);

#endif
