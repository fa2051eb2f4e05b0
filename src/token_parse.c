/*
 * token_parse.c: token endpoint answers into a token and its expiry.
 *
 * The services disagree on types (Entra sends numbers, IMDS sends numeric
 * strings, msal accepts expires_on as an RFC 3339 time too), so every
 * numeric field is read through one lenient reader; what is accepted is
 * still checked for range, because an expiry we believe wrongly either
 * hammers the endpoint or keeps a dead token.
 */
#include "token_parse.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "civil.h"
#include "err.h"
#include "log.h"

/* Copies the printable part of s (at most n bytes) into dst of size cap,
   folding control characters to spaces and never cutting a UTF-8
   character in half, then scrubs registered secrets from the copy. */
static void
copy_text(char *dst, size_t cap, const char *s, size_t n)
{
  size_t o = 0;

  if(!cap)
    return;
  for(size_t i = 0; i < n && s[i] && o + 1 < cap; i++) {
    unsigned char c = (unsigned char)s[i];

    dst[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  /* Step back over a partial multi-byte sequence at the end. */
  if(o + 1 >= cap) {
    size_t k = o;

    while(k > 0 && ((unsigned char)dst[k - 1] & 0xc0) == 0x80)
      k--;
    if(k > 0 && ((unsigned char)dst[k - 1] & 0x80)) {
      unsigned char lead = (unsigned char)dst[k - 1];
      size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;

      if(o - (k - 1) < want)
        o = k - 1;
    }
  }
  dst[o] = '\0';
  log_scrub(dst, cap);
}

static void
set_err(struct token_error *err, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

static void
set_err(struct token_error *err, const char *fmt, ...)
{
  va_list ap;

  if(!err)
    return;
  va_start(ap, fmt);
  vsnprintf(err->text, sizeof(err->text), fmt, ap);
  va_end(ap);
}

/* Reads a non-negative count of seconds given as a JSON number or a
   numeric string ("3599", "3599.5"). Returns 1 and *out, or 0. */
static int
read_seconds(json_t *v, int64_t *out)
{
  double d;

  if(json_is_integer(v)) {
    json_int_t i = json_integer_value(v);

    if(i < 0)
      return 0;
    *out = (int64_t)i;
    return 1;
  }
  if(json_is_real(v)) {
    d = json_real_value(v);
    if(!(d >= 0 && d < 9e15))
      return 0;
    *out = (int64_t)d;
    return 1;
  }
  if(json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    int64_t x = 0;
    size_t i = 0;

    if(n == 0 || n > 24)
      return 0;
    for(; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if(x > (int64_t)9e14)
        return 0;
      x = x * 10 + (s[i] - '0');
    }
    if(i == 0)
      return 0;
    if(i < n && s[i] == '.') {
      for(i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        ;
    }
    if(i != n || x > (int64_t)9e15)
      return 0;
    *out = x;
    return 1;
  }
  return 0;
}

static int
num(const char *s, int n, int *out)
{
  int v = 0;

  for(int i = 0; i < n; i++) {
    if(s[i] < '0' || s[i] > '9')
      return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

/* Parses an RFC 3339 date-time ("2026-11-30T00:07:03Z", fractional
   seconds and a numeric offset allowed) into Unix seconds. */
static int
read_rfc3339(const char *s, size_t n, int64_t *out)
{
  int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
  size_t i = 19;

  if(n < 20 || !num(s, 4, &y) || s[4] != '-' || !num(s + 5, 2, &mo) ||
     s[7] != '-' || !num(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' &&
     s[10] != ' ') || !num(s + 11, 2, &h) || s[13] != ':' ||
     !num(s + 14, 2, &mi) || s[16] != ':' || !num(s + 17, 2, &se))
    return 0;
  if(mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    return 0;
  if(s[i] == '.') {
    for(i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
      ;
  }
  if(i < n && (s[i] == 'Z' || s[i] == 'z'))
    i++;
  else if(i + 6 == n && (s[i] == '+' || s[i] == '-') &&
          num(s + i + 1, 2, &oh) && s[i + 3] == ':' &&
          num(s + i + 4, 2, &om) && oh <= 23 && om <= 59) {
    sign = s[i] == '-' ? -1 : 1;
    i += 6;
  }
  else
    return 0;
  if(i != n)
    return 0;
  *out = civil_days_from_date(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
         sign * (oh * 3600 + om * 60);
  return 1;
}

/* Reads expires_on: epoch seconds (number or numeric string) or RFC 3339. */
static int
read_time(json_t *v, int64_t *out)
{
  if(read_seconds(v, out))
    return 1;
  if(json_is_string(v))
    return read_rfc3339(json_string_value(v), json_string_length(v), out);
  return 0;
}

/* Fills err from an error document. Returns 1 when obj is one. */
static int
error_document(json_t *obj, struct token_error *err)
{
  json_t *e = json_object_get(obj, "error");
  const char *code = NULL, *desc = NULL;

  if(json_is_string(e)) {
    code = json_string_value(e);
    desc = json_string_value(json_object_get(obj, "error_description"));
  }
  else if(json_is_object(e)) {
    code = json_string_value(json_object_get(e, "code"));
    desc = json_string_value(json_object_get(e, "message"));
  }
  else if(!json_object_get(obj, "access_token") &&
          json_is_string(json_object_get(obj, "message"))) {
    /* App Service: {"statusCode":400,"message":"...","correlationId":...} */
    desc = json_string_value(json_object_get(obj, "message"));
  }
  else
    return 0;
  if(err) {
    copy_text(err->code, sizeof(err->code), code ? code : "",
              code ? strlen(code) : 0);
    copy_text(err->text, sizeof(err->text), desc ? desc : "",
              desc ? strlen(desc) : 0);
    if(!err->text[0])
      snprintf(err->text, sizeof(err->text), "%s",
               err->code[0] ? "(no description)" : "token request refused");
  }
  return 1;
}

/* A token travels in an Authorization header: visible ASCII only. */
static int
token_chars_ok(const char *s, size_t n)
{
  for(size_t i = 0; i < n; i++) {
    if((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return 0;
  }
  return 1;
}

int
token_parse(const char *body, size_t len, int64_t now,
            struct token_result *out, struct token_error *err)
{
  json_error_t jerr;
  json_t *root = NULL, *tok, *v;
  int64_t expires_at, secs, refresh_in;
  int rc = ERR_PARSE;

  if(err)
    memset(err, 0, sizeof(*err));
  if(!out || (!body && len))
    return ERR_INVAL;
  memset(out, 0, sizeof(*out));
  root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
  if(!root) {
    /* jansson quotes the input near the error ("near 'eyJ0...'"), which
       could be part of a token: keep only the message before it. */
    char *near = strstr(jerr.text, " near ");

    if(near)
      *near = '\0';
    set_err(err, "token response is not valid JSON: %s", jerr.text);
    if(err) {
      err->line = jerr.line;
      err->column = jerr.column;
    }
    goto out;
  }
  if(!json_is_object(root)) {
    set_err(err, "token response is not a JSON object");
    goto out;
  }
  if(error_document(root, err)) {
    rc = ERR_AUTH;
    goto out;
  }
  tok = json_object_get(root, "access_token");
  if(!json_is_string(tok) || json_string_length(tok) == 0) {
    set_err(err, "token response has no access_token string");
    goto out;
  }
  if(json_string_length(tok) > TOKEN_MAX_LEN) {
    set_err(err, "access_token is longer than %d bytes", TOKEN_MAX_LEN);
    rc = ERR_TOOBIG;
    goto out;
  }
  if(!token_chars_ok(json_string_value(tok), json_string_length(tok))) {
    set_err(err, "access_token holds characters not allowed in a header");
    goto out;
  }
  v = json_object_get(root, "token_type");
  if(v && (!json_is_string(v) ||
           strcasecmp(json_string_value(v), "Bearer"))) {
    set_err(err, "token_type is not Bearer");
    goto out;
  }

  v = json_object_get(root, "expires_in");
  if(v) {
    if(!read_seconds(v, &secs) || secs <= 0 || secs > TOKEN_MAX_LIFETIME) {
      set_err(err, "expires_in is not a number of seconds in (0, %d]",
              TOKEN_MAX_LIFETIME);
      goto out;
    }
    expires_at = now + secs;
  }
  else if((v = json_object_get(root, "expires_on")) != NULL) {
    if(!read_time(v, &expires_at)) {
      set_err(err, "expires_on is neither epoch seconds nor an RFC 3339 "
              "time");
      goto out;
    }
    if(expires_at <= now || expires_at - now > TOKEN_MAX_LIFETIME) {
      set_err(err, "expires_on is %s", expires_at <= now ? "in the past" :
              "more than a year ahead");
      goto out;
    }
  }
  else {
    set_err(err, "token response has neither expires_in nor expires_on");
    goto out;
  }

  out->expires_at = expires_at;
  out->lifetime = expires_at - now;
  v = json_object_get(root, "refresh_in");
  if(v && read_seconds(v, &refresh_in) && refresh_in > 0 &&
     refresh_in < out->lifetime)
    out->refresh_at = now + refresh_in;
  out->access_token = strdup(json_string_value(tok));
  if(!out->access_token) {
    rc = ERR_NOMEM;
    goto out;
  }
  rc = 0;
out:
  if(root) {
    /* The parsed tree holds the token too: wipe it before it is freed. */
    tok = json_object_get(root, "access_token");
    if(json_is_string(tok) && json_string_length(tok))
      memset((char *)json_string_value(tok), 'x', json_string_length(tok));
    json_decref(root);
  }
  return rc;
}

void
token_result_free(struct token_result *r)
{
  if(!r || !r->access_token)
    return;
  memset(r->access_token, 0, strlen(r->access_token));
  free(r->access_token);
  r->access_token = NULL;
}
