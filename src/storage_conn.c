/*
 * storage_conn.c: parsing of Azure Storage connection strings
 * (storage_conn.h).
 */
#include "storage_conn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"

void
storage_conn_free(struct storage_conn *c)
{
  if(!c)
    return;
  free(c->blob_endpoint);
  free(c->account);
  free(c->account_key);
  free(c->sas);
  memset(c, 0, sizeof(*c));
}

/* True when host (len bytes) is an IP address or localhost: path-style. */
static int
host_is_path_style(const char *host, size_t len)
{
  size_t i;

  if(len == 9 && !strncasecmp(host, "localhost", 9))
    return 1;
  if(len && host[0] == '[')
    return 1;   /* IPv6 literal */
  for(i = 0; i < len; i++)
    if(!isdigit((unsigned char)host[i]) && host[i] != '.')
      return 0;
  return len > 0;
}

char *
storage_conn_account_from_endpoint(const char *endpoint)
{
  const char *p = strstr(endpoint, "://"), *host, *hend, *path;
  size_t hlen;

  if(!p)
    return NULL;
  host = p + 3;
  path = host + strcspn(host, "/?#");
  hend = memchr(host, ':', (size_t)(path - host));
  if(!hend || host[0] == '[')
    hend = path;
  if(host[0] == '[') {
    const char *rb = memchr(host, ']', (size_t)(path - host));

    hend = rb ? rb + 1 : path;
  }
  hlen = (size_t)(hend - host);
  if(host_is_path_style(host, hlen)) {
    size_t n;

    if(*path != '/')
      return NULL;
    path++;
    n = strcspn(path, "/?#");
    return n ? strndup(path, n) : NULL;
  }
  /* ACCOUNT.blob.core.windows.net: the first label. */
  {
    const char *dot = memchr(host, '.', hlen);

    if(!dot || dot == host)
      return NULL;
    return strndup(host, (size_t)(dot - host));
  }
}

/*
 * Whether url ("scheme://authority/...") has a host: an authority with a
 * non-empty host, no user information and no control characters or
 * spaces anywhere. "http://" alone, "http://:10000" or
 * "https://user@host" would send requests somewhere the operator did not
 * mean.
 */
static int
url_has_host(const char *url)
{
  const char *a = strstr(url, "://");
  size_t n;

  for(const char *p = url; *p; p++) {
    if((unsigned char)*p <= 0x20 || *p == 0x7f)
      return 0;
  }
  if(!a)
    return 0;
  a += 3;
  n = strcspn(a, "/?#");
  if(!n || memchr(a, '@', n))
    return 0;
  /* host[:port], or [IPv6][:port] */
  return a[0] == '[' ? n > 2 && a[1] != ']' : a[0] != ':';
}

/* Whether s is made only of the bytes in set, and not empty. */
static int
only_of(const char *s, const char *set)
{
  return *s && strspn(s, set) == strlen(s);
}

/* Copies value (len bytes) into *dst unless the key was seen before. */
static int
set_once(char **dst, const char *key, const char *v, size_t len, char *err,
         size_t errlen)
{
  if(*dst) {
    snprintf(err, errlen, "connection string: %s appears twice", key);
    return ERR_CONFIG;
  }
  *dst = strndup(v, len);
  return *dst ? 0 : ERR_NOMEM;
}

