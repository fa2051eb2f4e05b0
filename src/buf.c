/*
 * buf.c: the size-capped growable byte buffer of buf.h.
 *
 * Growth doubles the allocation (amortized O(1) appends) but never beyond the
 * cap plus the terminating NUL, so a buffer capped at 64 KiB never holds more
 * than 64 KiB + 1 bytes whatever its input.
 */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void
buf_init(struct buf *b, size_t max)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

int
buf_reserve(struct buf *b, size_t extra)
{
  size_t need, ncap;
  char *p;

  if(extra > b->max || b->len > b->max - extra)
    return ERR_TOOBIG;
  need = b->len + extra + 1;
  if(need <= b->cap)
    return 0;
  ncap = b->cap ? b->cap : 64;
  while(ncap < need)
    ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
  /* Never allocate past the cap (max + 1 for the NUL); max may be SIZE_MAX,
     where max + 1 would wrap. */
  if(b->max < (size_t)-1 && ncap > b->max + 1)
    ncap = b->max + 1;
  p = realloc(b->data, ncap);
  if(!p)
    return ERR_NOMEM;
  b->data = p;
  b->cap = ncap;
  return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
  int rc = buf_reserve(b, n);

  if(rc)
    return rc;
  if(n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
  return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, char c)
{
  return buf_append(b, &c, 1);
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
  va_list ap2;
  int n, rc;

  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if(n < 0)
    return ERR_INVAL;
  rc = buf_reserve(b, (size_t)n);
  if(rc)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

void
buf_truncate(struct buf *b, size_t len)
{
  if(len < b->len) {
    b->len = len;
    b->data[len] = '\0';
  }
}

void
buf_reset(struct buf *b)
{
  buf_truncate(b, 0);
}

char *
buf_detach(struct buf *b, size_t *len)
{
  char *p = b->data;

  if(len)
    *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}

void
buf_free(struct buf *b)
{
  if(!b)
    return;
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}
