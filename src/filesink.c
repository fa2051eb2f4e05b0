/*
 * filesink.c: the NDJSON file destination of filesink.h.
 */
#include "filesink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "err.h"
#include "fsio.h"

struct filesink {
  int fd;
  pthread_mutex_t lock;
};

int
filesink_open(const char *path, struct filesink **out)
{
  struct filesink *s;

  *out = NULL;
  s = calloc(1, sizeof(*s));
  if(!s)
    return ERR_NOMEM;
  s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if(s->fd < 0) {
    free(s);
    return ERR_IO;
  }
  pthread_mutex_init(&s->lock, NULL);
  *out = s;
  return 0;
}

int
filesink_write(struct filesink *s, const char *json, const size_t *offsets,
               uint64_t count)
{
  off_t start;
  int rc = 0;

  pthread_mutex_lock(&s->lock);
  start = lseek(s->fd, 0, SEEK_END);
  if(start < 0) {
    rc = ERR_IO;
    goto out;
  }
  for(uint64_t i = 0; i < count && !rc; i++) {
    /* Record i ends one byte before the next offset (a ',' or the final
       ']'), which is exactly where its newline goes. */
    size_t len = offsets[i + 1] - offsets[i] - 1;

    rc = fsio_write_all(s->fd, json + offsets[i], len);
    if(!rc)
      rc = fsio_write_all(s->fd, "\n", 1);
  }
  if(!rc && fdatasync(s->fd) < 0)
    rc = ERR_IO;
  if(rc && ftruncate(s->fd, start) < 0) {
    /* The partial body stays; the blob is sent again, so its records may
       appear twice in the file, which at-least-once allows. */
  }
out:
  pthread_mutex_unlock(&s->lock);
  return rc;
}

void
filesink_destroy(struct filesink *s)
{
  if(!s)
    return;
  if(s->fd >= 0)
    close(s->fd);
  pthread_mutex_destroy(&s->lock);
  free(s);
}