int
storage_conn_parse(const char *s, struct storage_conn *out, char *err,
                   size_t errlen)
{
  char *proto = NULL, *suffix = NULL, *dev = NULL, *blob = NULL;
  char *account = NULL, *key = NULL, *sas = NULL;
  const char *p = s;
  int rc = ERR_CONFIG;
  struct buf ep;

  memset(out, 0, sizeof(*out));
  buf_init(&ep, 4096);
  if(err && errlen)
    err[0] = '\0';
  if(!s || !*s) {
    snprintf(err, errlen, "connection string is empty");
    goto out;
  }
  while(*p) {
    size_t len = strcspn(p, ";"), klen;
    const char *eq = memchr(p, '=', len), *v;
    char kname[40];

    if(len == 0 || strspn(p, " \t") == len) {
      p += len + (p[len] == ';');
      continue;
    }
    if(!eq) {
      snprintf(err, errlen, "connection string: segment %zu has no '='",
               (size_t)(p - s));
      goto out;
    }
    while(*p == ' ' || *p == '\t')
      p++;
    klen = (size_t)(eq - p);
    while(klen && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
      klen--;
    snprintf(kname, sizeof(kname), "%.*s", (int)(klen < 39 ? klen : 39), p);
    v = eq + 1;
    len = strcspn(v, ";");
#define KEY(name) (klen == strlen(name) && !strncasecmp(p, name, klen))
    if(KEY("DefaultEndpointsProtocol"))
      rc = set_once(&proto, "DefaultEndpointsProtocol", v, len, err, errlen);
    else if(KEY("AccountName"))
      rc = set_once(&account, "AccountName", v, len, err, errlen);
    else if(KEY("AccountKey"))
      rc = set_once(&key, "AccountKey", v, len, err, errlen);
    else if(KEY("EndpointSuffix"))
      rc = set_once(&suffix, "EndpointSuffix", v, len, err, errlen);
    else if(KEY("BlobEndpoint"))
      rc = set_once(&blob, "BlobEndpoint", v, len, err, errlen);
    else if(KEY("SharedAccessSignature"))
      rc = set_once(&sas, "SharedAccessSignature", v, len, err, errlen);
    else if(KEY("UseDevelopmentStorage"))
      rc = set_once(&dev, "UseDevelopmentStorage", v, len, err, errlen);
    else if(KEY("QueueEndpoint") || KEY("TableEndpoint") ||
            KEY("FileEndpoint") || KEY("DfsEndpoint") ||
            KEY("DevelopmentStorageProxyUri"))
      rc = 0;   /* other services: not ours */
    else {
      snprintf(err, errlen, "connection string: unknown key '%s'", kname);
      rc = ERR_CONFIG;
    }
#undef KEY
    if(rc)
      goto out;
    rc = ERR_CONFIG;
    p = v + len + (v[len] == ';');
  }

  /* Portal-copied SAS tokens start with '?': strip it (and any more, so
     that the result never starts with one) before deciding whether the
     token is empty. */
  if(sas) {
    size_t q = strspn(sas, "?");

    memmove(sas, sas + q, strlen(sas + q) + 1);
  }
  if(dev) {
    if(strcasecmp(dev, "true")) {
      snprintf(err, errlen, "connection string: UseDevelopmentStorage must "
               "be true");
      goto out;
    }
    if(account || key || sas || suffix) {
      snprintf(err, errlen, "connection string: UseDevelopmentStorage=true "
               "takes no AccountName, AccountKey, SharedAccessSignature or "
               "EndpointSuffix");
      goto out;
    }
    account = strdup(STORAGE_DEV_ACCOUNT);
    key = strdup(STORAGE_DEV_KEY);
    if(!blob)
      blob = strdup(STORAGE_DEV_BLOB_ENDPOINT);
    if(!account || !key || !blob) {
      rc = ERR_NOMEM;
      goto out;
    }
  }
  /* The account and the suffix become part of the host name: a '/', '@'
     or '?' in them would change which host gets the signed requests. */
  if(account && !only_of(account, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")) {
    snprintf(err, errlen, "connection string: AccountName must be letters "
             "and digits");
    goto out;
  }
  if(suffix && *suffix && !only_of(suffix, "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")) {
    snprintf(err, errlen, "connection string: EndpointSuffix must be a host "
             "name");
    goto out;
  }
  if(proto && strcasecmp(proto, "https") && strcasecmp(proto, "http")) {
    snprintf(err, errlen, "connection string: DefaultEndpointsProtocol must "
             "be https or http");
    goto out;
  }
  if(blob) {
    if(strncasecmp(blob, "https://", 8) && strncasecmp(blob, "http://", 7)) {
      snprintf(err, errlen, "connection string: BlobEndpoint must be an "
               "http(s) URL");
      goto out;
    }
    if(!url_has_host(blob)) {
      snprintf(err, errlen, "connection string: BlobEndpoint must name a "
               "host (and no user information)");
      goto out;
    }
    rc = buf_puts(&ep, blob);
  }
  else {
    if(!account) {
      snprintf(err, errlen, "connection string: needs AccountName or "
               "BlobEndpoint");
      goto out;
    }
    rc = buf_printf(&ep, "%s://%s.blob.%s", proto ? proto : "https",
                    account, suffix && *suffix ? suffix : "core.windows.net");
  }
  if(rc)
    goto out;
  rc = ERR_CONFIG;
  while(ep.len && ep.data[ep.len - 1] == '/')
    buf_truncate(&ep, ep.len - 1);
  if(!key && !sas) {
    snprintf(err, errlen, "connection string: needs AccountKey or "
             "SharedAccessSignature");
    goto out;
  }
  if(key && !*key) {
    snprintf(err, errlen, "connection string: AccountKey is empty");
    goto out;
  }
  if(sas && !*sas && !key) {
    snprintf(err, errlen, "connection string: SharedAccessSignature is "
             "empty");
    goto out;
  }
  if(!account)
    account = storage_conn_account_from_endpoint(ep.data);
  if(key && !account) {
    snprintf(err, errlen, "connection string: AccountKey needs AccountName "
             "(it cannot be derived from BlobEndpoint)");
    goto out;
  }
  out->blob_endpoint = buf_detach(&ep, NULL);
  out->account = account;
  out->account_key = key;
  if(sas && *sas) {
    out->sas = strdup(sas);
    if(!out->sas) {
      out->account = out->account_key = NULL;
      storage_conn_free(out);
      rc = ERR_NOMEM;
      goto out;
    }
  }
  account = key = NULL;
  rc = 0;
out:
  free(proto);
  free(suffix);
  free(dev);
  free(blob);
  free(account);
  free(key);
  free(sas);
  buf_free(&ep);
  return rc;
}
