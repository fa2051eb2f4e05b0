/*
 * source.c: the memory, file and gzip sources of source.h.
 *
 * One struct serves every kind (a tag and the fields each kind needs), so
 * that no code casts between struct types. The cap on delivered bytes is
 * enforced once, in source_read, for every kind.
 */
#include "source.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "err.h"

#define SOURCE_ZIN (64 * 1024) /* compressed bytes read at a time */

enum source_kind { SOURCE_MEMORY, SOURCE_FD, SOURCE_GZIP };

struct source {
  enum source_kind kind;
  struct transform_source ts; /* the transform's view; ud is this source */
  uint64_t max;               /* cap on delivered bytes; 0: none */
  uint64_t pos;               /* bytes delivered since the last rewind */

  /* SOURCE_MEMORY: borrowed bytes. */
  const unsigned char *data;
  size_t len;

  /* SOURCE_FD */
  int fd;
  int own_fd;
  uint64_t off;

  /* SOURCE_GZIP */
  struct source *inner;       /* owned */
  z_stream z;
  int zinit;                  /* inflateInit2 succeeded */
  unsigned char *zin;         /* SOURCE_ZIN bytes, owned */
  int in_eof;                 /* inner reported its end */
  int member_open;            /* inside a gzip member (not at its end) */
};

static ssize_t
source_ts_read(void *ud, void *buf, size_t n)
{
  return source_read(ud, buf, n);
}

static int
source_ts_rewind(void *ud)
{
  return source_rewind(ud);
}

static struct source *
source_alloc(enum source_kind kind)
{
  struct source *s = calloc(1, sizeof(*s));

  if(!s)
    return NULL;
  s->kind = kind;
  s->fd = -1;
  s->ts.read = source_ts_read;
  s->ts.rewind = source_ts_rewind;
  s->ts.ud = s;
  return s;
}

int
source_memory_create(const void *data, size_t len, struct source **out)
{
  struct source *s;

  *out = NULL;
  if(!data && len)
    return ERR_INVAL;
  s = source_alloc(SOURCE_MEMORY);
  if(!s)
    return ERR_NOMEM;
  s->data = data;
  s->len = len;
  *out = s;
  return 0;
}

int
source_fd_create(int fd, int own, struct source **out)
{
  struct source *s;

  *out = NULL;
  if(fd < 0)
    return ERR_INVAL;
  s = source_alloc(SOURCE_FD);
  if(!s) {
    if(own)
      close(fd);
    return ERR_NOMEM;
  }
  s->fd = fd;
  s->own_fd = own;
  *out = s;
  return 0;
}

int
source_gzip_create(struct source *inner, struct source **out)
{
  struct source *s;
  int rc = 0;

  *out = NULL;
  if(!inner)
    return ERR_INVAL;
  s = source_alloc(SOURCE_GZIP);
  if(!s) {
    rc = ERR_NOMEM;
    goto out;
  }
  s->inner = inner;
  inner = NULL;
  s->zin = malloc(SOURCE_ZIN);
  if(!s->zin) {
    rc = ERR_NOMEM;
    goto out;
  }
  /* 16 + MAX_WBITS: a gzip wrapper, not zlib or raw deflate. */
  if(inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
    rc = ERR_NOMEM;
    goto out;
  }
  s->zinit = 1;
  *out = s;
  s = NULL;
out:
  source_destroy(s);
  source_destroy(inner);
  return rc;
}

/* Wraps *s in a gzip source if it starts with 1f 8b. */
static int
source_autodetect(struct source **s, uint64_t max_bytes)
{
  unsigned char magic[2];
  ssize_t n = source_read(*s, magic, sizeof(magic));
  int rc;

  if(n < 0)
    return (int)n;
  if(n == 1) { /* a short read; get the second byte too */
    ssize_t m = source_read(*s, magic + 1, 1);

    if(m < 0)
      return (int)m;
    n += m;
  }
  if((rc = source_rewind(*s)) != 0)
    return rc;
  if(n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    struct source *gz;

    rc = source_gzip_create(*s, &gz);
    *s = NULL; /* stolen, even on failure */
    if(rc)
      return rc;
    *s = gz;
  }
  source_set_max(*s, max_bytes);
  return 0;
}

int
source_open_buffer(const void *data, size_t len, uint64_t max_bytes,
                   struct source **out)
{
  struct source *s = NULL;
  int rc;

  *out = NULL;
  if((rc = source_memory_create(data, len, &s)) != 0)
    return rc;
  if((rc = source_autodetect(&s, max_bytes)) != 0) {
    source_destroy(s);
    return rc;
  }
  *out = s;
  return 0;
}

int
source_open_padded(const void *data, size_t len, uint64_t max_bytes,
                   struct source **out)
{
  int rc = source_open_buffer(data, len, max_bytes, out);

