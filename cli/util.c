/* Messages, value parsing and output formatting shared by the subcommands. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char *cli_command;

/* "vdi: CMD: " in front of every message, once: callers that name the
 * command themselves ("info: ...") are not given a second prefix. */
static void prefix(const char *msg)
{
	size_t n = cli_command ? strlen(cli_command) : 0;

	fputs("vdi: ", stderr);
	if (n && !(strncmp(msg, cli_command, n) == 0 && msg[n] == ':' &&
		   msg[n + 1] == ' '))
		fprintf(stderr, "%s: ", cli_command);
}

static void vmessage(const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	prefix(buf);
	fprintf(stderr, "%s\n", buf);
}

void die_msg(const char *fmt, ...)
{
	va_list ap;

	progress_break_line();
	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
}

/* The library's message already names the call and the file
 * ("vdi_open: x.vdi: not a VDI image"), so it is printed alone after the
 * command; our own context is the fallback when the library left none. */
void lib_error(int err, const char *fmt, ...)
{
	const char *msg = vdi_errmsg();
	char buf[1024];
	va_list ap;

	progress_break_line();
	if (msg && *msg) {
		static const char explicit[] = "name it explicitly";
		size_t n = strlen(msg), e = sizeof(explicit) - 1;

		prefix(msg);
		/* Every command that opens a chain takes -b: say so. */
		fprintf(stderr, "%s%s\n", msg,
			n >= e && !strcmp(msg + n - e, explicit)
			? " with -b PARENT" : "");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	prefix(buf);
	fprintf(stderr, "%s: %s\n", buf, strerror(err < 0 ? -err : err));
}

void usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vdi: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; try 'vdi %s --help'\n", cmd);
}

bool one_file_operand(const char *cmd, int nargs)
{
	if (nargs == 1)
		return true;
	usage_error(cmd, nargs < 1 ? "expected FILE"
				   : "too many arguments: expected one FILE");
	return false;
}

void option_error(const char *cmd, int c, char **argv)
{
	char shortopt[3] = { '-', (char)optopt, '\0' };
	const char *opt = optopt > 0 && optopt < 128 ? shortopt
						       : argv[optind - 1];

	if (c == ':')
		usage_error(cmd, "option '%s' needs a value", opt);
	else
		usage_error(cmd, "unknown option '%s'", opt);
}

bool looks_negative(const char *s)
{
	return s[0] == '-' && ((s[1] >= '0' && s[1] <= '9') || s[1] == '.');
}

void negative_size(const char *what, const char *text)
{
	die_msg("invalid %s '%s': a size cannot be negative", what, text);
}

/* Power-of-1024 exponent for a size suffix, or -1. */
static int suffix_shift(char c)
{
	static const char units[] = "BKMGTPE";
	const char *p = strchr(units, c >= 'a' && c <= 'z' ? c - 32 : c);

	return c && p ? (int)(p - units) * 10 : -1;
}

int parse_size(const char *what, const char *text, uint64_t *out)
{
	return parse_size_shown(what, text, text, out);
}

int parse_size_shown(const char *what, const char *text, const char *shown,
		     uint64_t *out)
{
	const char *p = text;
	uint64_t whole = 0, frac = 0, frac_div = 1;
	int shift = 0;

	if (*p == '-') {
		negative_size(what, shown);
		return -1;
	}
	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			goto too_big;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			goto bad;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (frac_div >= 1000000000000ull)
				goto bad; /* more precision than bytes need */
			frac = frac * 10 + (uint64_t)(*p - '0');
			frac_div *= 10;
		}
	}
	if (*p) {
		shift = suffix_shift(*p);
		if (shift < 0 || p[1])
			goto bad;
	}
	if (shift && whole > (UINT64_MAX >> shift))
		goto too_big;
	whole <<= shift;
	if (frac) {
		/* frac / frac_div of one unit must come out as whole bytes. */
		unsigned __int128 f = (unsigned __int128)frac << shift;

		if (f % frac_div) {
			die_msg("%s '%s' is not a whole number of bytes", what,
				shown);
			return -1;
		}
		if (whole > UINT64_MAX - (uint64_t)(f / frac_div))
			goto too_big;
		whole += (uint64_t)(f / frac_div);
	}
	*out = whole;
	return 0;

bad:
	die_msg("invalid %s '%s': give a number of bytes, optionally followed "
		"by K, M, G, T, P or E (powers of 1024), e.g. 10G",
		what, shown);
	return -1;
too_big:
	die_msg("%s '%s' is too large", what, shown);
	return -1;
}

int parse_bool(const char *what, const char *text, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(text, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(text, no[i])) {
			*out = false;
			return 0;
		}
	}
	die_msg("invalid value '%s' for %s: use on or off", text, what);
	return -1;
}

int require_vdi_format(const char *cmd, const char *format)
{
	if (strcmp(format, "vdi") == 0)
		return 0;
	die_msg("%s: only the vdi format is supported, not '%s'", cmd, format);
	return -1;
}

int parse_output(const char *cmd, const char *text, enum output_format *out)
{
	if (!strcmp(text, "human")) {
		*out = OUTPUT_HUMAN;
		return 0;
	}
	if (!strcmp(text, "json")) {
		*out = OUTPUT_JSON;
		return 0;
	}
	die_msg("%s: invalid output format '%s': use --output=human or "
		"--output=json", cmd, text);
	return -1;
}

/* Like qemu-img: the largest binary unit in which the value is below
 * 1000, three significant digits. */
uint64_t data_alignment(const struct vdi_info *in)
{
	uint64_t x = in->offset_data |
		     ((uint64_t)in->block_size + in->block_extra);

	return x & (~x + 1);
}

void print_alignment_hint(const char *path, const struct vdi_info *in)
{
	if (data_alignment(in) >= 4096)
		return;
	printf("Hint: the data area starts at %" PRIu32 ", not on a 4 KiB "
	       "boundary, so guest writes straddle file-system blocks; with "
	       "O_DIRECT, libvdi widens writes into new blocks to whole "
	       "file-system blocks (up to 8 KiB more per write) and writes "
	       "a guest write's parts in blocks written before as two or "
	       "three; 'vdi convert -O vdi %s COPY.vdi' makes an aligned "
	       "copy.\n", in->offset_data, path);
}

void format_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	int i = 0;

	while (i < 6 && (double)bytes >= 1000.0 * ldexp(1.0, 10 * i))
		i++;
	snprintf(buf, len, "%0.3g %s", (double)bytes / ldexp(1.0, 10 * i),
		 units[i]);
}

/* Length of a valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		n = 2;
		cp = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		n = 3;
		cp = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* Text from an image (the description) may hold any bytes: control
 * characters are escaped and bytes that are not UTF-8 become U+FFFD, so
 * the output is always valid JSON. */
void json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n;

		switch (*p) {
		case '"':  fputs("\\\"", f); p++; continue;
		case '\\': fputs("\\\\", f); p++; continue;
		case '\b': fputs("\\b", f); p++; continue;
		case '\f': fputs("\\f", f); p++; continue;
		case '\n': fputs("\\n", f); p++; continue;
		case '\r': fputs("\\r", f); p++; continue;
		case '\t': fputs("\\t", f); p++; continue;
		default: break;
		}
		if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p);
			p++;
			continue;
		}
		n = utf8_len(p);
		if (!n) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
	fputc('"', f);
}

void text_escaped(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\x%02x", *p);
			else
				fputc(*p, f);
		}
	}
}

void timer_start(struct timespec *t0)
{
	clock_gettime(CLOCK_MONOTONIC, t0);
}

double timer_seconds(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}
