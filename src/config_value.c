/*
 * config_value.c: scalar parsing and formatting for the configuration.
 *
 * Durations, sizes and RFC 3339 times are parsed strictly (the whole string,
 * no sign, no fraction except in times, overflow detected) because a config
 * value that is silently read as something else is worse than an error at
 * startup. The formatters produce the shortest text that parses back to the
 * same value, so config_print output round-trips.
 */
#include "config_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "civil.h"
#include "err.h"

static int
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static int
is_lower_ascii(int c)
{
  return c >= 'a' && c <= 'z';
}

static int
to_lower_ascii(int c)
{
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * Reads the decimal digits at *p into *out and advances *p past them.
 * Returns 0, or ERR_PARSE when there is no digit or the value overflows.
 */
static int
read_u64(const char **p, uint64_t *out)
{
  const char *s = *p;
  uint64_t n = 0;

  if(!is_digit(*s))
    return ERR_PARSE;
  for(; is_digit(*s); s++) {
    unsigned d = (unsigned)(*s - '0');

    if(n > (UINT64_MAX - d) / 10)
      return ERR_PARSE;
    n = n * 10 + d;
  }
  *p = s;
  *out = n;
  return 0;
}

int
config_parse_duration(const char *s, uint64_t *ms)
{
  static const struct {
    const char *name;
    uint64_t ms;
  } units[] = {
    /* "ms" before "m" so that the longer unit wins. */
    { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    { "d", 86400000 },
  };
  uint64_t total = 0, last = UINT64_MAX;

  if(!s || !*s)
    return ERR_PARSE;
  while(*s) {
    uint64_t n, mult = 0;
    size_t i;

    if(read_u64(&s, &n))
      return ERR_PARSE;
    for(i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
      size_t ul = strlen(units[i].name);

      if(!strncmp(s, units[i].name, ul) && !is_lower_ascii(s[ul])) {
        mult = units[i].ms;
        s += ul;
        break;
      }
    }
    /* A bare number has no unit to guess, and units must decrease
       ("1h30m", not "30m1h" or "5m5m") so that a typo is not summed. */
    if(!mult || mult >= last)
      return ERR_PARSE;
    last = mult;
    if(n > UINT64_MAX / mult)
      return ERR_PARSE;
    n *= mult;
    if(total > UINT64_MAX - n)
      return ERR_PARSE;
    total += n;
  }
  *ms = total;
  return 0;
}

int
config_parse_size(const char *s, uint64_t *bytes)
{
  static const struct {
    const char *name;
    uint64_t mult;
  } units[] = {
    { "", 1 }, { "b", 1 },
    { "kb", 1000ULL }, { "mb", 1000000ULL }, { "gb", 1000000000ULL },
    { "tb", 1000000000000ULL },
    { "kib", 1ULL << 10 }, { "mib", 1ULL << 20 }, { "gib", 1ULL << 30 },
    { "tib", 1ULL << 40 },
  };
  char unit[4];
  uint64_t n;
  size_t ul, i;

  if(!s || read_u64(&s, &n))
    return ERR_PARSE;
  ul = strlen(s);
  if(ul >= sizeof(unit))
    return ERR_PARSE;
  for(i = 0; i <= ul; i++)
    unit[i] = (char)to_lower_ascii((unsigned char)s[i]);
  for(i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if(!strcmp(unit, units[i].name)) {
      if(n > UINT64_MAX / units[i].mult)
        return ERR_PARSE;
      *bytes = n * units[i].mult;
      return 0;
    }
  }
  return ERR_PARSE;
}

/* Reads exactly n digits at *p as a number. */
static int
fixed_digits(const char **p, int n, unsigned *out)
{
  unsigned v = 0;

  for(int i = 0; i < n; i++) {
    if(!is_digit((*p)[i]))
      return ERR_PARSE;
    v = v * 10 + (unsigned)((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

int
config_parse_time(const char *s, int64_t *unix_seconds)
{
  static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31 };
  unsigned y, mo, d, h, mi, sec, oh = 0, om = 0, dim;
  int64_t t;
  int sign = 0;

  if(!s)
    return ERR_PARSE;
  if(fixed_digits(&s, 4, &y) || *s++ != '-' || fixed_digits(&s, 2, &mo) ||
     *s++ != '-' || fixed_digits(&s, 2, &d))
    return ERR_PARSE;
  /* RFC 3339 section 5.6 allows 't' and, by note, a space. */
  if(*s != 'T' && *s != 't' && *s != ' ')
    return ERR_PARSE;
  s++;
  if(fixed_digits(&s, 2, &h) || *s++ != ':' || fixed_digits(&s, 2, &mi) ||
     *s++ != ':' || fixed_digits(&s, 2, &sec))
    return ERR_PARSE;
  if(*s == '.') {
    s++;
    if(!is_digit(*s))
      return ERR_PARSE;
    while(is_digit(*s))
      s++;
  }
  if(*s == 'Z' || *s == 'z')
    s++;
  else if(*s == '+' || *s == '-') {
    sign = *s++ == '-' ? -1 : 1;
    if(fixed_digits(&s, 2, &oh) || *s++ != ':' || fixed_digits(&s, 2, &om))
      return ERR_PARSE;
  }
  else
    return ERR_PARSE;
  if(*s)
    return ERR_PARSE;
  if(mo < 1 || mo > 12 || d < 1)
    return ERR_PARSE;
  dim = mdays[mo - 1];
  if(mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
    dim = 29;
  /* Second 60 is a leap second; it is counted as the next second. */
  if(d > dim || h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
    return ERR_PARSE;
  t = civil_days_from_date(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  t -= sign * (int64_t)(oh * 3600 + om * 60);
  /* Only times that config_value_format_time can write back. */
  if(t < 0 || t > 253402300799LL)
    return ERR_PARSE;
  *unix_seconds = t;
  return 0;
}

void
config_value_format_duration(uint64_t ms, char *out, size_t cap)
{
  static const struct {
    const char *name;
    uint64_t ms;
  } units[] = {
    { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
  };

  if(ms == 0) {
    snprintf(out, cap, "0s");
    return;
  }
  for(size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if(ms % units[i].ms == 0) {
      snprintf(out, cap, "%llu%s", (unsigned long long)(ms / units[i].ms),
               units[i].name);
      return;
    }
  }
  snprintf(out, cap, "%llums", (unsigned long long)ms);
}

void
config_value_format_size(uint64_t bytes, char *out, size_t cap)
{
  static const char *const units[] = { "TiB", "GiB", "MiB", "KiB" };

  for(int i = 0; i < 4 && bytes; i++) {
    uint64_t m = 1ULL << (10 * (4 - i));

    if(bytes % m == 0) {
      snprintf(out, cap, "%llu%s", (unsigned long long)(bytes / m), units[i]);
      return;
    }
  }
  snprintf(out, cap, "%llu", (unsigned long long)bytes);
}

void
config_value_format_time(int64_t t, char *out, size_t cap)
{
  int64_t days = t / 86400, rem = t % 86400, y;
  unsigned m, d;

  if(rem < 0) {
    rem += 86400;
    days--;
  }
  civil_date_from_days(days, &y, &m, &d);
  snprintf(out, cap, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
           (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60),
           (unsigned)(rem % 60));
}

static int
is_name_start(char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int
is_name_char(char c)
{
  return is_name_start(c) || is_digit(c);
}

int
config_value_expand(const char *s, struct buf *out,
                    struct config_expand *info, char *why, size_t whycap)
{
  size_t len = strlen(s);
  int rc;

  memset(info, 0, sizeof(*info));
  buf_reset(out);
  for(size_t i = 0; i < len;) {
    if(s[i] == '$' && s[i + 1] == '$' && s[i + 2] == '{') {
      rc = buf_append(out, "${", 2);
      if(rc)
        return rc;
      i += 3;
    }
    else if(s[i] == '$' && s[i + 1] == '{') {
      size_t start = i + 2, end = start;
      const char *val;

      while(end < len && is_name_char(s[end]))
        end++;
      if(end >= len || s[end] != '}' || end == start ||
         !is_name_start(s[start]) || end - start > CONFIG_VAR_MAX) {
        snprintf(why, whycap, "invalid ${...} reference (expected ${NAME} "
                 "with NAME made of letters, digits and _; write $${ for a "
                 "literal ${)");
        return ERR_PARSE;
      }
      memcpy(info->var, s + start, end - start);
      info->var[end - start] = '\0';
      info->refs++;
      val = getenv(info->var);
      if(!val || !*val) {
        if(i == 0 && end + 1 == len) {
          info->whole_unset = 1;
          buf_reset(out);
          return 0;
        }
        if(!val) {
          snprintf(why, whycap, "environment variable %s is not set",
                   info->var);
          return ERR_PARSE;
        }
      }
      rc = buf_puts(out, val);
      if(rc)
        return rc;
      i = end + 1;
    }
    else {
      rc = buf_putc(out, s[i]);
      if(rc)
        return rc;
      i++;
    }
  }
  /* An empty result is still an allocated, NUL-terminated string. */
  rc = buf_reserve(out, 0);
  if(rc)
    return rc;
  out->data[out->len] = '\0';
  return 0;
}
