/*
 * buf.h: a growable byte buffer with a hard size cap.
 *
 * Every buffer that grows from network or file input is a struct buf with a
 * cap: appending past the cap fails with ERR_TOOBIG and leaves the contents
 * as they were, so a hostile or broken peer cannot make the daemon allocate
 * without bound. The struct is public so that it can be embedded; touch its
 * fields only through these functions, except to read data and len.
 *
 * The data is always NUL-terminated (one byte beyond len is reserved), so a
 * buffer holding text can be handed to C string functions.
 */
#ifndef SS_BUF_H
#define SS_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
  char *data;   /* owned; NULL until the first append */
  size_t len;   /* bytes in use, not counting the terminating NUL */
  size_t cap;   /* bytes allocated */
  size_t max;   /* the most len may ever reach */
};

/* Prepares an empty buffer that may grow to max bytes. Allocates nothing. */
void buf_init(struct buf *b, size_t max);

/* Ensures room for extra more bytes. ERR_TOOBIG past the cap, ERR_NOMEM. */
int buf_reserve(struct buf *b, size_t extra);

/* Appends n bytes copied from p. ERR_TOOBIG or ERR_NOMEM leave b unchanged. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string (without its NUL). */
int buf_puts(struct buf *b, const char *s);

/* Appends one byte. */
int buf_putc(struct buf *b, char c);

/* Appends printf-formatted text. */
int buf_printf(struct buf *b, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Cuts the buffer back to len bytes (len <= b->len). Keeps the allocation. */
void buf_truncate(struct buf *b, size_t len);

/* Empties the buffer, keeping its allocation for reuse. */
void buf_reset(struct buf *b);

/*
 * Hands the contents to the caller and leaves b empty. The caller owns the
 * returned memory and frees it with free(). Returns NULL for an empty buffer
 * that never allocated.
 */
char *buf_detach(struct buf *b, size_t *len);

/* Frees the contents and leaves b empty (same cap). NULL is a no-op. */
void buf_free(struct buf *b);

#endif
