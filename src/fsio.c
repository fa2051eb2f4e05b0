/*
 * fsio.c: the whole reads and writes of fsio.h.
 */
#include "fsio.h"

#include <errno.h>
#include <unistd.h>

#include "err.h"

int
fsio_write_all(int fd, const void *p, size_t n)
{
  const char *c = p;

  while(n) {
    ssize_t w = write(fd, c, n);

    if(w < 0 && errno == EINTR)
      continue;
    if(w <= 0)
      return ERR_IO;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int
fsio_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
  const char *c = p;

  while(n) {
    ssize_t w = pwrite(fd, c, n, (off_t)off);

    if(w < 0 && errno == EINTR)
      continue;
    if(w <= 0)
      return ERR_IO;
    c += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

int
fsio_pread_all(int fd, void *p, size_t n, uint64_t off)
{
  char *c = p;

  while(n) {
    ssize_t r = pread(fd, c, n, (off_t)off);

    if(r < 0 && errno == EINTR)
      continue;
    if(r == 0)
      errno = EIO; /* the file is shorter than it should be */
    if(r <= 0)
      return ERR_IO;
    c += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}
