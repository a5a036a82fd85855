/* What a file holds: a VDI image, one of the image formats libvdi does not
 * read, or (none of those) a raw disk.  The signatures are the ones QEMU's
 * block drivers probe for, so a file qemu-img would call qcow2 is called
 * qcow2 here too; a fixed VHD, which QEMU's probe does not see (its only
 * footer is at the end), is found by that footer. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define PROBE_BYTES 2048    /* as much of the start as is looked at */
#define VDI_SIGNATURE_OFFSET 0x40
#define VHD_FOOTER_SIZE 512

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[1] << 8 | p[0];
}

static bool starts_with(const unsigned char *buf, size_t len,
			const char *magic, size_t mlen)
{
	return len >= mlen && memcmp(buf, magic, mlen) == 0;
}

/* A VMDK descriptor file is text: comment lines ('#') and blank lines,
 * then "version=1" (2 or 3) on a line of its own. */
static bool vmdk_descriptor(const unsigned char *buf, size_t len)
{
	static const char key[] = "version=";
	size_t i = 0;

	while (i < len) {
		if (buf[i] == '#') {
			while (i < len && buf[i] != '\n')
				i++;
			i++;
			continue;
		}
		if (buf[i] == ' ' || buf[i] == '\r' || buf[i] == '\n') {
			while (i < len && buf[i] == ' ')
				i++;
			if (i < len && buf[i] == '\r')
				i++;
			if (i < len && buf[i] != '\n')
				return false;
			i++;
			continue;
		}
		if (len - i < sizeof(key) + 1 ||
		    memcmp(buf + i, key, sizeof(key) - 1) != 0)
			return false;
		i += sizeof(key) - 1;
		if (buf[i] < '1' || buf[i] > '3')
			return false;
		i++;
		return buf[i] == '\n' ||
		       (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n');
	}
	return false;
}

/* The format whose signature is at the start of the file, or NULL. */
static const char *probe_start(const unsigned char *buf, size_t len)
{
	if (len >= VDI_SIGNATURE_OFFSET + 4 &&
	    le32(buf + VDI_SIGNATURE_OFFSET) == 0xBEDA107Fu)
		return "vdi";
	/* qcow and qcow2 share "QFI\xfb"; the version that follows tells
	 * them apart (1: qcow, 2 or 3: qcow2). */
	if (starts_with(buf, len, "QFI\xfb", 4) && len >= 8)
		return be32(buf + 4) == 1 ? "qcow" : "qcow2";
	if (starts_with(buf, len, "QED\0", 4))
		return "qed";
	/* Sparse VMDK extents: "KDMV" (hosted, version 4 headers) and
	 * "COWD" (ESX, version 3). */
	if (starts_with(buf, len, "KDMV", 4) ||
	    starts_with(buf, len, "COWD", 4) || vmdk_descriptor(buf, len))
		return "vmdk";
	/* A dynamic or differencing VHD starts with a copy of its footer. */
	if (starts_with(buf, len, "conectix", 8))
		return "vpc";
	if (starts_with(buf, len, "vhdxfile", 8))
		return "vhdx";
	if (starts_with(buf, len, "LUKS\xba\xbe", 6))
		return "luks";
	return NULL;
}

int probe_format(int fd, const char **format)
{
	unsigned char buf[PROBE_BYTES];
	struct stat st;
	ssize_t n;

	n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	*format = probe_start(buf, (size_t)n);
	if (*format)
		return 0;
	/* A fixed VHD is the raw disk followed by a 512-byte footer. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && st.st_size >= 2 * VHD_FOOTER_SIZE) {
		n = pread(fd, buf, VHD_FOOTER_SIZE,
			  st.st_size - VHD_FOOTER_SIZE);
		if (n < 0)
			return -errno;
		if (starts_with(buf, (size_t)n, "conectix", 8)) {
			*format = "vpc";
			return 0;
		}
	}
	*format = "raw";
	return 0;
}

int probe_path(const char *cmd, const char *path, const char **format)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0) {
		die_msg("%s: cannot open %s: %s", cmd, path, strerror(errno));
		return -1;
	}
	ret = probe_format(fd, format);
	close(fd);
	if (ret < 0) {
		die_msg("%s: cannot read %s: %s", cmd, path, strerror(-ret));
		return -1;
	}
	return 0;
}

bool probe_is_foreign(const char *format)
{
	return strcmp(format, "vdi") && strcmp(format, "raw");
}

const char *probe_describe(const char *format)
{
	static const struct {
		const char *format, *what;
	} names[] = {
		{ "qcow2", "a qcow2 image" },
		{ "qcow", "a qcow (version 1) image" },
		{ "qed", "a QED image" },
		{ "vmdk", "a VMDK image" },
		{ "vpc", "a VHD image (qemu-img's vpc)" },
		{ "vhdx", "a VHDX image" },
		{ "luks", "a LUKS-encrypted image" },
		{ "vdi", "a VDI image" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(format, names[i].format))
			return names[i].what;
	return "a raw disk";
}

void probe_hint(const char *cmd, const char *path)
{
	const char *format;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (probe_format(fd, &format) == 0 && probe_is_foreign(format))
		die_msg("%s: %s is %s; libvdi reads VDI and raw", cmd, path,
			probe_describe(format));
	close(fd);
}
