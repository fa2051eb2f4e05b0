/*
 * retry_after.c: the Retry-After family of headers, parsed by hand.
 *
 * The dates are parsed without strptime(3) or timegm(3) so that the result
 * depends neither on the locale nor on the TZ environment, and so that the
 * parser is easy to fuzz: it reads a fixed grammar byte by byte and never
 * allocates.
 */
#include "retry_after.h"

#include <stddef.h>
#include <string.h>

#include "civil.h"
#include "err.h"

static const char *const wkday[7] = {
  "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"
};
static const char *const weekday[7] = {
  "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
  "Sunday"
};
static const char *const months[12] = {
  "Jan", "Feb", "Mar", "Apr", "May", "Jun",
  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* A cursor over the value being parsed: [p, end). */
struct cur {
  const char *p;
  const char *end;
};

static int
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static int
is_ws(char c)
{
  return c == ' ' || c == '\t';
}

/* Consumes the literal s. Returns 1 on a match, 0 (nothing consumed) else. */
static int
eat(struct cur *c, const char *s)
{
  size_t n = strlen(s);

  if((size_t)(c->end - c->p) < n || memcmp(c->p, s, n))
    return 0;
  c->p += n;
  return 1;
}

/* Consumes exactly n digits into *v. Returns 1 on success. */
static int
digits(struct cur *c, int n, int *v)
{
  int x = 0;

  if(c->end - c->p < n)
    return 0;
  for(int i = 0; i < n; i++) {
    if(!is_digit(c->p[i]))
      return 0;
    x = x * 10 + (c->p[i] - '0');
  }
  c->p += n;
  *v = x;
  return 1;
}

/* Consumes one of the names in list (longest first is not needed: the lists
   hold names of one length or names that are not prefixes of each other,
   except that weekday names start with the wkday ones, which the callers
   keep apart). Returns the index or -1. */
static int
name(struct cur *c, const char *const *list, int n)
{
  for(int i = 0; i < n; i++) {
    if(eat(c, list[i]))
      return i;
  }
  return -1;
}

/* Consumes "HH:MM:SS". */
static int
time_of_day(struct cur *c, int *h, int *m, int *s)
{
  return digits(c, 2, h) && eat(c, ":") && digits(c, 2, m) && eat(c, ":") &&
         digits(c, 2, s) && *h <= 23 && *m <= 59 && *s <= 60;
}

static int
is_leap(int y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int mon)
{
  static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
                               31 };

  return mon == 1 && is_leap(y) ? 29 : dim[mon];
}

/* The year of the Unix time t (for the two-digit years of RFC 850). */
static int
year_of(int64_t t)
{
  int64_t days = (t >= 0 ? t : t - 86399) / 86400;
  int y = 1970;

  /* Accurate enough for the 50-year rule: step by whole years. */
  while(days >= (is_leap(y) ? 366 : 365)) {
    days -= is_leap(y) ? 366 : 365;
    y++;
    if(y > 9999)
      break;
  }
  while(days < 0 && y > 0) {
    y--;
    days += is_leap(y) ? 366 : 365;
  }
  return y;
}

