/* vdi convert: copy a virtual disk between raw files and VDI images.
 *
 * The copy is a pipeline of `depth` slots of up to 1 MiB.  Each slot reads
 * a piece of the source; when the read completes, the piece is split into
 * granules (the VDI block size, or 4 KiB for raw output) and every run of
 * granules that is not all zeros is written to the destination, so zero
 * blocks stay unallocated in a VDI image and zero ranges stay holes in a
 * raw file.  Ranges the source itself knows to be zero (free VDI blocks,
 * holes in a raw file) are never read.  Reads and writes of different
 * slots overlap; both sides keep many requests in flight. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "convert.h"

#define CHUNK (1u << 20)
#define RAW_GRANULE 4096u
#define DEFAULT_DEPTH 16u
#define MAX_DEPTH 64u

enum { OPT_FORCE = 256, OPT_OUTPUT };

static void help(void)
{
	fputs("Usage: vdi convert [-p] [-q] [-f raw|vdi] [-O raw|vdi]\n"
	      "                   [-o OPTIONS]... [-m DEPTH] [--output=human|json]\n"
	      "                   [-b PARENT]... [--force] SRC DST\n"
	      "\n"
	      "Copy the virtual disk of SRC into a new file DST.  A\n"
	      "differencing SRC is read through its chain of parents: DST is a\n"
	      "standalone image of what SRC reads as.  DST is\n"
	      "written under a temporary name in its directory and renamed\n"
	      "into place when complete; a failed or interrupted convert\n"
	      "leaves DST as it was.  Zero ranges are not written: they stay\n"
	      "unallocated blocks in a VDI image and holes in a raw file.\n"
	      "\n"
	      "An existing DST is replaced only with --force, and never when\n"
	      "it is SRC or an image of SRC's chain, when you may not write\n"
	      "it, or when another process has it open (QEMU's or libvdi's\n"
	      "locks).  A SRC in another image format (qcow2, VMDK, VHD,\n"
	      "VHDX, QED, LUKS) is refused unless -f raw is given.\n"
	      "\n"
	      "  -f FMT       format of SRC: raw or vdi (default: vdi if SRC\n"
	      "               has the VDI signature, else raw)\n"
	      "  -O FMT       format of DST: raw (default, as qemu-img) or vdi\n"
	      "  -o OPTIONS   options for a VDI DST, as vdi create takes them\n"
	      "               (-o help lists them)\n"
	      "  -m DEPTH     requests of 1 MiB in flight, 1 to 64 (default "
	      "16)\n"
	      "  -b, --parent=PARENT\n"
	      "               the parent of the differencing image SRC\n"
	      "               (default: looked for next to SRC); once per\n"
	      "               level: the parent, its parent...\n"
	      "  --force      replace an existing DST\n"
	      "  -p           show a progress bar on standard error\n"
	      "  -q           quiet: no progress bar\n"
	      "  --output=FMT human (default): nothing; json: a report of\n"
	      "               the copy when done\n"
	      "  -h, --help   show this help\n", stdout);
}

/* ---- The copy pipeline ------------------------------------------------- */

enum slot_state { SLOT_FREE, SLOT_READING, SLOT_WRITING };

struct slot {
	unsigned char *buf;
	uint64_t off;    /* virtual offset of buf[0] */
	size_t len;
	size_t got;      /* bytes read so far */
	size_t scan;     /* first byte not yet written or found zero */
	unsigned writes; /* writes in flight from this slot */
	enum slot_state state;
};

/* One write in flight: a run of non-zero granules of a slot. */
struct wreq {
	struct slot *slot;
	size_t pos, len; /* within the slot's buffer */
	struct wreq *next_free;
};

struct copy {
	struct endpoint *src, *dst;
	uint64_t size;
	size_t granule;
	struct slot *slots;
	unsigned nslots;
	struct wreq *wreqs;
	struct wreq *free_wreqs;
	struct vdi_completion *cqes;
	unsigned ncqes;
	uint64_t pos;      /* next source offset to look at */
	uint64_t ext_end;  /* end of the source extent at pos */
	bool ext_zero;
	uint64_t done;     /* bytes copied or skipped */
	struct progress prog;
};

