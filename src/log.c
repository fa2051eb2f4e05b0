/*
 * log.c: the leveled, secret-scrubbing stderr logger of log.h.
 *
 * A line is built in a stack buffer (long messages are cut with a marker, not
 * allocated), scrubbed of registered secrets, and written with a single
 * write(2) so that lines from several threads never interleave.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

#define LOG_LINE_MAX 4096
#define LOG_SECRET_MIN 6
/* Strings scrubbed at most: the configuration's secrets, two tokens per
   credential provider (cred.c unregisters older ones) and their encoded
   forms need a few dozen. A fixed table bounds the memory and the work
   every line's scrub does, however a caller misbehaves. */
#define LOG_SECRET_MAX 256
/* The shortest start of a secret scrubbed at the end of a text (see
   scrub_locked); shorter tails would match ordinary words too often. */
#define LOG_TAIL_MIN 4

static enum log_level log_level = LOG_INFO;
static enum log_format log_format = LOG_FORMAT_TEXT;
static int log_fd = 2;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * A registered secret. Several modules may register the same string (two
 * credential providers, a reload that registers the configuration again),
 * so each entry counts its registrations and disappears with the last
 * log_secret_remove. The list is kept longest first: a secret that holds
 * another (a SAS token and its sig value) is then scrubbed whole instead
 * of leaving its other parts around a "***".
 */
struct log_secret {
  char *text;     /* owned; wiped before it is freed */
  size_t len;
  unsigned long refs;
};

static struct log_secret log_secrets[LOG_SECRET_MAX];
static size_t log_nsecrets;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level level)
{
  log_level = level;
}

enum log_level
log_get_level(void)
{
  return log_level;
}

void
log_set_format(enum log_format format)
{
  log_format = format;
}

void
log_set_fd(int fd)
{
  log_fd = fd;
}

int
log_level_parse(const char *s, enum log_level *out)
{
  for(size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if(!strcmp(s, level_names[i])) {
      *out = (enum log_level)i;
      return 0;
    }
  }
  return ERR_INVAL;
}

/* Overwrites and frees a secret's copy, so that it does not linger in the
   heap, where a core dump would show it. */
static void
secret_wipe(struct log_secret *e)
{
  memset(e->text, 0, e->len);
  free(e->text);
}

/* The index of text in the list, or log_nsecrets. Caller holds log_lock. */
static size_t
secret_find(const char *text)
{
  for(size_t i = 0; i < log_nsecrets; i++) {
    if(!strcmp(log_secrets[i].text, text))
      return i;
  }
  return log_nsecrets;
}