/* Parses an HTTP-date in [c->p, c->end) into Unix seconds. */
static int
http_date(struct cur *c, int64_t now, int64_t *out)
{
  int wd, d = 0, mon, y = 0, h, mi, s;

  /* RFC 850 first: its long day names begin with the short ones. */
  wd = name(c, weekday, 7);
  if(wd >= 0) {
    int yy;

    if(!(eat(c, ", ") && digits(c, 2, &d) && eat(c, "-")))
      return ERR_PARSE;
    mon = name(c, months, 12);
    if(mon < 0 || !eat(c, "-") || !digits(c, 2, &yy) || !eat(c, " ") ||
       !time_of_day(c, &h, &mi, &s) || !eat(c, " GMT"))
      return ERR_PARSE;
    /* RFC 9110: a two-digit year more than 50 years in the future is the
       most recent past year with those digits. */
    {
      int cy = year_of(now);

      y = cy - cy % 100 + yy;
      if(y > cy + 50)
        y -= 100;
    }
  }
  else {
    wd = name(c, wkday, 7);
    if(wd < 0)
      return ERR_PARSE;
    if(eat(c, ", ")) {
      /* IMF-fixdate. */
      if(!digits(c, 2, &d) || !eat(c, " "))
        return ERR_PARSE;
      mon = name(c, months, 12);
      if(mon < 0 || !eat(c, " ") || !digits(c, 4, &y) || !eat(c, " ") ||
         !time_of_day(c, &h, &mi, &s) || !eat(c, " GMT"))
        return ERR_PARSE;
    }
    else if(eat(c, " ")) {
      /* asctime: the day is two digits or a space and one digit. */
      mon = name(c, months, 12);
      if(mon < 0 || !eat(c, " "))
        return ERR_PARSE;
      if(eat(c, " ")) {
        if(!digits(c, 1, &d))
          return ERR_PARSE;
      }
      else if(!digits(c, 2, &d))
        return ERR_PARSE;
      if(!eat(c, " ") || !time_of_day(c, &h, &mi, &s) || !eat(c, " ") ||
         !digits(c, 4, &y))
        return ERR_PARSE;
    }
    else
      return ERR_PARSE;
  }
  if(c->p != c->end || d < 1 || d > days_in_month(y, mon))
    return ERR_PARSE;
  *out = civil_days_from_date(y, (unsigned)mon + 1, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
  return 0;
}

/* Trims spaces and tabs around value into a cursor. */
static void
trim(const char *value, struct cur *c)
{
  c->p = value;
  c->end = value + strlen(value);
  while(c->p < c->end && is_ws(*c->p))
    c->p++;
  while(c->end > c->p && is_ws(c->end[-1]))
    c->end--;
}

/* Reads 1+ decimal digits as a count, saturating at limit. */
static int
count(struct cur *c, int64_t limit, int64_t *out)
{
  int64_t v = 0;

  if(c->p >= c->end || !is_digit(*c->p))
    return 0;
  for(; c->p < c->end && is_digit(*c->p); c->p++) {
    v = v * 10 + (*c->p - '0');
    if(v > limit)
      v = limit;
  }
  *out = v;
  return 1;
}

int
retry_after_parse(const char *value, int64_t now, int64_t *out_ms)
{
  struct cur c;
  int64_t v, when;
  int rc;

  if(!value || !out_ms)
    return ERR_INVAL;
  trim(value, &c);
  if(c.p < c.end && is_digit(*c.p)) {
    if(!count(&c, RETRY_AFTER_MAX_MS / 1000, &v) || c.p != c.end)
      return ERR_PARSE;
    *out_ms = v * 1000;
    return 0;
  }
  rc = http_date(&c, now, &when);
  if(rc)
    return rc;
  if(when <= now)
    *out_ms = 0;
  else if(when - now >= RETRY_AFTER_MAX_MS / 1000)
    *out_ms = RETRY_AFTER_MAX_MS;
  else
    *out_ms = (when - now) * 1000;
  return 0;
}

int
retry_after_parse_ms(const char *value, int64_t *out_ms)
{
  struct cur c;
  int64_t v;

  if(!value || !out_ms)
    return ERR_INVAL;
  trim(value, &c);
  if(!count(&c, RETRY_AFTER_MAX_MS, &v))
    return ERR_PARSE;
  if(c.p < c.end && *c.p == '.') {
    c.p++;
    while(c.p < c.end && is_digit(*c.p))
      c.p++;
  }
  if(c.p != c.end)
    return ERR_PARSE;
  *out_ms = v;
  return 0;
}

int
retry_after_pick(const char *retry_after_ms, const char *x_ms_retry_after_ms,
                 const char *retry_after, int64_t now, int64_t *out_ms)
{
  if(!out_ms)
    return ERR_INVAL;
  if(retry_after_ms && !retry_after_parse_ms(retry_after_ms, out_ms))
    return 0;
  if(x_ms_retry_after_ms && !retry_after_parse_ms(x_ms_retry_after_ms, out_ms))
    return 0;
  if(retry_after && !retry_after_parse(retry_after, now, out_ms))
    return 0;
  return ERR_NOTFOUND;
}