static bool is_zero(const unsigned char *p, size_t len)
{
	/* Zero at the start, and every byte equal to the one before it. */
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* End (in the slot's buffer) of the granule that holds byte `pos`. */
static size_t granule_end(const struct copy *c, const struct slot *s,
			  size_t pos)
{
	uint64_t abs = s->off + pos;
	uint64_t end = (abs / c->granule + 1) * c->granule - s->off;

	return end < s->len ? (size_t)end : s->len;
}

static void slot_done(struct copy *c, struct slot *s)
{
	c->done += s->len;
	s->state = SLOT_FREE;
	progress_update(&c->prog, c->done);
}

/* Queue writes for the non-zero runs of a slot that has been read, as many
 * as the destination accepts now.  Returns 0 or -1 after a message. */
static int issue_writes(struct copy *c, struct slot *s)
{
	while (s->scan < s->len) {
		size_t a = s->scan, b;
		struct wreq *w;
		int ret;

		while (a < s->len && is_zero(s->buf + a,
					     granule_end(c, s, a) - a))
			a = granule_end(c, s, a);
		s->scan = a;
		if (a == s->len)
			break;
		b = granule_end(c, s, a);
		while (b < s->len && !is_zero(s->buf + b,
					      granule_end(c, s, b) - b))
			b = granule_end(c, s, b);

		w = c->free_wreqs;
		if (!w)
			return 0; /* retried when a write completes */
		ret = c->dst->ops->write(c->dst, s->buf + a, b - a, s->off + a,
					 w);
		if (ret == -EAGAIN)
			return 0;
		if (ret < 0) {
			lib_error(ret, "convert: cannot queue a write to %s",
				  c->dst->path);
			return -1;
		}
		c->free_wreqs = w->next_free;
		w->slot = s;
		w->pos = a;
		w->len = b - a;
		s->writes++;
		s->scan = b;
	}
	if (s->writes == 0)
		slot_done(c, s);
	return 0;
}

/* Start reading the next piece of the source into a free slot.  Returns
 * 1 if a read was queued, 0 if there is nothing to read now, -1 on error. */
static int start_read(struct copy *c, struct slot *s)
{
	while (c->pos < c->size) {
		uint64_t len, chunk_end;
		int ret;

		if (c->pos >= c->ext_end) {
			ret = c->src->ops->extent(c->src, c->pos, &len,
						  &c->ext_zero);
			if (ret < 0)
				return -1;
			if (len == 0 || len > c->size - c->pos)
				len = c->size - c->pos;
			c->ext_end = c->pos + len;
		}
		if (c->ext_zero) {
			c->done += c->ext_end - c->pos;
			c->pos = c->ext_end;
			progress_update(&c->prog, c->done);
			continue;
		}
		chunk_end = (c->pos / CHUNK + 1) * CHUNK;
		if (chunk_end > c->ext_end)
			chunk_end = c->ext_end;
		len = chunk_end - c->pos;
		ret = c->src->ops->read(c->src, s->buf, (size_t)len, c->pos, s);
		if (ret == -EAGAIN)
			return 0;
		if (ret < 0) {
			lib_error(ret, "convert: cannot queue a read of %s",
				  c->src->path);
			return -1;
		}
		s->off = c->pos;
		s->len = (size_t)len;
		s->got = 0;
		s->scan = 0;
		s->writes = 0;
		s->state = SLOT_READING;
		c->pos = chunk_end;
		return 1;
	}
	return 0;
}

static int read_done(struct copy *c, struct slot *s, int64_t res)
{
	int ret;

	if (res <= 0) {
		die_msg("convert: cannot read %s at offset %llu: %s",
			c->src->path, (unsigned long long)(s->off + s->got),
			res ? strerror((int)-res) : "unexpected end of file");
		return -1;
	}
	s->got += (size_t)res;
	if (s->got < s->len) {
		/* A short read: ask for the rest. */
		ret = c->src->ops->read(c->src, s->buf + s->got,
					s->len - s->got, s->off + s->got, s);
		if (ret < 0) {
			lib_error(ret, "convert: cannot queue a read of %s",
				  c->src->path);
			return -1;
		}
		return 0;
	}
	s->state = SLOT_WRITING;
	return issue_writes(c, s);
}

static int write_done(struct copy *c, struct wreq *w, int64_t res)
{
	struct slot *s = w->slot;
	int ret;

	if (res <= 0) {
		die_msg("convert: cannot write %s at offset %llu: %s",
			c->dst->path, (unsigned long long)(s->off + w->pos),
			res ? strerror((int)-res) : "nothing was written");
		return -1;
	}
	if ((size_t)res < w->len) {
		w->pos += (size_t)res;
		w->len -= (size_t)res;
		ret = c->dst->ops->write(c->dst, s->buf + w->pos, w->len,
					 s->off + w->pos, w);
		if (ret < 0) {
			lib_error(ret, "convert: cannot queue a write to %s",
				  c->dst->path);
			return -1;
		}
		return 0;
	}
	w->next_free = c->free_wreqs;
	c->free_wreqs = w;
	s->writes--;
	if (s->writes == 0 && s->scan == s->len)
		slot_done(c, s);
	return 0;
}

/* Reap from one side and handle what completed.  Returns the number of
 * completions, or -1 after a message. */
static int reap(struct copy *c, struct endpoint *ep, unsigned min)
{
	int n = ep->ops->reap(ep, c->cqes, min, c->ncqes);

	if (n < 0) {
		lib_error(n, "convert: waiting for I/O on %s", ep->path);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int ret = ep == c->src
			? read_done(c, c->cqes[i].tag, c->cqes[i].res)
			: write_done(c, c->cqes[i].tag, c->cqes[i].res);
		if (ret < 0)
			return -1;
	}
	return n;
}

static int submit(struct endpoint *ep)
{
	int ret = ep->ops->submit(ep);

	if (ret < 0)
		lib_error(ret, "convert: cannot submit I/O on %s", ep->path);
	return ret;
}

static int run_copy(struct copy *c)
{
	for (;;) {
		unsigned busy = 0;
		int n;

		for (unsigned i = 0; i < c->nslots; i++) {
			struct slot *s = &c->slots[i];

			if (s->state == SLOT_FREE && start_read(c, s) < 0)
				return -1;
			if (s->state == SLOT_WRITING && s->scan < s->len &&
			    issue_writes(c, s) < 0)
				return -1;
			busy += s->state != SLOT_FREE;
		}
		if (submit(c->src) < 0 || submit(c->dst) < 0)
			return -1;
		if (!busy && c->pos >= c->size)
			return 0;
		if (!c->src->ops->pending(c->src) &&
		    !c->dst->ops->pending(c->dst)) {
			die_msg("convert: internal error: the copy stalled at "
				"offset %llu", (unsigned long long)c->pos);
			return -1;
		}

		n = reap(c, c->src, 0);
		if (n >= 0) {
			int m = reap(c, c->dst, 0);
			n = m < 0 ? m : n + m;
		}
		if (n == 0) {
			/* Nothing done yet: wait on the side with requests in
			 * flight, the writes first. */
			struct endpoint *ep = c->dst->ops->pending(c->dst)
					      ? c->dst : c->src;
			n = reap(c, ep, 1);
		}
		if (n < 0)
			return -1;
	}
}

static int copy_setup(struct copy *c, unsigned depth)
{
	c->nslots = depth;
	c->slots = calloc(depth, sizeof(*c->slots));
	c->ncqes = 4 * depth;
	c->wreqs = calloc(c->ncqes, sizeof(*c->wreqs));
	c->cqes = calloc(c->ncqes, sizeof(*c->cqes));
	if (!c->slots || !c->wreqs || !c->cqes)
		return -1;
	for (unsigned i = 0; i < depth; i++)
		if (posix_memalign((void **)&c->slots[i].buf, 4096, CHUNK))
			return -1;
	for (unsigned i = 0; i < c->ncqes; i++) {
		c->wreqs[i].next_free = c->free_wreqs;
		c->free_wreqs = &c->wreqs[i];
	}
	return 0;
}

static void copy_free(struct copy *c)
{
	for (unsigned i = 0; c->slots && i < c->nslots; i++)
		free(c->slots[i].buf);
	free(c->slots);
	free(c->wreqs);
	free(c->cqes);
}

/* ---- Setup --------------------------------------------------------------- */

static int parse_format(const char *opt, const char *text,
			enum image_format *out)
{
	if (!strcmp(text, "raw")) {
		*out = FORMAT_RAW;
		return 0;
	}
	if (!strcmp(text, "vdi")) {
		*out = FORMAT_VDI;
		return 0;
	}
	die_msg("convert: unknown format '%s' for %s: use raw or vdi", text,
		opt);
	return -1;
}

/* What SRC is, when -f does not say: VDI or raw.  Another image format
 * copied as raw would give a disk holding that format's container, so it
 * is refused; -f raw asks for exactly that. */
static int probe_source(const char *path, enum image_format *out)
{
	const char *format;

	if (probe_path("convert", path, &format) < 0)
		return -1;
	if (probe_is_foreign(format)) {
		die_msg("convert: %s is %s; libvdi reads VDI and raw (give -f "
			"raw to copy the file's bytes as a raw disk)", path,
			probe_describe(format));
		return -1;
	}
	*out = strcmp(format, "vdi") ? FORMAT_RAW : FORMAT_VDI;
	return 0;
}

/* DST must not be SRC (by any name: a hard or symbolic link, or
 * /proc/self/fd/N), nor any image SRC reads through: the copy would
 * replace what it reads from. */
static int check_not_source(const char *src, const char *dst)
{
	if (same_file(src, dst)) {
		die_msg("convert: %s is the source %s itself; give DST another "
			"name", dst, src);
		return -1;
	}
	return 0;
}

static int check_not_in_chain(const char *src, const char *dst,
			      const struct endpoint *ep)
{
	const char *member = chain_member(vdi_endpoint_image(ep), dst);

	if (member) {
		die_msg("convert: %s is %s, an image of the chain that %s "
			"reads through; give DST another name", dst, member,
			src);
		return -1;
	}
	return 0;
}

/* The destination endpoint, on the temporary file; messages name DST. */
static int open_dest(const char *dst_path, int fd, enum image_format fmt,
		     uint64_t size, const struct image_opts *io,
		     unsigned depth, struct endpoint **dst)
{
	struct vdi_create_opts co;

	if (fmt == FORMAT_RAW)
		return raw_open_dest(dst_path, fd, size, 2 * depth, dst);
	close(fd);
	image_opts_to_create(io, &co);
	if (tmpfile_vdi_create(size, &co) < 0 ||
	    vdi_open_dest(tmpfile_path(), 2 * depth, dst) < 0)
		return -1;
	(*dst)->path = dst_path;
	return 0;
}

int cmd_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "parent", required_argument, NULL, 'b' },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum output_format report = OUTPUT_HUMAN;
	struct timespec t0;
	enum image_format in_fmt = FORMAT_PROBE, out_fmt = FORMAT_RAW;
	struct parents parents = { 0 };
	struct image_opts io = { 0 };
	struct copy c = { 0 };
	struct dest d = { .lock_fd = -1 };
	bool progress = false, quiet = false, force = false;
	unsigned depth = DEFAULT_DEPTH;
	const char *src_path, *dst_path;
	uint64_t n;
	int ch, ret, fd = -1, status = EXIT_FAIL;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":f:O:o:m:b:pqh", longopts,
				 NULL)) != -1) {
		switch (ch) {
		case 'b':
			if (add_parent("convert", &parents, optarg) < 0)
				return EXIT_FAIL;
			break;
		case OPT_OUTPUT:
			if (parse_output("convert", optarg, &report) < 0)
				return EXIT_FAIL;
			break;
		case 'f':
			if (parse_format("-f", optarg, &in_fmt) < 0)
				goto out;
			break;
		case 'O':
			if (parse_format("-O", optarg, &out_fmt) < 0)
				goto out;
			break;
		case 'o':
			ret = image_opts_parse(&io, "convert", optarg);
			if (ret) {
				status = ret > 0 ? 0 : EXIT_FAIL;
				goto out;
			}
			break;
		case 'm':
			if (parse_size("depth", optarg, &n) < 0)
				goto out;
			if (n < 1 || n > MAX_DEPTH) {
				die_msg("convert: depth %s is out of range: "
					"use -m 1 to -m %u", optarg, MAX_DEPTH);
				goto out;
			}
			depth = (unsigned)n;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case 'p':
			progress = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help();
			status = 0;
			goto out;
		default:
			option_error("convert", ch, argv);
			goto out;
		}
	}
	if (argc - optind != 2) {
		usage_error("convert", argc - optind < 2
			    ? "expected SRC and DST"
			    : "too many arguments: expected SRC and DST");
		goto out;
	}
	src_path = argv[optind];
	dst_path = argv[optind + 1];
	if (io.any && out_fmt != FORMAT_VDI) {
		die_msg("convert: -o options are for VDI output; add -O vdi");
		goto out;
	}
	if (in_fmt == FORMAT_PROBE && probe_source(src_path, &in_fmt) < 0)
		goto out;
	if (parents.n && in_fmt != FORMAT_VDI) {
		die_msg("convert: -b names the parent of a differencing VDI "
			"source; %s is raw", src_path);
		goto out;
	}
	if (check_not_source(src_path, dst_path) < 0)
		goto out;

	ret = in_fmt == FORMAT_VDI ? vdi_open_source(src_path, &parents, depth,
						     &c.src)
				   : raw_open_source(src_path, depth, &c.src);
	if (ret < 0)
		goto out;
	c.size = c.src->size;
	if ((in_fmt == FORMAT_VDI &&
	     check_not_in_chain(src_path, dst_path, c.src) < 0) ||
	    dest_claim("convert", dst_path, force, &d) < 0)
		goto out;
	timer_start(&t0);

	fd = tmpfile_create(dst_path);
	if (fd < 0)
		goto out;
	ret = open_dest(dst_path, fd, out_fmt, c.size, &io, depth, &c.dst);
	if (ret < 0) {
		if (out_fmt == FORMAT_RAW)
			close(fd);
		goto out;
	}
	/* A replaced file's permissions carry over, before any data does. */
	if (d.exists && tmpfile_chmod(dest_mode(&d, 0)) < 0)
		goto out;
	/* A VDI destination may be larger: its size is rounded up to 512. */
	c.granule = out_fmt == FORMAT_VDI
		    ? (io.block_size ? io.block_size : VDI_DEFAULT_BLOCK_SIZE)
		    : RAW_GRANULE;
	if (c.granule > CHUNK)
		c.granule = CHUNK;

	if (copy_setup(&c, depth) < 0) {
		die_msg("out of memory");
		goto out;
	}
	progress_init(&c.prog, progress && !quiet, c.size);
	ret = run_copy(&c);
	progress_finish(&c.prog, ret == 0);
	if (ret < 0)
		goto out;

	ret = c.dst->ops->finish(c.dst);
	c.dst = NULL;
	if (ret < 0)
		goto out;
	if (tmpfile_commit(dst_path) < 0)
		goto out;
	if (report == OUTPUT_JSON && !quiet)
		convert_report_json(src_path, in_fmt == FORMAT_VDI ? "vdi" : "raw",
				    dst_path, out_fmt == FORMAT_VDI ? "vdi" : "raw",
				    c.size, timer_seconds(&t0));
	status = 0;
out:
	/* abort() waits for what is in flight before the buffers go. */
	if (c.dst)
		c.dst->ops->abort(c.dst);
	if (c.src)
		c.src->ops->abort(c.src);
	if (status != 0)
		tmpfile_discard();
	dest_release(&d);
	copy_free(&c);
	image_opts_free(&io);
	return status;
}