  /* Over the cap, reading stops with ERR_TOOBIG where the cap is crossed,
     as for any source; only a report within it is offered whole. */
  if(!rc && (*out)->kind == SOURCE_MEMORY && len &&
     (!max_bytes || len <= max_bytes)) {
    (*out)->ts.data = data;
    (*out)->ts.len = len;
  }
  return rc;
}

int
source_open_fd(int fd, int own, uint64_t max_bytes, struct source **out)
{
  struct source *s = NULL;
  int rc;

  *out = NULL;
  if((rc = source_fd_create(fd, own, &s)) != 0)
    return rc;
  if((rc = source_autodetect(&s, max_bytes)) != 0) {
    source_destroy(s);
    return rc;
  }
  *out = s;
  return 0;
}

int
source_open_file(const char *path, uint64_t max_bytes, struct source **out)
{
  int fd;

  *out = NULL;
  if(!path)
    return ERR_INVAL;
  do
    fd = open(path, O_RDONLY | O_CLOEXEC);
  while(fd < 0 && errno == EINTR);
  if(fd < 0)
    return errno == ENOENT || errno == ENOTDIR ? ERR_NOTFOUND : ERR_IO;
  return source_open_fd(fd, 1, max_bytes, out);
}

void
source_set_max(struct source *s, uint64_t max_bytes)
{
  s->max = max_bytes;
}

int
source_is_gzip(const struct source *s)
{
  return s && s->kind == SOURCE_GZIP;
}

static ssize_t
fd_read(struct source *s, void *buf, size_t n)
{
  ssize_t r;

  do
    r = pread(s->fd, buf, n, (off_t)s->off);
  while(r < 0 && errno == EINTR);
  if(r < 0)
    return ERR_IO;
  s->off += (uint64_t)r;
  return r;
}

/*
 * Inflates into buf until it is full or the input ends. A member cut short
 * by the end of the inner source is corrupt; after the end of a member,
 * more input must be another gzip member.
 */
static ssize_t
gzip_read(struct source *s, void *buf, size_t n)
{
  z_stream *z = &s->z;
  int zr;

  if(n > UINT_MAX)
    n = UINT_MAX;
  z->next_out = buf;
  z->avail_out = (uInt)n;
  while(z->avail_out > 0) {
    if(z->avail_in == 0 && !s->in_eof) {
      ssize_t r = source_read(s->inner, s->zin, SOURCE_ZIN);

      if(r < 0)
        return r;
      if(r == 0)
        s->in_eof = 1;
      z->next_in = s->zin;
      z->avail_in = (uInt)r;
    }
    if(z->avail_in == 0 && s->in_eof) {
      if(s->member_open)
        return ERR_PARSE; /* truncated */
      break;
    }
    if(!s->member_open) {
      /* The start of a member (the first, or one concatenated after). */
      if(inflateReset(z) != Z_OK)
        return ERR_PARSE;
      s->member_open = 1;
    }
    zr = inflate(z, Z_NO_FLUSH);
    if(zr == Z_STREAM_END)
      s->member_open = 0;
    else if(zr == Z_MEM_ERROR)
      return ERR_NOMEM;
    else if(zr != Z_OK && zr != Z_BUF_ERROR)
      return ERR_PARSE;
  }
  return (ssize_t)(n - z->avail_out);
}

ssize_t
source_read(struct source *s, void *buf, size_t n)
{
  ssize_t r;

  if(n > SSIZE_MAX)
    n = SSIZE_MAX;
  switch(s->kind) {
  case SOURCE_MEMORY:
    if(s->pos >= s->len)
      return 0;
    if(n > s->len - s->pos)
      n = (size_t)(s->len - s->pos);
    memcpy(buf, s->data + s->pos, n);
    r = (ssize_t)n;
    break;
  case SOURCE_FD:
    r = fd_read(s, buf, n);
    break;
  default:
    r = gzip_read(s, buf, n);
    break;
  }
  if(r <= 0)
    return r;
  s->pos += (uint64_t)r;
  if(s->max && s->pos > s->max)
    return ERR_TOOBIG;
  return r;
}

int
source_rewind(struct source *s)
{
  int rc;

  s->pos = 0;
  switch(s->kind) {
  case SOURCE_MEMORY:
    return 0;
  case SOURCE_FD:
    s->off = 0;
    return 0;
  default:
    if((rc = source_rewind(s->inner)) != 0)
      return rc;
    s->z.avail_in = 0;
    s->z.next_in = NULL;
    s->in_eof = 0;
    s->member_open = 0;
    return 0;
  }
}

const struct transform_source *
source_transform(struct source *s)
{
  return &s->ts;
}

void
source_destroy(struct source *s)
{
  if(!s)
    return;
  if(s->zinit)
    inflateEnd(&s->z);
  free(s->zin);
  source_destroy(s->inner);
  if(s->own_fd && s->fd >= 0)
    close(s->fd);
  free(s);
}
