/*
 * jscan.c: the streaming JSON scanner of jscan.h.
 *
 * The input is read through a window of JS_WIN bytes. The byte after the
 * last valid one is always a NUL sentinel, and JS_PAD bytes of slack follow
 * the window, so that the inner loops (whitespace, string bodies, digits)
 * run without a bounds check per byte: they stop at the sentinel like at any
 * other special byte, and only then test whether they reached the end of
 * the window (refill) or a real NUL in the input (an error). The SSE2 loops
 * load 16 bytes at a time and may read up to 15 bytes past the sentinel,
 * which the slack covers.
 *
 * A source that holds the whole input in memory with TRANSFORM_PAD zero
 * bytes after it (transform_source.data) is scanned in place: the "window"
 * is then the input itself, already at its end, and nothing is copied or
 * refilled. Its first zero pad byte is the sentinel.
 *
 * Byte classes come from 256-entry const tables; nothing here is global
 * and mutable, so scanners on different threads never share state.
 */
#include "jscan.h"

#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "err.h"

#define JS_WIN (64 * 1024)
#define JS_PAD 64

_Static_assert(JS_PAD <= TRANSFORM_PAD,
               "an in-place input must have the slack of the window");

struct jscan {
  const struct transform_source *src; /* borrowed */
  const unsigned char *buf;  /* win, or the input itself when direct */
  unsigned char *win;        /* JS_WIN + JS_PAD bytes, owned; NULL if direct */
  int direct;                /* scanning src->data in place */
  const unsigned char *p;    /* the next unread byte */
  const unsigned char *e;    /* the end of the valid bytes; *e == 0 */
  uint64_t base;             /* the input offset of buf[0] */
  int eof;                   /* the source reported its end */
  int validate;              /* check every byte (the first pass) */
  int spaced;                /* vskip met whitespace (or the end) */
  const char *msg;           /* the last error's static text, or NULL */
  uint64_t msgoff;           /* and its input offset */
};

/* Byte classes for dispatching on the first byte of a value. */
enum { C_BAD = 0, C_OBJ, C_ARR, C_STR, C_NUM, C_LIT };

static const unsigned char cls_tab[256] = {
  ['{'] = C_OBJ, ['['] = C_ARR, ['"'] = C_STR, ['-'] = C_NUM,
  ['0'] = C_NUM, ['1'] = C_NUM, ['2'] = C_NUM, ['3'] = C_NUM,
  ['4'] = C_NUM, ['5'] = C_NUM, ['6'] = C_NUM, ['7'] = C_NUM,
  ['8'] = C_NUM, ['9'] = C_NUM, ['t'] = C_LIT, ['f'] = C_LIT,
  ['n'] = C_LIT,
};

/* Insignificant whitespace (RFC 8259 section 2). */
static const unsigned char ws_tab[256] = {
  [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

static const unsigned char digit_tab[256] = {
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
  ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
};

/*
 * Bytes that may continue a number or literal when not validating: the
 * fast skip consumes a scalar as the run of these bytes.
 */
static const unsigned char scalar_tab[256] = {
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
  ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['-'] = 1, ['+'] = 1,
  ['.'] = 1, ['e'] = 1, ['E'] = 1, ['a'] = 1, ['l'] = 1, ['r'] = 1,
  ['s'] = 1, ['t'] = 1, ['u'] = 1, ['f'] = 1, ['n'] = 1,
};

/* Hex digit values plus one; 0 for anything else. */
static const unsigned char hex_tab[256] = {
  ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6,
  ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12,
  ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12,
  ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

#ifndef __SSE2__
/*
 * String bytes that end a run of plain bytes: the quote, the backslash,
 * control characters (and the sentinel) and, when validating, every
 * non-ASCII byte (it starts a UTF-8 sequence that must be checked).
 */
static const unsigned char strv_tab[256] = {
  [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};
static const unsigned char strn_tab[256] = {
  [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};
#endif

/*
 * The first byte at or after p that is '"', '\\', below 0x20 or above 0x7f.
 * Terminates at the sentinel at the latest.
 */
static inline const unsigned char *
find_v(const unsigned char *p)
{
#ifdef __SSE2__
  const __m128i q = _mm_set1_epi8('"');
  const __m128i bs = _mm_set1_epi8('\\');
  const __m128i sp = _mm_set1_epi8(0x20);

  for(;;) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* A signed compare: bytes >= 0x80 are negative, so below 0x20 too. */
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q),
                                          _mm_cmpeq_epi8(v, bs)),
                             _mm_cmplt_epi8(v, sp));
    unsigned mask = (unsigned)_mm_movemask_epi8(m);

    if(mask)
      return p + __builtin_ctz(mask);
    p += 16;
  }
#else
  while(!strv_tab[*p])
    p++;
  return p;
#endif
}

/* The first byte at or after p that is '"', '\\' or below 0x20. */
static inline const unsigned char *
find_n(const unsigned char *p)
{
#ifdef __SSE2__
  const __m128i q = _mm_set1_epi8('"');
  const __m128i bs = _mm_set1_epi8('\\');
  const __m128i c1f = _mm_set1_epi8(0x1f);

  for(;;) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, c1f), v);
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q),
                                          _mm_cmpeq_epi8(v, bs)), ctl);
    unsigned mask = (unsigned)_mm_movemask_epi8(m);

    if(mask)
      return p + __builtin_ctz(mask);
    p += 16;
  }
#else
  while(!strn_tab[*p])
    p++;
  return p;
#endif
}

/*
 * 64-byte blocks, for the passes that need not validate: a block's quotes,
 * backslashes, brackets and whitespace as bit masks (bit i: byte i), from
 * which the bytes inside strings are found without looking at each byte
 * (the technique of simdjson's first stage, on SSE2).
 */
struct blk {
  uint64_t q;     /* '"' */
  uint64_t bs;    /* '\\' */
  uint64_t open;  /* '[' or '{' */
  uint64_t close; /* ']' or '}' */
  uint64_t ws;    /* bytes <= ' ': whitespace, outside strings of valid JSON */
};

static inline void
blk_masks(const unsigned char *p, struct blk *b)
{
#ifdef __SSE2__
  const __m128i q = _mm_set1_epi8('"');
  const __m128i bs = _mm_set1_epi8('\\');
  const __m128i ob = _mm_set1_epi8('{');
  const __m128i cb = _mm_set1_epi8('}');
  const __m128i x20 = _mm_set1_epi8(0x20);

  b->q = b->bs = b->open = b->close = b->ws = 0;
  for(int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
    __m128i v20 = _mm_or_si128(v, x20);
    int sh = 16 * i;

    b->q |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, q)) << sh;
    b->bs |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, bs))
             << sh;
    b->open |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v20, ob))
               << sh;
    b->close |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v20, cb))
                << sh;
    b->ws |= (uint64_t)(unsigned)_mm_movemask_epi8(
               _mm_cmpeq_epi8(_mm_min_epu8(v, x20), v)) << sh;
  }
#else
  b->q = b->bs = b->open = b->close = b->ws = 0;
  for(int i = 0; i < 64; i++) {
    uint64_t bit = (uint64_t)1 << i;
    unsigned c = p[i];

    if(c == '"')
      b->q |= bit;
    else if(c == '\\')
      b->bs |= bit;
    else if((c | 0x20) == '{')
      b->open |= bit;
    else if((c | 0x20) == '}')
      b->close |= bit;
    else if(c <= ' ')
      b->ws |= bit;
  }
#endif
}

/*
 * The characters escaped by a backslash (simdjson's find_escaped): odd
 * runs of backslashes escape the byte after them. *carry is 1 when the
 * block's last byte escapes the next block's first.
 */
