/*
 * fsio.h: whole reads and writes on file descriptors.
 *
 * write(2) and pread(2) may transfer less than asked and may be interrupted;
 * every caller that needs all the bytes uses these instead of a loop of its
 * own. They block: call them on the thread pool, except for the download
 * spool (see docs/architecture.md).
 */
#ifndef SS_FSIO_H
#define SS_FSIO_H

#include <stddef.h>
#include <stdint.h>

/* Writes all n bytes at p to fd. Returns 0, or ERR_IO with errno set. */
int fsio_write_all(int fd, const void *p, size_t n);

/* Writes all n bytes at p to fd at offset off. 0 or ERR_IO (errno set). */
int fsio_pwrite_all(int fd, const void *p, size_t n, uint64_t off);

/*
 * Reads exactly n bytes at offset off into p. Returns 0, or ERR_IO (errno
 * set; a file shorter than off + n is an error too).
 */
int fsio_pread_all(int fd, void *p, size_t n, uint64_t off);

#endif