/* Orders secrets longest first (qsort). */
static int
secret_cmp(const void *a, const void *b)
{
  const struct log_secret *x = a, *y = b;

  return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

/*
 * Registers one string (a copy, or one more reference to an equal one),
 * keeping the list longest first. Caller holds log_lock. 0, ERR_TOOBIG
 * (the table is full) or ERR_NOMEM.
 */
static int
secret_add_locked(const char *text)
{
  size_t i = secret_find(text), len = strlen(text);
  char *copy;

  if(i < log_nsecrets) {
    log_secrets[i].refs++;
    return 0;
  }
  if(log_nsecrets == LOG_SECRET_MAX)
    return ERR_TOOBIG;
  copy = strdup(text);
  if(!copy)
    return ERR_NOMEM;
  log_secrets[log_nsecrets++] = (struct log_secret){ copy, len, 1 };
  qsort(log_secrets, log_nsecrets, sizeof(*log_secrets), secret_cmp);
  return 0;
}

/* Drops one reference to text. Caller holds log_lock. 0 or ERR_NOTFOUND. */
static int
secret_remove_locked(const char *text)
{
  size_t i = secret_find(text);

  if(i == log_nsecrets)
    return ERR_NOTFOUND;
  if(--log_secrets[i].refs)
    return 0;
  secret_wipe(&log_secrets[i]);
  memmove(&log_secrets[i], &log_secrets[i + 1],
          (log_nsecrets - i - 1) * sizeof(*log_secrets));
  log_nsecrets--;
  return 0;
}

/*
 * The percent-encoded form of secret (RFC 3986 unreserved characters
 * kept, other bytes as %XX), as a form body or a query string carries it,
 * in a new string owned by the caller; NULL when it equals the secret or
 * out of memory.
 */
static char *
secret_encoded(const char *secret)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(secret), w = 0;
  char *out;

  if(strspn(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-._~") == n)
    return NULL;
  out = malloc(3 * n + 1);
  if(!out)
    return NULL;
  for(const char *p = secret; *p; p++) {
    unsigned char c = (unsigned char)*p;

    if((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
       c == '~')
      out[w++] = (char)c;
    else {
      out[w++] = '%';
      out[w++] = hex[c >> 4];
      out[w++] = hex[c & 15];
    }
  }
  out[w] = '\0';
  return out;
}

int
log_secret_add(const char *secret)
{
  char *enc;
  int rc;

  if(!secret || strlen(secret) < LOG_SECRET_MIN)
    return 0;
  enc = secret_encoded(secret);
  pthread_mutex_lock(&log_lock);
  rc = secret_add_locked(secret);
  if(!rc && enc && (rc = secret_add_locked(enc)) != 0)
    (void)secret_remove_locked(secret);
  pthread_mutex_unlock(&log_lock);
  if(enc) {
    memset(enc, 0, strlen(enc));
    free(enc);
  }
  return rc;
}

int
log_secret_remove(const char *secret)
{
  char *enc;
  int rc;

  if(!secret || strlen(secret) < LOG_SECRET_MIN)
    return 0;
  enc = secret_encoded(secret);
  pthread_mutex_lock(&log_lock);
  rc = secret_remove_locked(secret);
  if(!rc && enc)
    (void)secret_remove_locked(enc);
  pthread_mutex_unlock(&log_lock);
  if(enc) {
    memset(enc, 0, strlen(enc));
    free(enc);
  }
  return rc;
}

size_t
log_secret_count(void)
{
  size_t n;

  pthread_mutex_lock(&log_lock);
  n = log_nsecrets;
  pthread_mutex_unlock(&log_lock);
  return n;
}

void
log_secret_clear(void)
{
  pthread_mutex_lock(&log_lock);
  for(size_t i = 0; i < log_nsecrets; i++)
    secret_wipe(&log_secrets[i]);
  log_nsecrets = 0;
  pthread_mutex_unlock(&log_lock);
}

/*
 * Scrubs s; the caller holds log_lock. Every occurrence of a secret
 * becomes "***". Texts are often cut to fit before they are scrubbed (a
 * long log line, an error message capped at a few hundred bytes), and a
 * cut can fall inside a secret: so a text that ends with the start of a
 * secret (LOG_TAIL_MIN bytes or more) loses that tail too.
 */
static void
scrub_locked(char *s, size_t cap)
{
  size_t len;

  for(size_t i = 0; i < log_nsecrets; i++) {
    const char *sec = log_secrets[i].text;
    size_t sl = log_secrets[i].len;
    char *p = s;

    while((p = strstr(p, sec)) != NULL) {
      size_t tail = strlen(p + sl);

      /* "***" is never longer than a secret (LOG_SECRET_MIN >= 3), so the
         text only shrinks and always fits in cap. */
      memcpy(p, "***", 3);
      memmove(p + 3, p + sl, tail + 1);
      p += 3;
    }
  }
  len = strlen(s);
  for(size_t i = 0; i < log_nsecrets; i++) {
    const char *sec = log_secrets[i].text;
    size_t k = log_secrets[i].len - 1;

    for(k = k < len ? k : len; k >= LOG_TAIL_MIN; k--) {
      if(!memcmp(s + len - k, sec, k)) {
        memcpy(s + len - k, "***", 4); /* k >= 4: fits, NUL included */
        len = len - k + 3;
        break;
      }
    }
  }
  (void)cap;
}

void
log_scrub(char *s, size_t cap)
{
  pthread_mutex_lock(&log_lock);
  scrub_locked(s, cap);
  pthread_mutex_unlock(&log_lock);
}

/* Appends s to out as the body of a JSON string, escaped. */
static size_t
json_escape(char *out, size_t cap, size_t pos, const char *s)
{
  static const char hex[] = "0123456789abcdef";

  for(; *s && pos + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;

    if(c == '"' || c == '\\') {
      out[pos++] = '\\';
      out[pos++] = (char)c;
    }
    else if(c < 0x20) {
      out[pos++] = '\\';
      out[pos++] = 'u';
      out[pos++] = '0';
      out[pos++] = '0';
      out[pos++] = hex[c >> 4];
      out[pos++] = hex[c & 15];
    }
    else
      out[pos++] = (char)c;
  }
  out[pos] = '\0';
  return pos;
}

void
log_vmsg(enum log_level level, const char *module, const char *fmt,
         va_list ap)
{
  char msg[LOG_LINE_MAX], line[LOG_LINE_MAX * 2], ts[64];
  struct timespec now;
  struct tm tm;
  size_t len;
  int n, saved_errno = errno;

  if(level > log_level)
    return;
  n = vsnprintf(msg, sizeof(msg) - 3, fmt, ap);
  if(n < 0)
    snprintf(msg, sizeof(msg), "(unformattable log message)");
  /* Messages are one line: fold newlines so that a peer's multi-line error
     body cannot forge extra log lines. */
  for(char *p = msg; *p; p++) {
    if(*p == '\n' || *p == '\r')
      *p = ' ';
  }

  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000));

  pthread_mutex_lock(&log_lock);
  scrub_locked(msg, sizeof(msg));
  /* The cut is marked after the scrub, which must see where the text
     really ends (inside a secret, maybe). 3 bytes were kept for it. */
  if(n > 0 && (size_t)n >= sizeof(msg) - 3)
    strcat(msg, "...");
  if(log_format == LOG_FORMAT_JSON) {
    len = (size_t)snprintf(line, sizeof(line),
                           "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"",
                           ts, level_names[level]);
    len = json_escape(line, sizeof(line), len, module ? module : "");
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
    len = json_escape(line, sizeof(line) - 3, len, msg);
    memcpy(line + len, "\"}\n", 4);
    len += 3;
  }
  else {
    n = snprintf(line, sizeof(line), "%s %-5s %s: %s\n", ts,
                 level_names[level], module ? module : "-", msg);
    len = n < 0 ? 0 : (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n;
  }
  for(size_t off = 0; off < len;) {
    ssize_t w = write(log_fd, line + off, len - off);

    if(w < 0 && errno == EINTR)
      continue;
    if(w <= 0)
      break;
    off += (size_t)w;
  }
  pthread_mutex_unlock(&log_lock);
  errno = saved_errno;
}

void
log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  log_vmsg(level, module, fmt, ap);
  va_end(ap);
}