static inline uint64_t
blk_escaped(uint64_t bs, uint64_t *carry)
{
  const uint64_t even = UINT64_C(0x5555555555555555);
  uint64_t follows, odd_starts, seq, invert;

  bs &= ~*carry;
  follows = bs << 1 | *carry;
  odd_starts = bs & ~even & ~follows;
  seq = odd_starts + bs;
  *carry = seq < bs; /* the addition overflowed */
  invert = seq << 1;
  return (even ^ invert) & follows;
}

/* Bit i of the result is the parity of bits 0..i of x. */
static inline uint64_t
prefix_xor(uint64_t x)
{
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

static inline unsigned
popcount64(uint64_t x)
{
  /* No POPCNT in the x86-64 baseline; this is a dozen instructions. */
  x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
  x = (x & UINT64_C(0x3333333333333333)) +
      ((x >> 2) & UINT64_C(0x3333333333333333));
  x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
  return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

static inline uint64_t
js_off(const struct jscan *s, const unsigned char *at)
{
  return s->base + (uint64_t)(at - s->buf);
}

static int
js_fail_at(struct jscan *s, const char *msg, const unsigned char *at)
{
  s->msg = msg;
  s->msgoff = js_off(s, at);
  return ERR_PARSE;
}

static int
js_fail_end(struct jscan *s)
{
  return js_fail_at(s, "unexpected end of input", s->e);
}

/*
 * Keeps the bytes from keep (inside the window) on, moves them to the start
 * of the window and reads until at least need bytes are available or the
 * input ends. need must not exceed JS_WIN. Returns the bytes now available
 * from s->p (where keep moved to), or a negative code from the source.
 */
static ssize_t
js_fill(struct jscan *s, const unsigned char *keep, size_t need)
{
  size_t have = (size_t)(s->e - keep);

  if(s->direct) {
    /* The whole input is there already: nothing moves, nothing more. */
    s->p = keep;
    return (ssize_t)have;
  }
  if(keep != s->buf) {
    memmove(s->win, keep, have);
    s->base += (uint64_t)(keep - s->buf);
  }
  s->p = s->buf;
  while(have < need && !s->eof) {
    ssize_t n = s->src->read(s->src->ud, s->win + have, JS_WIN - have);

    if(n < 0) {
      s->e = s->buf + have;
      s->win[have] = 0;
      s->msg = n == ERR_PARSE ? "corrupt compressed input"
               : n == ERR_TOOBIG ? "input larger than the size limit"
               : "read error";
      s->msgoff = js_off(s, s->e);
      return n;
    }
    if((size_t)n > JS_WIN - have) {
      /* A source that returns more than asked for is broken. */
      s->e = s->buf + have;
      s->win[have] = 0;
      s->msg = "read error";
      s->msgoff = js_off(s, s->e);
      return ERR_IO;
    }
    if(n == 0)
      s->eof = 1;
    have += (size_t)n;
  }
  s->e = s->buf + have;
  s->win[have] = 0;
  return (ssize_t)have;
}

int
jscan_create(const struct transform_source *src, struct jscan **out)
{
  struct jscan *s;

  *out = NULL;
  if(!src || !src->read || !src->rewind)
    return ERR_INVAL;
  s = calloc(1, sizeof(*s));
  if(!s)
    return ERR_NOMEM;
  s->src = src;
  if(src->data) {
    s->direct = 1;
    s->buf = src->data;
    s->p = s->buf;
    s->e = s->buf + src->len;
    s->eof = 1;
    *out = s;
    return 0;
  }
  /* Zeroed so that SIMD loads past the sentinel read defined bytes. */
  s->win = calloc(1, JS_WIN + JS_PAD);
  if(!s->win) {
    free(s);
    return ERR_NOMEM;
  }
  s->p = s->e = s->buf = s->win;
  *out = s;
  return 0;
}

void
jscan_destroy(struct jscan *s)
{
  if(!s)
    return;
  free(s->win);
  free(s);
}

int
jscan_rewind(struct jscan *s)
{
  int rc;

  s->msg = NULL;
  s->msgoff = 0;
  if(s->direct) {
    s->p = s->buf;
    return 0;
  }
  rc = s->src->rewind(s->src->ud);
  s->base = 0;
  s->p = s->e = s->buf;
  s->win[0] = 0;
  s->eof = 0;
  if(rc < 0) {
    s->msg = "read error";
    return rc;
  }
  return 0;
}

void
jscan_set_validate(struct jscan *s, int on)
{
  s->validate = on != 0;
}

uint64_t
jscan_offset(const struct jscan *s)
{
  return js_off(s, s->p);
}

const char *
jscan_error(const struct jscan *s, uint64_t *offset)
{
  if(offset)
    *offset = s->msgoff;
  return s->msg;
}

int
jscan_fail(struct jscan *s, const char *msg, uint64_t offset)
{
  s->msg = msg;
  s->msgoff = offset;
  return ERR_PARSE;
}

static int
js_peek_slow(struct jscan *s)
{
  const unsigned char *p = s->p;

  for(;;) {
    ssize_t n;

    while(ws_tab[*p])
      p++;
    if(p != s->e) {
      s->p = p;
      return *p;
    }
    n = js_fill(s, p, 1);
    if(n < 0)
      return (int)n;
    if(n == 0)
      return JSCAN_END;
    p = s->p;
  }
}

/* Every structural byte is above ' '; whitespace and the sentinel are not. */
static inline int
js_peek(struct jscan *s)
{
  unsigned c = *s->p;

  if(c > ' ')
    return (int)c;
  return js_peek_slow(s);
}

int
jscan_peek(struct jscan *s)
{
  return js_peek(s);
}

void
jscan_next(struct jscan *s)
{
  if(s->p < s->e)
    s->p++;
}

int
jscan_skip_bom(struct jscan *s)
{
  ssize_t n = js_fill(s, s->p, 3);

  if(n < 0)
    return (int)n;
  if(n >= 3 && s->p[0] == 0xef && s->p[1] == 0xbb && s->p[2] == 0xbf)
    s->p += 3;
  return 0;
}

/* For an unexpected byte c (from js_peek): the right error. */
static int
js_unexpected(struct jscan *s, int c, const char *msg)
{
  if(c < 0)
    return c;
  if(c == JSCAN_END)
    return js_fail_end(s);
  return js_fail_at(s, msg, s->p);
}

/*
 * Checks the UTF-8 sequence whose lead byte (>= 0x80) is at p. Returns its
 * length, 0 if it is invalid (a stray continuation byte, an overlong form,
 * a surrogate, a code point above U+10FFFF), or -1 if it is cut by e.
 */
static int
utf8_check(const unsigned char *p, const unsigned char *e)
{
  unsigned c = p[0], lo = 0x80, hi = 0xbf;
  int n;

  if(c < 0xc2)
    return 0;
  if(c < 0xe0)
    n = 2;
  else if(c < 0xf0) {
    n = 3;
    if(c == 0xe0)
      lo = 0xa0; /* overlong */
    else if(c == 0xed)
      hi = 0x9f; /* UTF-16 surrogates */
  }
  else if(c < 0xf5) {
    n = 4;
    if(c == 0xf0)
      lo = 0x90; /* overlong */
    else if(c == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  }
  else
    return 0;
  if(p + 1 >= e)
    return -1;
  if(p[1] < lo || p[1] > hi)
    return 0;
  for(int i = 2; i < n; i++) {
    if(p + i >= e)
      return -1;
    if((p[i] & 0xc0) != 0x80)
      return 0;
  }
  return n;
}

/* Reads four hex digits at p. Returns 1, 0 if invalid, -1 if cut by e. */
static int
hex4(const unsigned char *p, const unsigned char *e, unsigned *u)
{
  unsigned v = 0;

  for(int i = 0; i < 4; i++) {
    unsigned h;

    if(p + i >= e)
      return -1;
    h = hex_tab[p[i]];
    if(!h)
      return 0;
    v = v << 4 | (h - 1);
  }
  *u = v;
  return 1;
}

/*
 * Measures (and, when validating, checks) the escape sequence at the
 * backslash q; the caller has made 12 bytes available unless the input
 * ends sooner. A surrogate pair is one unit of 12 bytes. *cp receives the
 * code point it stands for.
 */
static int
esc_unit(struct jscan *s, const unsigned char *q, size_t *n, unsigned *cp)
{
  const unsigned char *e = s->e;
  unsigned u = 0, lo = 0;
  int r;

  if(q + 1 >= e)
    return js_fail_end(s);
  switch(q[1]) {
  case '"': *cp = '"'; *n = 2; return 0;
  case '\\': *cp = '\\'; *n = 2; return 0;
  case '/': *cp = '/'; *n = 2; return 0;
  case 'b': *cp = '\b'; *n = 2; return 0;
  case 'f': *cp = '\f'; *n = 2; return 0;
  case 'n': *cp = '\n'; *n = 2; return 0;
  case 'r': *cp = '\r'; *n = 2; return 0;
  case 't': *cp = '\t'; *n = 2; return 0;
  case 'u': break;
  default:
    if(s->validate)
      return js_fail_at(s, "invalid escape in string", q);
    *cp = q[1];
    *n = 2;
    return 0;
  }
  r = hex4(q + 2, e, &u);
  if(r < 0)
    return js_fail_end(s);
  if(r == 0) {
    if(s->validate)
      return js_fail_at(s, "invalid \\u escape in string", q);
    *cp = '?';
    *n = 2;
    return 0;
  }
  *n = 6;
  *cp = u;
  if(u >= 0xd800 && u <= 0xdbff) {
    /* A high surrogate must be followed by a low one: one 12-byte unit. */
    if(q + 6 >= e || (q[6] == '\\' && q + 7 >= e))
      return js_fail_end(s);
    if(q[6] == '\\' && q[7] == 'u') {
      r = hex4(q + 8, e, &lo);
      if(r < 0)
        return js_fail_end(s);
      if(r > 0 && lo >= 0xdc00 && lo <= 0xdfff) {
        *n = 12;
        *cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        return 0;
      }
    }
    if(s->validate)
      return js_fail_at(s, "lone surrogate in \\u escape", q);
  }
  else if(u >= 0xdc00 && u <= 0xdfff && s->validate)
    return js_fail_at(s, "lone surrogate in \\u escape", q);
  return 0;
}

/* Makes n bytes available at *q (moving the window), unless the input ends. */
static inline int
js_need(struct jscan *s, const unsigned char **q, size_t n)
{
  if((size_t)(s->e - *q) < n && !s->eof) {
    ssize_t r = js_fill(s, *q, n);

    if(r < 0)
      return (int)r;
    *q = s->p;
  }
  return 0;
}

/*
 * Validates the rest of a string body from s->p (just after the opening
 * quote, or at any unit boundary inside it) through the closing quote.
 */
static int
vstr(struct jscan *s)
{
  const unsigned char *p = s->p;
  size_t n;
  unsigned cp;
  int rc;

  for(;;) {
    unsigned c;

    p = find_v(p);
    c = *p;
    if(c == '"') {
      s->p = p + 1;
      return 0;
    }
    if(c == '\\') {
      if((rc = js_need(s, &p, 12)) != 0)
        return rc;
      if((rc = esc_unit(s, p, &n, &cp)) != 0)
        return rc;
      p += n;
      continue;
    }
    if(c >= 0x80) {
      int m;

      if((rc = js_need(s, &p, 4)) != 0)
        return rc;
      m = utf8_check(p, s->e);
      if(m < 0)
        return js_fail_end(s);
      if(m == 0)
        return js_fail_at(s, "invalid UTF-8 in string", p);
      p += m;
      continue;
    }
    if(p == s->e) {
      ssize_t r = js_fill(s, p, 1);

      if(r < 0)
        return (int)r;
      if(r == 0)
        return js_fail_end(s);
      p = s->p;
      continue;
    }
    return js_fail_at(s, "control character in string", p);
  }
}

/* Skips the rest of a string body without checking it. */
static int
sskip(struct jscan *s)
{
  const unsigned char *p = s->p;
  int rc;

  for(;;) {
    p = find_n(p);
    if(*p == '"') {
      s->p = p + 1;
      return 0;
    }
    if(*p == '\\') {
      if((rc = js_need(s, &p, 2)) != 0)
        return rc;
      if(s->e - p < 2)
        return js_fail_end(s);
      p += 2;
      continue;
    }
    if(p == s->e) {
      ssize_t r = js_fill(s, p, 1);

      if(r < 0)
        return (int)r;
      if(r == 0)
        return js_fail_end(s);
      p = s->p;
      continue;
    }
    p++; /* a control byte: not this pass's business */
  }
}

/*
 * Skips the container at s->p (its '[' or '{') 64 bytes at a time, without
 * checking it. If o is not NULL, also appends its compact form (whitespace
 * outside strings removed) to o, but never beyond the length limit: the
 * caller learns that the value is larger than limit - start from o->len
 * reaching limit. o's capacity must allow limit bytes.
 */
static int
bscan(struct jscan *s, struct buf *o, size_t limit)
{
  const unsigned char *p = s->p;
  uint64_t in_carry = 0, esc_carry = 0, depth = 0;

  for(;;) {
    size_t avail = (size_t)(s->e - p), n = 64;
    uint64_t valid = ~(uint64_t)0, esc, in, open, close;
    struct blk b;
    int done = 0;

    if(avail < 64) {
      if(!s->eof) {
        ssize_t r = js_fill(s, p, 64);

        if(r < 0)
          return (int)r;
        p = s->p;
        avail = (size_t)(s->e - p);
      }
      if(avail == 0)
        return js_fail_end(s);
      if(avail < 64) {
        valid = ((uint64_t)1 << avail) - 1;
        n = avail;
      }
    }
    blk_masks(p, &b);
    esc = blk_escaped(b.bs & valid, &esc_carry);
    in = prefix_xor(b.q & valid & ~esc) ^ in_carry;
    in_carry = (uint64_t)((int64_t)in >> 63);
    open = b.open & valid & ~in;
    close = b.close & valid & ~in;
    if(depth > popcount64(close)) {
      /* It cannot end here: only count. */
      depth += popcount64(open);
      depth -= popcount64(close);
    }
    else {
      /* The container may end in this block: walk its brackets. */
      for(uint64_t m = open | close; m; m &= m - 1) {
        unsigned i = (unsigned)__builtin_ctzll(m);

        if(open >> i & 1)
          depth++;
        else if(--depth == 0) {
          n = i + 1;
          done = 1;
          break;
        }
      }
    }
    if(o && o->len < limit) {
      uint64_t keep = n == 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
      size_t pos = 0;

      keep &= ~(b.ws & ~in);
      while(pos < n && o->len < limit) {
        uint64_t rest = keep >> pos, run;

        if(!rest)
          break;
        pos += (size_t)__builtin_ctzll(rest);
        rest = keep >> pos;
        run = ~rest ? (uint64_t)__builtin_ctzll(~rest) : 64 - pos;
        if(pos + run > n)
          run = n - pos;
        if(run > limit - o->len)
          run = limit - o->len;
        memcpy(o->data + o->len, p + pos, (size_t)run);
        o->len += (size_t)run;
        pos += (size_t)run;
      }
    }
    p += n;
    if(done) {
      s->p = p;
      return 0;
    }
    if(n < 64)
      return js_fail_end(s);
  }
}

/*
 * Finds the containers open after the compact JSON text v[0..k) (outside
 * strings) and writes their closers, innermost first, to out. Returns how
 * many, and in *instr whether k is inside a string.
 */
static size_t
open_closers(const char *v, size_t k, char *out, size_t cap, int *instr)
{
  char stk[TRANSFORM_MAX_DEPTH + 2];
  size_t d = 0;
  int in = 0;

  for(size_t i = 0; i < k; i++) {
    char c = v[i];

    if(in) {
      if(c == '\\')
        i++;
      else if(c == '"')
        in = 0;
    }
    else if(c == '"')
      in = 1;
    else if((c == '[' || c == '{') && d < sizeof(stk))
      stk[d++] = c == '[' ? ']' : '}';
    else if((c == ']' || c == '}') && d > 0)
      d--;
  }
  *instr = in;
  for(size_t i = 0; i < d && i < cap; i++)
    out[i] = stk[d - 1 - i];
  return d < cap ? d : cap;
}

/* The length of the string unit (escape or UTF-8 character) at v[i]. */
static size_t
unit_len(const char *v, size_t i, size_t n)
{
  unsigned c = (unsigned char)v[i];

  if(c == '\\') {
    if(i + 1 < n && v[i + 1] == 'u') {
      /*
       * A high surrogate (\uD800-\uDBFF) starts a pair, one 12-byte unit
       * (validated input always has the low half), even when the prefix
       * ends inside it.
       */
      if(i + 3 < n && (v[i + 2] | 0x20) == 'd') {
        char c3 = (char)(v[i + 3] | 0x20);

        if(c3 == '8' || c3 == '9' || c3 == 'a' || c3 == 'b')
          return 12;
      }
      return 6;
    }
    return 2;
  }
  return c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/*
 * Shrinks the compact JSON container whose first n bytes are at v (n >
 * max: it does not fit) to at most max bytes, in place, by the rule of
 * jscan.h. That rule always yields a prefix of the value cut at a legal
 * point, then the closers of what is open there, so this looks for the
 * last legal cut point k with k + closers <= max. Legal points: after a
 * complete element or member value; inside a string value (not a key)
 * after at least one whole character (then a '"' closes it); and, for the
 * top-level container only, right after its opening bracket. The input is
 * trusted to be a prefix of valid compact JSON, but garbage cannot make
 * this read or write out of bounds. Returns the new length.
 */
static size_t
shrink_cut(char *v, size_t n, size_t max, enum jscan_fit *fit)
{
  enum { AT_VALUE, AT_KEY, AFTER_VALUE } st;
  char kind[TRANSFORM_MAX_DEPTH + 2]; /* '[' or '{' per open container */
  char clo[TRANSFORM_MAX_DEPTH + 2];
  size_t d = 0, i = 0, best = 1, nclo;
  int instr;

  if(max < 2 || n == 0 || (v[0] != '[' && v[0] != '{')) {
    *fit = JSCAN_DROPPED;
    return 0;
  }
  kind[d++] = v[i++];
  st = kind[0] == '{' ? AT_KEY : AT_VALUE;
  while(i < n && i <= max) {
    char c = v[i];

    if(st == AFTER_VALUE) {
      if(c == ',') {
        i++;
        st = kind[d - 1] == '{' ? AT_KEY : AT_VALUE;
        continue;
      }
      if(c != ']' && c != '}')
        break;
      i++;
      d--;
    }
    else if(c == ']' || c == '}') { /* closes an empty container */
      i++;
      d--;
    }
    else if(st == AT_KEY) {
      /* A key and its ':': no cut point inside. */
      for(i++; i < n && v[i] != '"'; i += v[i] == '\\' ? 2 : 1)
        ;
      i += 2;
      st = AT_VALUE;
      continue;
    }
    else if(c == '[' || c == '{') {
      if(d >= sizeof(kind))
        break;
      kind[d++] = c;
      i++;
      st = c == '{' ? AT_KEY : AT_VALUE;
      continue; /* an empty nested container is not a cut point */
    }
    else if(c == '"') {
      for(i++; i < n && v[i] != '"';) {
        size_t u = unit_len(v, i, n);

        if(i + u > n)
          goto done; /* the copied prefix ends inside this unit */
        i += u;
        if(i + 1 + d <= max) /* the closing '"' and d closers follow */
          best = i;
      }
      if(i >= n)
        break;
      i++;
    }
    else {
      /* A number or literal: complete only if a delimiter follows. */
      while(i < n && v[i] != ',' && v[i] != ']' && v[i] != '}')
        i++;
      if(i >= n)
        break;
    }
    /* A complete value ends at i, inside d open containers. */
    if(d == 0)
      break;
    if(i + d <= max)
      best = i;
    st = AFTER_VALUE;
  }
done:
  nclo = open_closers(v, best, clo, sizeof(clo), &instr);
  if(instr)
    v[best++] = '"';
  memcpy(v + best, clo, nclo);
  *fit = best == 1 ? JSCAN_EMPTY : JSCAN_SHRUNK;
  return best + nclo;
}

static inline int
str_rest(struct jscan *s)
{
  return s->validate ? vstr(s) : sskip(s);
}

/*
 * The integer conversion of jscan_int, fed one byte of a number (or of a
 * string's decoded text) at a time. It keeps only what exact truncation
 * toward zero needs: the first significant digits, where the decimal point
 * falls, and the exponent.
 */
struct iacc {
  int st;        /* grammar state; -1 once it cannot be an integer */
  int str;       /* the text of a string: sign and digits only */
  int neg, eneg, seen;
  int64_t nint;  /* mantissa digits before the decimal point */
  int64_t lz;    /* mantissa zeros before the first non-zero digit */
  int nsig;      /* significant digits kept in sig */
  unsigned char sig[19];
  int64_t ex;    /* the exponent's magnitude, saturated */
};

static void
iacc_feed(struct iacc *a, unsigned c)
{
  int dig = c - '0' < 10u;

  switch(a->st) {
  case 0:
    if(c == '-' || (c == '+' && a->str)) {
      a->neg = c == '-';
      a->st = 1;
      return;
    }
    /* fall through */
  case 1:
    if(!dig) {
      a->st = -1;
      return;
    }
    a->st = 2;
    break;
  case 2:
    if(dig)
      break;
    if(!a->str && c == '.')
      a->st = 3;
    else if(!a->str && (c | 0x20) == 'e')
      a->st = 4;
    else
      a->st = -1;
    return;
  case 3:
    if(dig)
      break;
    a->st = (c | 0x20) == 'e' ? 4 : -1;
    return;
  case 4:
    if(c == '+' || c == '-') {
      a->eneg = c == '-';
      a->st = 5;
      return;
    }
    /* fall through */
  case 5:
  case 6:
    if(!dig) {
      a->st = -1;
      return;
    }
    a->st = 6;
    if(a->ex < 1000000000000LL)
      a->ex = a->ex * 10 + (c - '0');
    return;
  default:
    return;
  }
  /* A mantissa digit. */
  if(a->st == 2)
    a->nint++;
  if(!a->seen && c == '0')
    a->lz++;
  else {
    a->seen = 1;
    if(a->nsig < (int)sizeof(a->sig))
      a->sig[a->nsig++] = (unsigned char)(c - '0');
  }
}

/* The truncated value, or 0 if there is none (or it is 10^18 or more). */
static int
iacc_result(const struct iacc *a, int64_t *v)
{
  int64_t point, k, x = 0;

  if(a->str ? a->st != 2 : (a->st != 2 && a->st != 3 && a->st != 6))
    return 0;
  *v = 0;
  if(!a->seen)
    return 1;
  point = a->nint + (a->eneg ? -a->ex : a->ex);
  k = point - a->lz;
  if(k <= 0)
    return 1;
  if(k > 18)
    return 0;
  for(int64_t i = 0; i < k; i++)
    x = x * 10 + (i < a->nsig ? a->sig[i] : 0);
  *v = a->neg ? -x : x;
  return 1;
}

/* Where the bytes of a number go while it is scanned. */
struct numsink {
  struct buf *o;     /* NULL: not copied */
  size_t end;        /* the copy must end by this length of o */
  int cut;           /* keep the longest prefix that fits (text columns) */
  int over;          /* set when the copy did not fit */
  struct iacc *acc;  /* NULL: not converted */
};

static void
sink_put(struct numsink *k, const unsigned char *p, size_t n)
{
  if(k->o && !k->over) {
    size_t room = k->end - k->o->len;

    if(n <= room) {
      memcpy(k->o->data + k->o->len, p, n);
      k->o->len += n;
    }
    else {
      if(k->cut) {
        memcpy(k->o->data + k->o->len, p, room);
        k->o->len += room;
      }
      k->over = 1;
    }
  }
  if(k->acc) {
    for(size_t i = 0; i < n; i++)
      iacc_feed(k->acc, p[i]);
  }
}

/*
 * Scans the number at s->p, validating its grammar when validating, and
 * hands its bytes to k (may be NULL).
 *
 * States: 0 start, 1 after '-', 2 after a leading 0, 3 in the integer
 * digits, 4 after '.', 5 in the fraction, 6 after 'e', 7 after the
 * exponent's sign, 8 in the exponent. 2, 3, 5 and 8 may end the number.
 */
static int
num_scan(struct jscan *s, struct numsink *k)
{
  const unsigned char *p = s->p, *chunk = p;
  int st = 0;

  for(;;) {
    unsigned c = *p;

    if(!s->validate) {
      while(scalar_tab[*p])
        p++;
      c = *p;
      st = 3;
    }
    else {
      switch(st) {
      case 0:
        if(c == '-') {
          st = 1;
          p++;
          continue;
        }
        /* fall through */
      case 1:
        if(c == '0') {
          st = 2;
          p++;
          continue;
        }
        if(digit_tab[c]) {
          st = 3;
          p++;
          continue;
        }
        goto bad;
      case 2:
      case 3:
        if(st == 3)
          while(digit_tab[*p])
            p++;
        c = *p;
        if(c == '.') {
          st = 4;
          p++;
          continue;
        }
        if((c | 0x20) == 'e') {
          st = 6;
          p++;
          continue;
        }
        break;
      case 4:
        if(digit_tab[c]) {
          st = 5;
          p++;
          continue;
        }
        goto bad;
      case 5:
        while(digit_tab[*p])
          p++;
        c = *p;
        if((c | 0x20) == 'e') {
          st = 6;
          p++;
          continue;
        }
        break;
      case 6:
        if(c == '+' || c == '-') {
          st = 7;
          p++;
          continue;
        }
        /* fall through */
      case 7:
        if(digit_tab[c]) {
          st = 8;
          p++;
          continue;
        }
        goto bad;
      default: /* 8 */
        while(digit_tab[*p])
          p++;
        c = *p;
        break;
      }
    }
    /* c (at p) is not part of the number, unless p is the window's end. */
    if(p == s->e && !s->eof) {
      ssize_t r;

      if(k)
        sink_put(k, chunk, (size_t)(p - chunk));
      r = js_fill(s, p, 1);
      if(r < 0)
        return (int)r;
      p = chunk = s->p;
      continue;
    }
    if(k)
      sink_put(k, chunk, (size_t)(p - chunk));
    s->p = p;
    return 0;
  bad:
    if(p == s->e && !s->eof) {
      ssize_t r;

      if(k)
        sink_put(k, chunk, (size_t)(p - chunk));
      r = js_fill(s, p, 1);
      if(r < 0)
        return (int)r;
      p = chunk = s->p;
      continue;
    }
    if(p == s->e)
      return js_fail_end(s);
    return js_fail_at(s, "invalid number", p);
  }
}

/*
 * Scans true, false or null at s->p. *text and *len receive the literal.
 */
static int
lit_scan(struct jscan *s, const char **text, size_t *len)
{
  const unsigned char *p = s->p;
  const char *lit;
  size_t n, avail;
  int rc;

  if((rc = js_need(s, &p, 5)) != 0)
    return rc;
  lit = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
  n = strlen(lit);
  avail = (size_t)(s->e - p);
  if(memcmp(p, lit, avail < n ? avail : n) != 0)
    return js_fail_at(s, "invalid literal", p);
  if(avail < n)
    return js_fail_end(s);
  s->p = p + n;
  *text = lit;
  *len = n;
  return 0;
}

/*
 * Validates one value. Iterative, with a bit stack of open containers (1:
 * object), since this is the first pass's hot loop: about one token every
 * twelve bytes in real reports. The cursor lives in a local (a register)
 * and goes back to s->p only around the slow paths (whitespace, escapes,
 * non-ASCII, numbers other than plain integers, the window's end, errors),
 * which are the general routines and so decide every error.
 */
static int
vskip(struct jscan *s, unsigned depth)
{
  uint64_t stk[TRANSFORM_MAX_DEPTH / 64 + 1] = { 0 };
  const unsigned char *p = s->p, *q;
  unsigned d = 0;
  const char *lit;
  size_t n;
  int c, key, rc;

/* c = the next byte that is not whitespace (or JSCAN_END, or an error). */
#define VS_PEEK()                                                             \
  do {                                                                        \
    c = *p;                                                                   \
    if(c <= ' ') {                                                            \
      s->spaced = 1;                                                          \
      s->p = p;                                                               \
      c = js_peek_slow(s);                                                    \
      p = s->p;                                                               \
    }                                                                         \
  } while(0)

value:
  VS_PEEK();
  if(c < 0 || c == JSCAN_END) {
    s->p = p;
    return js_unexpected(s, c, "");
  }
  switch(cls_tab[c]) {
  case C_OBJ:
    if(depth + d + 1 > TRANSFORM_MAX_DEPTH)
      return js_fail_at(s, "nesting too deep", p);
    stk[d / 64] |= (uint64_t)1 << (d % 64);
    d++;
    p++;
    VS_PEEK();
    if(c == '}') {
      p++;
      d--;
      goto after;
    }
    goto key;
  case C_ARR:
    if(depth + d + 1 > TRANSFORM_MAX_DEPTH)
      return js_fail_at(s, "nesting too deep", p);
    stk[d / 64] &= ~((uint64_t)1 << (d % 64));
    d++;
    p++;
    VS_PEEK();
    if(c == ']') {
      p++;
      d--;
      goto after;
    }
    goto value;
  case C_STR:
    key = 0;
    p++;
    goto string;
  case C_NUM:
    /* Plain integers here; anything else (a fraction, an exponent, a
       bad sign, the window's end) is num_scan's to judge. As there, a
       leading zero ends the number ("01" is 0, then an unexpected 1). */
    q = p + (*p == '-');
    if(*q == '0')
      q++;
    else if(digit_tab[*q]) {
      while(digit_tab[*++q])
        ;
    }
    else
      q = NULL;
    if(q && *q != '.' && (*q | 0x20) != 'e' && (q != s->e || s->eof)) {
      p = q;
      goto after;
    }
    s->p = p;
    if((rc = num_scan(s, NULL)) != 0)
      return rc;
    p = s->p;
    goto after;
  case C_LIT:
    lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
    n = c == 'f' ? 5 : 4;
    if((size_t)(s->e - p) >= n && memcmp(p, lit, n) == 0) {
      p += n;
      goto after;
    }
    s->p = p;
    if((rc = lit_scan(s, &lit, &n)) != 0)
      return rc;
    p = s->p;
    goto after;
  default:
    return js_fail_at(s, "unexpected character", p);
  }
key:
  if(c != '"') {
    s->p = p;
    return js_unexpected(s, c, "expected a string key");
  }
  key = 1;
  p++;
string:
  /* p is just after the opening quote. Plain ASCII up to the closing
     quote is the common case; at the first other byte (a unit boundary)
     vstr takes over. */
  q = find_v(p);
  if(*q == '"')
    p = q + 1;
  else {
    s->p = q;
    if((rc = vstr(s)) != 0)
      return rc;
    p = s->p;
  }
  if(!key)
    goto after;
  VS_PEEK();
  if(c != ':') {
    s->p = p;
    return js_unexpected(s, c, "expected ':'");
  }
  p++;
  goto value;
after:
  if(d == 0) {
    s->p = p;
    return 0;
  }
  VS_PEEK();
  if(stk[(d - 1) / 64] & ((uint64_t)1 << ((d - 1) % 64))) {
    if(c == ',') {
      p++;
      VS_PEEK();
      goto key;
    }
    if(c == '}') {
      p++;
      d--;
      goto after;
    }
    s->p = p;
    return js_unexpected(s, c, "expected ',' or '}'");
  }
  if(c == ',') {
    p++;
    goto value;
  }
  if(c == ']') {
    p++;
    d--;
    goto after;
  }
  s->p = p;
  return js_unexpected(s, c, "expected ',' or ']'");
#undef VS_PEEK
}

/*
 * Skips one value without checking it: strings to their closing quote,
 * containers by counting brackets outside strings (bscan).
 */
static int
fskip(struct jscan *s)
{
  const unsigned char *p;
  int c = js_peek(s);

  if(c < 0 || c == JSCAN_END)
    return js_unexpected(s, c, "");
  if(c == '"') {
    s->p++;
    return sskip(s);
  }
  p = s->p;
  if(c != '{' && c != '[') {
    if(!scalar_tab[c])
      return js_fail_at(s, "unexpected character", p);
    for(;;) {
      while(scalar_tab[*p])
        p++;
      if(p != s->e || s->eof)
        break;
      ssize_t r = js_fill(s, p, 1);

      if(r < 0)
        return (int)r;
      p = s->p;
    }
    s->p = p;
    return 0;
  }
  return bscan(s, NULL, 0);
}

int
jscan_skip(struct jscan *s, unsigned depth)
{
  return s->validate ? vskip(s, depth) : fskip(s);
}

/*
 * Cuts a trailing incomplete UTF-8 sequence off o (not below floor). Only
 * needed when not validating, where string runs are copied without
 * looking at their non-ASCII bytes.
 */
static void
utf8_trim(struct buf *o, size_t floor)
{
  size_t i = o->len, k = 0;
  unsigned lead;

  while(i > floor && k < 3 &&
        ((unsigned char)o->data[i - 1] & 0xc0) == 0x80) {
    i--;
    k++;
  }
  if(i <= floor)
    return;
  lead = (unsigned char)o->data[i - 1];
  if(lead >= 0xc0) {
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

    if(k + 1 < need)
      o->len = i - 1;
  }
}

static int cp_value(struct jscan *s, struct buf *o, size_t end,
                    unsigned depth, enum jscan_fit *fit);

/*
 * Copies the string at s->p (its opening quote) into o, ending by end.
 * Runs of plain bytes are copied with memcpy; escapes and (validated)
 * UTF-8 sequences are copied as whole units, so a cut never splits one.
 */
static int
cp_string(struct jscan *s, struct buf *o, size_t end, enum jscan_fit *fit)
{
  const size_t start = o->len;
  const int v = s->validate;
  const unsigned char *p, *q;
  size_t n, cend;
  unsigned cp;
  int rc;

  s->p++;
  if(end < start + 2) {
    *fit = JSCAN_DROPPED;
    return str_rest(s);
  }
  o->data[o->len++] = '"';
  cend = end - 1;
  p = s->p;
  for(;;) {
    unsigned c;

    q = v ? find_v(p) : find_n(p);
    n = (size_t)(q - p);
    if(n > cend - o->len) {
      n = cend - o->len;
      memcpy(o->data + o->len, p, n);
      o->len += n;
      if(!v)
        utf8_trim(o, start + 1);
      s->p = q;
      goto over;
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
    c = *q;
    if(c == '"') {
      s->p = q + 1;
      o->data[o->len++] = '"';
      *fit = JSCAN_FULL;
      return 0;
    }
    if(c == '\\') {
      if((rc = js_need(s, &q, 12)) != 0)
        return rc;
      if((rc = esc_unit(s, q, &n, &cp)) != 0)
        return rc;
      if(n > cend - o->len) {
        s->p = q;
        goto over;
      }
      memcpy(o->data + o->len, q, n);
      o->len += n;
      p = q + n;
      continue;
    }
    if(c >= 0x80) { /* validating only */
      int m;

      if((rc = js_need(s, &q, 4)) != 0)
        return rc;
      m = utf8_check(q, s->e);
      if(m < 0)
        return js_fail_end(s);
      if(m == 0)
        return js_fail_at(s, "invalid UTF-8 in string", q);
      if((size_t)m > cend - o->len) {
        s->p = q;
        goto over;
      }
      memcpy(o->data + o->len, q, (size_t)m);
      o->len += (size_t)m;
      p = q + m;
      continue;
    }
    if(q == s->e) {
      ssize_t r = js_fill(s, q, 1);

      if(r < 0)
        return (int)r;
      if(r == 0)
        return js_fail_end(s);
      p = s->p;
      continue;
    }
    if(v)
      return js_fail_at(s, "control character in string", q);
    if(o->len >= cend) {
      s->p = q;
      goto over;
    }
    o->data[o->len++] = (char)c;
    p = q + 1;
  }
over:
  /* The rest of the string is scanned (and checked), not copied. */
  if((rc = str_rest(s)) != 0)
    return rc;
  *fit = o->len > start + 1 ? JSCAN_SHRUNK : JSCAN_EMPTY;
  o->data[o->len++] = '"';
  return 0;
}

static int
cp_number(struct jscan *s, struct buf *o, size_t end, enum jscan_fit *fit)
{
  struct numsink k = { o, end, 0, 0, NULL };
  size_t start = o->len;
  int rc = num_scan(s, &k);

  if(rc)
    return rc;
  if(k.over) {
    o->len = start;
    *fit = JSCAN_DROPPED;
  }
  else
    *fit = JSCAN_FULL;
  return 0;
}

static int
cp_array(struct jscan *s, struct buf *o, size_t end, unsigned depth,
         enum jscan_fit *fit)
{
  const size_t start = o->len;
  size_t inner, mark;
  enum jscan_fit f;
  int c, rc, kept = 0, stop = 0, full = 1;

  if(depth + 1 > TRANSFORM_MAX_DEPTH)
    return js_fail_at(s, "nesting too deep", s->p);
  if(end < start + 2) {
    *fit = JSCAN_DROPPED;
    return jscan_skip(s, depth);
  }
  s->p++;
  o->data[o->len++] = '[';
  inner = end - 1; /* room for the ']' */
  c = js_peek(s);
  if(c == ']') {
    s->p++;
    o->data[o->len++] = ']';
    *fit = JSCAN_FULL;
    return 0;
  }
  for(;;) {
    if(stop)
      rc = jscan_skip(s, depth + 1);
    else if(kept && o->len >= inner) {
      stop = 1;
      full = 0;
      rc = jscan_skip(s, depth + 1);
    }
    else {
      mark = o->len;
      if(kept)
        o->data[o->len++] = ',';
      rc = cp_value(s, o, inner, depth + 1, &f);
      if(!rc && f != JSCAN_FULL) {
        /* Elements are positional: nothing after a shrunk one. */
        full = 0;
        stop = 1;
        if(f == JSCAN_SHRUNK)
          kept = 1;
        else
          o->len = mark;
      }
      else if(!rc)
        kept = 1;
    }
    if(rc)
      return rc;
    c = js_peek(s);
    if(c == ',') {
      s->p++;
      continue;
    }
    if(c == ']') {
      s->p++;
      break;
    }
    return js_unexpected(s, c, "expected ',' or ']'");
  }
  o->data[o->len++] = ']';
  *fit = full ? JSCAN_FULL : kept ? JSCAN_SHRUNK : JSCAN_EMPTY;
  return 0;
}

static int
cp_object(struct jscan *s, struct buf *o, size_t end, unsigned depth,
          enum jscan_fit *fit)
{
  const size_t start = o->len;
  size_t inner, mark;
  enum jscan_fit f;
  int c, rc, kept = 0, stop = 0, full = 1;

  if(depth + 1 > TRANSFORM_MAX_DEPTH)
    return js_fail_at(s, "nesting too deep", s->p);
  if(end < start + 2) {
    *fit = JSCAN_DROPPED;
    return jscan_skip(s, depth);
  }
  s->p++;
  o->data[o->len++] = '{';
  inner = end - 1; /* room for the '}' */
  c = js_peek(s);
  if(c == '}') {
    s->p++;
    o->data[o->len++] = '}';
    *fit = JSCAN_FULL;
    return 0;
  }
  for(;;) {
    int ok = !stop;

    if(c != '"')
      return js_unexpected(s, c, "expected a string key");
    mark = o->len;
    if(ok && kept) {
      if(o->len < inner)
        o->data[o->len++] = ',';
      else
        ok = 0;
    }
    if(ok) {
      /* A key is never cut: it is kept whole or the member is dropped. */
      if((rc = cp_string(s, o, inner, &f)) != 0)
        return rc;
      ok = f == JSCAN_FULL;
    }
    else {
      s->p++;
      if((rc = str_rest(s)) != 0)
        return rc;
    }
    c = js_peek(s);
    if(c != ':')
      return js_unexpected(s, c, "expected ':'");
    s->p++;
    if(ok && o->len < inner) {
      o->data[o->len++] = ':';
      if((rc = cp_value(s, o, inner, depth + 1, &f)) != 0)
        return rc;
      if(f == JSCAN_FULL)
        kept = 1;
      else {
        /* Members are kept in order: nothing after a shrunk one. */
        full = 0;
        stop = 1;
        if(f == JSCAN_SHRUNK)
          kept = 1;
        else
          o->len = mark;
      }
    }
    else {
      o->len = mark;
      full = 0;
      stop = 1;
      if((rc = jscan_skip(s, depth + 1)) != 0)
        return rc;
    }
    /* No member fits in fewer bytes than ,"":0 (or "":0 when first). */
    if(inner - o->len < (size_t)(kept ? 5 : 4))
      stop = 1;
    c = js_peek(s);
    if(c == ',') {
      s->p++;
      c = js_peek(s);
      continue;
    }
    if(c == '}') {
      s->p++;
      break;
    }
    return js_unexpected(s, c, "expected ',' or '}'");
  }
  o->data[o->len++] = '}';
  *fit = full ? JSCAN_FULL : kept ? JSCAN_SHRUNK : JSCAN_EMPTY;
  return 0;
}

static int
cp_value(struct jscan *s, struct buf *o, size_t end, unsigned depth,
         enum jscan_fit *fit)
{
  const char *lit;
  size_t n;
  int c = js_peek(s), rc;

  if(c < 0 || c == JSCAN_END)
    return js_unexpected(s, c, "");
  switch(cls_tab[c]) {
  case C_STR:
    return cp_string(s, o, end, fit);
  case C_OBJ:
    return cp_object(s, o, end, depth, fit);
  case C_ARR:
    return cp_array(s, o, end, depth, fit);
  case C_NUM:
    return cp_number(s, o, end, fit);
  case C_LIT:
    if((rc = lit_scan(s, &lit, &n)) != 0)
      return rc;
    if(n <= end - o->len) {
      memcpy(o->data + o->len, lit, n);
      o->len += n;
      *fit = JSCAN_FULL;
    }
    else
      *fit = JSCAN_DROPPED;
    return 0;
  default:
    return js_fail_at(s, "unexpected character", s->p);
  }
}

/*
 * jscan_copy of a container in the validating pass over an in-place input:
 * vskip checks the value and finds its end, which costs much less than
 * checking it while copying it token by token (cp_value): on 100 reports
 * of the bench corpus jscan_copy went from 49.9 M to 20.8 M instructions
 * (callgrind, bench_transform). A value that fits and had no whitespace
 * between its tokens is then its own compact serialization and is copied
 * with one memcpy; one that fits but was spaced is compacted by bscan, as
 * in the passes that need not check. Anything else goes back to the start
 * of the value and through cp_value: a value over max (cp_value decides
 * the shrinking; bscan and shrink_cut cut the same, but cost 138.5 M
 * instead of 133.5 M instructions on those 100 reports, shrink_cut 5.5 M
 * against cp_value's 2.3 M), and an invalid one (cp_value reports the
 * error exactly as it always has). Only in place, where the value's bytes
 * stay where they are after vskip.
 */
static int
copy_checked(struct jscan *s, struct buf *o, size_t max, unsigned depth,
             enum jscan_fit *fit)
{
  const unsigned char *from = s->p;
  const size_t start = o->len;
  size_t n;
  int rc;

  s->spaced = 0;
  rc = vskip(s, depth);
  n = (size_t)(s->p - from);
  if(rc == 0 && n <= max) {
    *fit = JSCAN_FULL;
    if(!s->spaced) {
      memcpy(o->data + start, from, n);
      o->len = start + n;
      return 0;
    }
    s->p = from;
    return bscan(s, o, start + max + 1);
  }
  s->p = from;
  s->msg = NULL;
  return cp_value(s, o, start + max, depth, fit);
}

int
jscan_copy(struct jscan *s, struct buf *o, size_t max, unsigned depth,
           enum jscan_fit *fit)
{
  const char *lit;
  size_t n;
  int c = js_peek(s), rc;

  if(c < 0 || c == JSCAN_END)
    return js_unexpected(s, c, "");
  if(c == 'n') {
    *fit = JSCAN_ABSENT;
    return lit_scan(s, &lit, &n);
  }
  if((rc = buf_reserve(o, max + 1)) != 0)
    return rc;
  if(s->validate && s->direct && (c == '{' || c == '['))
    return copy_checked(s, o, max, depth, fit);
  if(!s->validate && (c == '{' || c == '[')) {
    /*
     * Input already validated: copy the container in blocks, and shrink
     * it afterwards if it turned out larger than max (one byte more than
     * max is copied, so that the cut can see what follows a value).
     */
    size_t start = o->len;

    if((rc = bscan(s, o, start + max + 1)) != 0)
      return rc;
    if(o->len - start <= max)
      *fit = JSCAN_FULL;
    else
      o->len = start + shrink_cut(o->data + start, o->len - start, max, fit);
    return 0;
  }
  return cp_value(s, o, o->len + max, depth, fit);
}

int
jscan_copy_text(struct jscan *s, struct buf *o, size_t max, unsigned depth,
                enum jscan_fit *fit)
{
  struct numsink k = { o, 0, 1, 0, NULL };
  const size_t start = o->len;
  const char *lit;
  size_t n;
  int c = js_peek(s), rc;

  if(c < 0 || c == JSCAN_END)
    return js_unexpected(s, c, "");
  if((rc = buf_reserve(o, max)) != 0)
    return rc;
  switch(cls_tab[c]) {
  case C_STR:
    return cp_string(s, o, start + max, fit);
  case C_NUM:
    if(max < 2) {
      *fit = JSCAN_DROPPED;
      return num_scan(s, NULL);
    }
    o->data[o->len++] = '"';
    k.end = start + max - 1;
    if((rc = num_scan(s, &k)) != 0)
      return rc;
    break;
  case C_LIT:
    if((rc = lit_scan(s, &lit, &n)) != 0)
      return rc;
    if(*lit == 'n') {
      *fit = JSCAN_ABSENT;
      return 0;
    }
    if(max < 2) {
      *fit = JSCAN_DROPPED;
      return 0;
    }
    o->data[o->len++] = '"';
    k.end = start + max - 1;
    sink_put(&k, (const unsigned char *)lit, n);
    break;
  case C_OBJ:
  case C_ARR:
    *fit = JSCAN_ABSENT;
    return jscan_skip(s, depth);
  default:
    return js_fail_at(s, "unexpected character", s->p);
  }
  o->data[o->len++] = '"';
  *fit = !k.over ? JSCAN_FULL
         : o->len > start + 2 ? JSCAN_SHRUNK : JSCAN_EMPTY;
  return 0;
}

/* Appends the UTF-8 form of code point cp to key (up to cap bytes). */
static void
key_put(char *key, size_t cap, size_t *len, const void *src, size_t n)
{
  if(*len < cap)
    memcpy(key + *len, src, n < cap - *len ? n : cap - *len);
  *len += n;
}

/*
 * Reads the string at s->p (its opening quote), decoding escapes, into
 * key[0..cap) (the full decoded length goes to *len) and, if acc is not
 * NULL, feeds the decoded bytes to it.
 */
static int
str_read(struct jscan *s, char *key, size_t cap, size_t *len,
         struct iacc *acc)
{
  const unsigned char *p, *q;
  unsigned char u8[4];
  size_t n, esc;
  unsigned cp;
  int rc;

  *len = 0;
  s->p++;
  p = s->p;
  for(;;) {
    unsigned c;

    q = s->validate ? find_v(p) : find_n(p);
    key_put(key, cap, len, p, (size_t)(q - p));
    if(acc) {
      for(const unsigned char *x = p; x < q; x++)
        iacc_feed(acc, *x);
    }
    c = *q;
    if(c == '"') {
      s->p = q + 1;
      return 0;
    }
    if(c == '\\') {
      if((rc = js_need(s, &q, 12)) != 0)
        return rc;
      if((rc = esc_unit(s, q, &esc, &cp)) != 0)
        return rc;
      if(cp < 0x80) {
        u8[0] = (unsigned char)cp;
        n = 1;
      }
      else if(cp < 0x800) {
        u8[0] = (unsigned char)(0xc0 | cp >> 6);
        u8[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
      }
      else if(cp < 0x10000) {
        u8[0] = (unsigned char)(0xe0 | cp >> 12);
        u8[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u8[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
      }
      else {
        u8[0] = (unsigned char)(0xf0 | cp >> 18);
        u8[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u8[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u8[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
      }
      key_put(key, cap, len, u8, n);
      if(acc) {
        for(size_t i = 0; i < n; i++)
          iacc_feed(acc, u8[i]);
      }
      p = q + esc; /* the escape as written: 2, 6 or 12 bytes */
      continue;
    }
    if(c >= 0x80) { /* validating only */
      int m;

      if((rc = js_need(s, &q, 4)) != 0)
        return rc;
      m = utf8_check(q, s->e);
      if(m < 0)
        return js_fail_end(s);
      if(m == 0)
        return js_fail_at(s, "invalid UTF-8 in string", q);
      key_put(key, cap, len, q, (size_t)m);
      if(acc)
        acc->st = -1;
      p = q + m;
      continue;
    }
    if(q == s->e) {
      ssize_t r = js_fill(s, q, 1);

      if(r < 0)
        return (int)r;
      if(r == 0)
        return js_fail_end(s);
      p = s->p;
      continue;
    }
    if(s->validate)
      return js_fail_at(s, "control character in string", q);
    key_put(key, cap, len, q, 1);
    if(acc)
      acc->st = -1;
    p = q + 1;
  }
}

int
jscan_key(struct jscan *s, char *key, size_t cap, size_t *len)
{
  int c = js_peek(s), rc;

  if(c != '"')
    return js_unexpected(s, c, "expected a string key");
  if((rc = str_read(s, key, cap, len, NULL)) != 0)
    return rc;
  if(*len > cap)
    *len = SIZE_MAX;
  c = js_peek(s);
  if(c != ':')
    return js_unexpected(s, c, "expected ':'");
  s->p++;
  return 0;
}

int
jscan_int(struct jscan *s, unsigned depth, int *has, int64_t *v)
{
  struct iacc a;
  struct numsink k = { NULL, 0, 0, 0, &a };
  size_t len;
  int c = js_peek(s), rc;

  *has = 0;
  *v = 0;
  memset(&a, 0, sizeof(a));
  if(c < 0 || c == JSCAN_END)
    return js_unexpected(s, c, "");
  switch(cls_tab[c]) {
  case C_NUM:
    rc = num_scan(s, &k);
    break;
  case C_STR:
    a.str = 1;
    rc = str_read(s, NULL, 0, &len, &a);
    break;
  default:
    return jscan_skip(s, depth);
  }
  if(rc)
    return rc;
  *has = iacc_result(&a, v);
  return 0;
}

/*
 * Counts the newlines among the n bytes at b, which sit at input offset
 * pos: *lines grows by their number, *last becomes the offset of the last.
 */
static void
lines_in(const unsigned char *b, size_t n, uint64_t pos, uint64_t *lines,
         uint64_t *last)
{
  const unsigned char *q = b, *end = b + n;

  for(; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) {
    (*lines)++;
    *last = pos + (uint64_t)(q - b);
  }
}

void
jscan_locate(struct jscan *s, uint64_t offset, uint64_t *line,
             uint64_t *column)
{
  uint64_t pos = 0, lines = 0, last = 0;

  *line = 0;
  *column = 0;
  if(s->direct) {
    size_t have = (size_t)(s->e - s->buf);

    lines_in(s->buf, offset < have ? (size_t)offset : have, 0, &lines,
             &last);
    s->p = s->buf;
  }
  else {
    int ok = s->src->rewind(s->src->ud) >= 0;

    while(ok && pos < offset) {
      uint64_t want = offset - pos;
      ssize_t n = s->src->read(s->src->ud, s->win,
                               want < JS_WIN ? (size_t)want : JS_WIN);

      if(n <= 0) {
        ok = n == 0;
        break;
      }
      lines_in(s->buf, (size_t)n, pos, &lines, &last);
      pos += (uint64_t)n;
    }
    /* Leave the scanner in a known state; errors from here are moot. */
    s->src->rewind(s->src->ud);
    s->base = 0;
    s->p = s->e = s->buf;
    s->win[0] = 0;
    s->eof = 0;
    if(!ok)
      return;
  }
  *line = lines + 1;
  *column = lines ? offset - last : offset + 1;
}
