/*
 * fuzz_storage_conn.c: Azure Storage connection strings
 * (storage_conn_parse) and the account-from-endpoint rule on arbitrary
 * text.
 *
 * Besides memory errors and leaks, it checks the module's promises:
 *   - a success has an http(s) blob endpoint without a trailing '/', an
 *     account key or a SAS (never a SAS with its leading '?'), and an
 *     account whenever there is a key;
 *   - a failure leaves the struct empty and explains itself in err;
 *   - an error message never repeats a value: values are secrets. A value
 *     is checked when it is at least 8 bytes and holds a byte that no
 *     message of the module contains ('+', '/' or '&', as keys and SAS
 *     tokens do), against the message without the key names it quotes
 *     (keys, unlike values, are named in messages).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "storage_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Copies err without the key name it quotes: the only text of a message
 * taken from the input is an unknown key, as "unknown key '...'" (keys,
 * unlike values, may be named).
 */
static char *
without_keys(const char *err)
{
  char *out = strdup(err), *q;

  if(out && (q = strstr(out, "unknown key '")) != NULL) {
    char *end = strrchr(q, '\'');

    q += strlen("unknown key '");
    if(end && end >= q)
      memmove(q, end, strlen(end) + 1);
  }
  return out;
}

/*
 * Whether err repeats a checkable value of the connection string s, other
 * than as (part of) a key name.
 */
static int
leaks_value(const char *s, const char *err)
{
  char *rest = without_keys(err);
  const char *p = s;
  int leak = 0;

  if(!rest)
    return 0;
  while(*p && !leak) {
    size_t len = strcspn(p, ";");
    const char *eq = memchr(p, '=', len);

    if(eq) {
      size_t vlen = len - (size_t)(eq + 1 - p);
      char *v = strndup(eq + 1, vlen);

      leak = v && vlen >= 8 && strpbrk(v, "+/&") && strstr(rest, v);
      free(v);
    }
    p += len + (p[len] == ';');
  }
  free(rest);
  return leak;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct storage_conn c;
  char err[256], *s, *acct;
  int rc;

  s = malloc(size + 1);
  if(!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';

  memset(err, 'x', sizeof(err));
  rc = storage_conn_parse(s, &c, err, sizeof(err));
  if(memchr(err, '\0', sizeof(err)) == NULL)
    abort();
  if(rc == 0) {
    size_t n;

    if(!c.blob_endpoint || (strncasecmp(c.blob_endpoint, "https://", 8) &&
                            strncasecmp(c.blob_endpoint, "http://", 7)))
      abort();
    n = strlen(c.blob_endpoint);
    if(n && c.blob_endpoint[n - 1] == '/')
      abort();
    if(!c.account_key && !c.sas)
      abort();
    if(c.account_key && (!*c.account_key || !c.account))
      abort();
    if(c.sas && (!*c.sas || c.sas[0] == '?'))
      abort();
    if(c.account && !*c.account)
      abort();
    acct = storage_conn_account_from_endpoint(c.blob_endpoint);
    free(acct);
    storage_conn_free(&c);
    if(c.blob_endpoint || c.account || c.account_key || c.sas)
      abort();
  }
  else {
    if(rc != ERR_CONFIG && rc != ERR_NOMEM)
      abort();
    if(c.blob_endpoint || c.account || c.account_key || c.sas)
      abort();
    if(rc == ERR_CONFIG && !err[0])
      abort();
    if(leaks_value(s, err)) {
      fprintf(stderr, "error message repeats a value: %s\n", err);
      abort();
    }
  }

  /* The endpoint rule on its own, on the raw text. */
  acct = storage_conn_account_from_endpoint(s);
  if(acct && (!*acct || strpbrk(acct, "/?#")))
    abort();
  free(acct);
  free(s);
  return 0;
}
