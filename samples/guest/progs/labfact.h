/* labfact.h - report a fact about the sample's guest to the kernel log.
 *
 * Facts go to /dev/kmsg (one record per write, never interleaved) so they end
 * up in the dump's own dmesg, where the sample builder reads them back.
 */
#ifndef LABFACT_H
#define LABFACT_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static inline void labfact(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n, fd;

	n = snprintf(line, sizeof(line), "LABFACT ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fd = open("/dev/kmsg", O_WRONLY);
	if (fd >= 0) {
		(void)!write(fd, line, n);
		close(fd);
	}
	(void)!write(STDOUT_FILENO, line, n);
}

#endif
