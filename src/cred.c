/*
 * cred.c: the Entra ID token provider of cred.h.
 *
 * Everything runs on the loop thread and is driven by callers: a token is
 * fetched when somebody asks for one and the cache cannot answer (or can
 * answer but is past its refresh point), so an idle daemon makes no token
 * requests and the provider needs no timer. At most one token request is in
 * flight; callers who need a token meanwhile wait in a list that the
 * request's completion empties.
 *
 * The small local files the methods read (a federated token, an Arc key)
 * are read synchronously on the loop thread: they are a few KiB on a local
 * (usually in-memory) file system, read once per token, and capped.
 */
#include "cred.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "storage_auth.h"
#include "token_parse.h"

#define MOD "cred"
#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
/* A token this close to its expiry is not handed out any more. */
#define EXPIRY_MARGIN_MS 10000

enum cred_kind {
  KIND_SECRET,
  KIND_CERT,
  KIND_WORKLOAD,
  KIND_IMDS,
  KIND_APPSERVICE,
  KIND_ARC
};

struct waiter {
  struct waiter *next;
  cred_token_cb cb;
  void *ud;
};

struct cred {
  uv_loop_t *loop;
  struct http_engine *http;
  enum cred_kind kind;
  char describe[128];
  char *tenant;
  char *client_id;
  char *secret;          /* client_secret */
  char *token_url;       /* Entra: {authority}/{tenant}/oauth2/v2.0/token */
  char *scope;
  struct jwt_key *key;   /* client_certificate */
  enum jwt_alg alg;
  char *fed_file;        /* workload_identity */
  char *mi_url;          /* managed identity: the full GET URL */
  char *identity_header; /* App Service */
  char *arc_key_dir;
  long timeout_ms;

  char *token;           /* the cached access token, or NULL; registered
                            with log_secret_add */
  char *prev_token;      /* the token replaced last, still registered: a
                            request sent with it may still be in flight
                            and echo it; unregistered at the next
                            replacement (see retire_token) */
  char *assertion;       /* the federated token last read, registered;
                            unregistered when the file changes */
  char *arc_key;         /* the Arc key last used, registered; unregistered
                            when a challenge brings a new one */
  int64_t expires_ms;    /* wall clock */
  int64_t refresh_ms;
  int64_t lifetime_ms;

  struct http_request *req;  /* the token request in flight, or NULL */
  int arc_answered;          /* the Arc challenge has been answered */
  struct waiter *waiters;

  struct backoff bo;
  int64_t retry_ms;          /* no new attempt before this (wall clock) */
  int last_rc;
  char last_err[512];
  struct cred_stats stats;
  int destroying;
};

static const char *const method_names[] = {
  "default", "client_secret", "client_certificate", "workload_identity",
  "managed_identity"
};

int
cred_method_parse(const char *s, enum cred_method *out)
{
  for(size_t i = 0; s && i < sizeof(method_names) / sizeof(*method_names);
      i++) {
    if(!strcmp(s, method_names[i])) {
      *out = (enum cred_method)i;
      return 0;
    }
  }
  return ERR_INVAL;
}

const char *
cred_method_name(enum cred_method m)
{
  return (unsigned)m < sizeof(method_names) / sizeof(*method_names) ?
    method_names[m] : "unknown";
}

static int64_t
now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An option: the value when it is set, else NULL. */
static const char *
opt(const char *v)
{
  return v && *v ? v : NULL;
}

/* An option with the environment as fallback. */
static const char *
opt_env(const char *v, const char *env)
{
  return opt(v) ? v : opt(getenv(env));
}

/* Wipes and frees a secret string. */
static void
free_secret(char *s)
{
  if(s) {
    memset(s, 0, strlen(s));
    free(s);
  }
}

/*
 * Makes *slot (owned, registered with log_secret_add, or NULL) hold a copy
 * of value (borrowed), registered in turn. The new value is registered
 * before the old one is unregistered, so there is no moment when neither
 * is scrubbed. Rotating secrets (a federated token the kubelet renews, a
 * new Arc key per challenge) thus keep one registration each instead of
 * one per rotation for the life of the daemon. An equal value changes
 * nothing; out of memory, the old value stays.
 */
static void
rotate_secret(char **slot, const char *value)
{
  char *copy;

  if(*slot && !strcmp(*slot, value))
    return;
  copy = strdup(value);
  if(!copy)
    return;
  (void)log_secret_add(copy);
  if(*slot) {
    (void)log_secret_remove(*slot);
    free_secret(*slot);
  }
  *slot = copy;
}

/* Unregisters and frees the secret in *slot (owned, or NULL). */
static void
drop_secret(char **slot)
{
  if(*slot) {
    (void)log_secret_remove(*slot);
    free_secret(*slot);
    *slot = NULL;
  }
}

/*
 * Takes the cached token out of use (it is replaced or was refused). It
 * stays registered as a secret until the next one is retired, since a
 * request sent with it may still be in flight; the one retired before is
 * unregistered now. So the scrub list holds at most two tokens per
 * provider instead of every token since the start (about 48 a day).
 */
static void
retire_token(struct cred *c)
{
  if(!c->token)
    return;
  drop_secret(&c->prev_token);
  c->prev_token = c->token;
  c->token = NULL;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept), as form
   values and query parameters need. */
static int
put_encoded(struct buf *b, const char *s)
{
  return storage_url_encode(s, 0, b);
}

/* Appends "&key=value" (without the & for the first pair). */
static int
put_param(struct buf *b, const char *key, const char *value)
{
  int rc = 0;

  if(b->len)
    rc = buf_putc(b, '&');
  if(!rc)
    rc = buf_puts(b, key);
  if(!rc)
    rc = buf_putc(b, '=');
  if(!rc)
    rc = put_encoded(b, value);
  return rc;
}

/* A tenant goes into the URL path: allow only what tenant ids and domain
   names use, so that no value can change the path. */
static int
tenant_ok(const char *t)
{
  for(const char *p = t; *p; p++) {
    if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
         (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
      return 0;
  }
  return *t != '\0';
}

/* The IMDS "resource" of a scope: the scope without "/.default". */
static char *
scope_to_resource(const char *scope)
{
  size_t n = strlen(scope), s = strlen("/.default");

  if(n > s && !strcmp(scope + n - s, "/.default"))
    n -= s;
  return strndup(scope, n);
}

/* Reads a small file whole, NUL-terminated, at most max bytes. */
static int
read_small_file(const char *path, size_t max, struct buf *out)
{
  char chunk[4096];
  int fd, rc = 0;
  ssize_t n;

  buf_init(out, max);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if(fd < 0)
    return errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
  for(;;) {
    n = read(fd, chunk, sizeof(chunk));
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0) {
      rc = ERR_IO;
      break;
    }
    if(n == 0)
      break;
    rc = buf_append(out, chunk, (size_t)n);
    if(rc)
      break;
  }
  close(fd);
  memset(chunk, 0, sizeof(chunk));
  if(rc) {
    if(out->data)
      memset(out->data, 0, out->len);
    buf_free(out);
  }
  return rc;
}

/* Trims ASCII whitespace at both ends of b in place. */
static void
trim_buf(struct buf *b)
{
  size_t start = 0, end = b->len;

  while(start < end && strchr(" \t\r\n", b->data[start]))
    start++;
  while(end > start && strchr(" \t\r\n", b->data[end - 1]))
    end--;
  if(start)
    memmove(b->data, b->data + start, end - start);
  buf_truncate(b, end - start);
}

/* Sets the error of the attempt. */
static void
set_last(struct cred *c, int rc, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static void
set_last(struct cred *c, int rc, const char *fmt, ...)
{
  va_list ap;

  c->last_rc = rc;
  va_start(ap, fmt);
  vsnprintf(c->last_err, sizeof(c->last_err), fmt, ap);
  va_end(ap);
  log_scrub(c->last_err, sizeof(c->last_err));
}

/* A hint for a TLS failure: the usual cause is a private CA. */
static const char *
tls_hint(const struct http_response *resp)
{
  switch(resp->curl_code) {
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CONNECT_ERROR:
    return " (TLS verification failed: if the server uses a private CA, "
           "set tls.ca_file to a PEM bundle with that CA)";
  default:
    return "";
  }
}

/* Takes the waiting list and calls every callback with the outcome. The
   list is detached first, so that a callback may ask again. */
static void
notify(struct cred *c, int rc, const char *token, const char *err)
{
  struct waiter *w = c->waiters;

  c->waiters = NULL;
  while(w) {
    struct waiter *next = w->next;

    w->cb(w->ud, rc, rc ? NULL : token, rc ? err : "");
    free(w);
    w = next;
  }
}

static int token_valid(const struct cred *c, int64_t now);

/* Ends a failed attempt: backs off and tells the waiters. */
static void
attempt_failed(struct cred *c)
{
  int64_t now = now_ms();
  uint64_t delay = backoff_next(&c->bo);

  c->stats.failures++;
  c->retry_ms = now + (int64_t)delay;
  if(token_valid(c, now)) {
    log_warn(MOD, "%s: token refresh failed: %s; retrying in %.1f s, the "
             "current token stays in use for %lld s", c->describe,
             c->last_err, (double)delay / 1000.0,
             (long long)((c->expires_ms - now) / 1000));
    notify(c, 0, c->token, "");
  }
  else {
    log_error(MOD, "%s: cannot get a token: %s; retrying in %.1f s",
              c->describe, c->last_err, (double)delay / 1000.0);
    notify(c, c->last_rc, NULL, c->last_err);
  }
}

static int
token_valid(const struct cred *c, int64_t now)
{
  int64_t margin = c->lifetime_ms / 10;

  if(margin > EXPIRY_MARGIN_MS)
    margin = EXPIRY_MARGIN_MS;
  return c->token && now + margin < c->expires_ms;
}

/* Stores a fresh token and tells the waiters. */
static void
attempt_succeeded(struct cred *c, struct token_result *r)
{
  int64_t now = now_ms(), life = r->lifetime * 1000, at;

  retire_token(c);
  c->token = r->access_token;
  r->access_token = NULL;
  (void)log_secret_add(c->token);
  c->lifetime_ms = life;
  c->expires_ms = now + life;
  /* The earlier of 5 minutes before expiry and half the lifetime; half
     the lifetime for tokens too short for the first rule to make sense. */
  at = life - 300000;
  if(at <= 0 || at > life / 2)
    at = life / 2;
  c->refresh_ms = now + at;
  if(r->refresh_at) {
    int64_t hint = (r->refresh_at - now / 1000) * 1000;

    if(hint > 0 && hint < at)
      c->refresh_ms = now + hint;
  }
  backoff_reset(&c->bo);
  c->retry_ms = 0;
  c->stats.expires_at_ms = c->expires_ms;
  log_info(MOD, "%s: got a token for %s, valid for %lld s, refresh in "
           "%lld s", c->describe, c->scope, (long long)(life / 1000),
           (long long)((c->refresh_ms - now) / 1000));
  notify(c, 0, c->token, "");
}

static void on_token_done(struct http_response *resp, void *ud);

/* Builds the form of an Entra token request. */
static int
entra_form(struct cred *c, struct buf *form)
{
  struct buf file;
  char *assertion = NULL;
  int rc;

  rc = put_param(form, "grant_type", "client_credentials");
  if(!rc)
    rc = put_param(form, "client_id", c->client_id);
  if(!rc)
    rc = put_param(form, "scope", c->scope);
  if(rc)
    return rc;
  switch(c->kind) {
  case KIND_SECRET:
    return put_param(form, "client_secret", c->secret);
  case KIND_CERT:
    rc = jwt_client_assertion(c->key, c->alg, c->client_id, c->token_url,
                              now_ms() / 1000, JWT_DEFAULT_LIFETIME,
                              &assertion);
    if(rc) {
      set_last(c, ERR_CONFIG, "cannot sign the client assertion: %s",
               err_str(rc));
      return ERR_CONFIG;
    }
    /* Not registered with log_secret_add: a signed assertion lives 10
       minutes, is never formatted anywhere, and registering one per
       refresh would grow the scrub list for the daemon's whole life. */
    rc = put_param(form, "client_assertion_type", JWT_BEARER);
    if(!rc)
      rc = put_param(form, "client_assertion", assertion);
    free_secret(assertion);
    return rc;
  case KIND_WORKLOAD:
    /* Read anew every time: the kubelet rotates the projected token. */
    rc = read_small_file(c->fed_file, CRED_MAX_ASSERTION_FILE, &file);
    if(!rc) {
      trim_buf(&file);
      if(!file.len)
        rc = ERR_PARSE;
    }
    if(rc) {
      set_last(c, ERR_CONFIG, "cannot read the federated token file %s: %s",
               c->fed_file, rc == ERR_PARSE ? "it is empty" :
               rc == ERR_TOOBIG ? "it is too large" : strerror(errno));
      return ERR_CONFIG;
    }
    rotate_secret(&c->assertion, file.data);
    rc = put_param(form, "client_assertion_type", JWT_BEARER);
    if(!rc)
      rc = put_param(form, "client_assertion", file.data);
    memset(file.data, 0, file.len);
    buf_free(&file);
    return rc;
  default:
    return ERR_INVAL;
  }
}

/* Creates and submits the token request for the current attempt. The Arc
   key (arc_key, borrowed) answers the Arc challenge. */
static int
submit(struct cred *c, const char *arc_key)
{
  struct http_request *r = NULL;
  struct buf form;
  int rc;

  buf_init(&form, 128 * 1024);
  if(c->kind == KIND_SECRET || c->kind == KIND_CERT ||
     c->kind == KIND_WORKLOAD) {
    rc = entra_form(c, &form);
    if(rc)
      goto out;
    rc = http_request_create(c->http, "POST", c->token_url, &r);
    if(!rc)
      rc = http_request_add_header(r, "Content-Type",
                                   "application/x-www-form-urlencoded");
    if(rc)
      goto out;
    {
      size_t len;
      char *body = buf_detach(&form, &len);

      http_request_set_body_owned(r, body, len);
    }
  }
  else {
    rc = http_request_create(c->http, "GET", c->mi_url, &r);
    if(rc)
      goto out;
    if(c->kind == KIND_APPSERVICE)
      rc = http_request_add_header(r, "X-IDENTITY-HEADER",
                                   c->identity_header);
    else
      rc = http_request_add_header(r, "Metadata", "true");
    if(!rc && arc_key) {
      struct buf auth;

      buf_init(&auth, CRED_ARC_MAX_KEY + 16);
      rc = buf_printf(&auth, "Basic %s", arc_key);
      if(!rc)
        rc = http_request_add_header(r, "Authorization", auth.data);
      memset(auth.data, 0, auth.len);
      buf_free(&auth);
    }
    if(rc)
      goto out;
  }
  http_request_set_timeout(r, c->timeout_ms);
  http_request_set_max_response(r, CRED_MAX_RESPONSE);
  rc = http_submit(r, on_token_done, c);
  if(rc)
    goto out;
  c->req = r;
  r = NULL;
  c->stats.requests++;
out:
  if(rc && c->last_rc != rc)
    set_last(c, rc, "cannot send the token request: %s", err_str(rc));
  http_request_destroy(r);
  if(form.data)
    memset(form.data, 0, form.len);
  buf_free(&form);
  return rc;
}

/* Starts an attempt. On failure the attempt is over (backed off, waiters
   told) and the error is returned. */
static int
start_refresh(struct cred *c)
{
  int rc;

  c->arc_answered = 0;
  c->last_rc = 0;
  rc = submit(c, NULL);
  if(rc)
    attempt_failed(c);
  return rc;
}

/*
 * Answers the Arc challenge: WWW-Authenticate: Basic realm=<path>. The path
 * must name a regular file of at most CRED_ARC_MAX_KEY bytes ending in
 * ".key" directly inside the Arc token directory (after resolving symbolic
 * links), as the Arc agent and msal require: anything else could make the
 * daemon send the contents of an arbitrary file to the endpoint.
 */
static int
arc_answer(struct cred *c, const struct http_response *resp)
{
  const char *h = http_response_header(resp, "WWW-Authenticate");
  char path[PATH_MAX], real[PATH_MAX], dir[PATH_MAX], *slash;
  struct stat st;
  struct buf key;
  size_t n;
  int rc;

  if(!h || strncasecmp(h, "Basic", 5)) {
    set_last(c, ERR_AUTH, "Azure Arc answered 401 without a Basic "
             "WWW-Authenticate challenge");
    return ERR_AUTH;
  }
  h += 5;
  while(*h == ' ' || *h == '\t')
    h++;
  if(strncasecmp(h, "realm=", 6)) {
    set_last(c, ERR_AUTH, "Azure Arc's challenge has no realm");
    return ERR_AUTH;
  }
  h += 6;
  n = strlen(h);
  if(n >= 2 && h[0] == '"' && h[n - 1] == '"') {
    h++;
    n -= 2;
  }
  if(n == 0 || n >= sizeof(path)) {
    set_last(c, ERR_AUTH, "Azure Arc's challenge names no usable path");
    return ERR_AUTH;
  }
  memcpy(path, h, n);
  path[n] = '\0';
  if(!realpath(c->arc_key_dir, dir)) {
    set_last(c, ERR_CONFIG, "the Azure Arc token directory %s: %s",
             c->arc_key_dir, strerror(errno));
    return ERR_CONFIG;
  }
  /* The name as given, then the file it resolves to, must both be a .key
     file directly inside the directory. */
  slash = strrchr(path, '/');
  if(n < 5 || strcmp(path + n - 4, ".key") || !slash ||
     !realpath(path, real) || !(slash = strrchr(real, '/')) ||
     (size_t)(slash - real) != strlen(dir) ||
     strncmp(real, dir, strlen(dir)) || strlen(real) < 5 ||
     strcmp(real + strlen(real) - 4, ".key")) {
    set_last(c, ERR_AUTH, "Azure Arc's challenge names %s, which is not a "
             ".key file in %s", path, c->arc_key_dir);
    return ERR_AUTH;
  }
  if(stat(real, &st) || !S_ISREG(st.st_mode) ||
     st.st_size > CRED_ARC_MAX_KEY) {
    set_last(c, ERR_AUTH, "the Azure Arc key file %s is not a regular file "
             "of at most %d bytes", real, CRED_ARC_MAX_KEY);
    return ERR_AUTH;
  }
  rc = read_small_file(real, CRED_ARC_MAX_KEY, &key);
  if(rc) {
    set_last(c, ERR_CONFIG, "cannot read the Azure Arc key file %s: %s (the "
             "daemon's user needs read access, e.g. the himds group)", real,
             rc == ERR_TOOBIG ? "too large" : strerror(errno));
    return ERR_CONFIG;
  }
  trim_buf(&key);
  if(!key.len || strpbrk(key.data, "\r\n")) {
    set_last(c, ERR_AUTH, "the Azure Arc key file %s is empty or malformed",
             real);
    rc = ERR_AUTH;
  }
  else {
    rotate_secret(&c->arc_key, key.data);
    c->arc_answered = 1;
    rc = submit(c, key.data);
  }
  memset(key.data, 0, key.len);
  buf_free(&key);
  return rc;
}

/* The completion of a token request. */
static void
on_token_done(struct http_response *resp, void *ud)
{
  struct cred *c = ud;
  struct token_result tr;
  struct token_error te;
  char where[256];
  int rc;

  c->req = NULL;
  if(c->destroying)
    return;
  http_url_redact(http_request_url(resp->request), where, sizeof(where));
  if(resp->result) {
    set_last(c, resp->result == ERR_ABORTED ? ERR_ABORTED : ERR_NET,
             "token request to %s failed: %s%s", where, resp->error,
             tls_hint(resp));
    goto failed;
  }
  if(c->kind == KIND_ARC && resp->status == 401 && !c->arc_answered) {
    if(arc_answer(c, resp))
      goto failed;
    return;
  }
  rc = token_parse(resp->body.data, resp->body.len, now_ms() / 1000, &tr, &te);
  if(resp->body.data)
    memset(resp->body.data, 0, resp->body.len);
  if(resp->status == 200 && rc == 0) {
    attempt_succeeded(c, &tr);
    return;
  }
  if(rc == 0)
    token_result_free(&tr);
  if(resp->status == 200)
    set_last(c, rc == ERR_AUTH ? ERR_AUTH : ERR_PARSE, "%s answered 200 "
             "with an unusable token response: %s", where, te.text);
  else if(rc == ERR_AUTH)
    set_last(c, resp->status >= 500 || resp->status == 429 ? ERR_NET :
             ERR_AUTH, "%s answered HTTP %ld %s: %s", where, resp->status,
             te.code[0] ? te.code : "", te.text);
  else
    set_last(c, resp->status >= 500 || resp->status == 429 ? ERR_NET :
             ERR_AUTH, "%s answered HTTP %ld", where, resp->status);
failed:
  attempt_failed(c);
}

int
cred_get_token(struct cred *c, cred_token_cb cb, void *ud)
{
  struct waiter *w, **tail;
  int64_t now;

  if(!c || !cb)
    return ERR_INVAL;
  if(c->destroying)
    return ERR_ABORTED;
  now = now_ms();
  if(token_valid(c, now)) {
    if(now >= c->refresh_ms && !c->req && now >= c->retry_ms) {
      log_debug(MOD, "%s: refreshing the token ahead of its expiry",
                c->describe);
      (void)start_refresh(c);
    }
    /* start_refresh may have failed and called back other waiters; the
       token is still valid either way. */
    cb(ud, 0, c->token, "");
    return 0;
  }
  if(!c->req) {
    if(now < c->retry_ms) {
      cb(ud, c->last_rc ? c->last_rc : ERR_AGAIN, NULL,
         c->last_err[0] ? c->last_err : "token request backing off");
      return 0;
    }
    if(start_refresh(c)) {
      cb(ud, c->last_rc ? c->last_rc : ERR_AUTH, NULL, c->last_err);
      return 0;
    }
  }
  w = calloc(1, sizeof(*w));
  if(!w)
    return ERR_NOMEM;
  w->cb = cb;
  w->ud = ud;
  for(tail = &c->waiters; *tail; tail = &(*tail)->next)
    ;
  *tail = w;
  return 0;
}

void
cred_cancel(struct cred *c, void *ud)
{
  struct waiter **p;

  if(!c)
    return;
  for(p = &c->waiters; *p;) {
    struct waiter *w = *p;

    if(w->ud == ud) {
      *p = w->next;
      free(w);
    }
    else
      p = &w->next;
  }
}

void
cred_invalidate(struct cred *c, const char *token)
{
  if(!c || !c->token)
    return;
  if(token && strcmp(token, c->token))
    return;
  log_info(MOD, "%s: the token was refused; fetching a new one",
           c->describe);
  retire_token(c);
  c->expires_ms = 0;
  c->refresh_ms = 0;
  c->stats.expires_at_ms = 0;
  /* A refusal is news, not a repeat of the last failure: try at once. */
  c->retry_ms = 0;
}

const char *
cred_describe(const struct cred *c)
{
  return c->describe;
}

void
cred_get_stats(const struct cred *c, struct cred_stats *out)
{
  *out = c->stats;
}

void
cred_destroy(struct cred *c)
{
  if(!c)
    return;
  c->destroying = 1;
  if(c->req)
    http_request_cancel(c->req);
  c->req = NULL;
  notify(c, ERR_ABORTED, NULL, "the credential provider is shutting down");
  /* Nothing sends these any more (the request is cancelled and the
     callers told), so they need no scrubbing after this. */
  drop_secret(&c->token);
  drop_secret(&c->prev_token);
  drop_secret(&c->assertion);
  drop_secret(&c->arc_key);
  free_secret(c->secret);
  jwt_key_destroy(c->key);
  free(c->tenant);
  free(c->client_id);
  free(c->token_url);
  free(c->scope);
  free(c->fed_file);
  free(c->mi_url);
  free_secret(c->identity_header);
  free(c->arc_key_dir);
  free(c);
}

/* Builds the managed identity URL: base + "?" + query. */
static int
mi_url(struct cred *c, const char *base, const char *api, const char *res_key,
       const struct cred_opts *o, const char *env_client_id)
{
  struct buf q;
  char *resource = scope_to_resource(c->scope);
  int rc;

  buf_init(&q, 8192);
  if(!resource)
    return ERR_NOMEM;
  rc = buf_puts(&q, base);
  if(!rc)
    rc = buf_putc(&q, strchr(base, '?') ? '&' : '?');
  if(!rc)
    rc = buf_printf(&q, "api-version=%s&resource=", api);
  if(!rc)
    rc = put_encoded(&q, resource);
  if(!rc && opt(o->mi_client_id))
    rc = put_param(&q, "client_id", o->mi_client_id);
  else if(!rc && opt(o->mi_object_id))
    rc = put_param(&q, "object_id", o->mi_object_id);
  else if(!rc && opt(o->mi_res_id))
    rc = put_param(&q, res_key, o->mi_res_id);
  else if(!rc && env_client_id)
    rc = put_param(&q, "client_id", env_client_id);
  free(resource);
  if(rc) {
    buf_free(&q);
    return rc;
  }
  c->mi_url = buf_detach(&q, NULL);
  return 0;
}

/* Resolves managed identity: App Service, Azure Arc or IMDS. */
static int
setup_mi(struct cred *c, const struct cred_opts *o, const char *env_client_id)
{
  const char *ep = opt(getenv("IDENTITY_ENDPOINT"));
  const char *hdr = opt(getenv("IDENTITY_HEADER"));
  const char *imds_ep = opt(getenv("IMDS_ENDPOINT"));
  const char *himds = opt(o->arc_himds_path) ? o->arc_himds_path :
                      CRED_DEFAULT_ARC_HIMDS;
  const char *kind_name, *user = "";
  int ids = !!opt(o->mi_client_id) + !!opt(o->mi_object_id) +
            !!opt(o->mi_res_id);
  int rc;

  if(ids > 1) {
    log_error(MOD, "managed identity: set at most one of client_id, "
              "object_id and msi_res_id");
    return ERR_CONFIG;
  }
  if(ids || env_client_id)
    user = ", user-assigned";
  if(ep && hdr) {
    c->kind = KIND_APPSERVICE;
    kind_name = "App Service";
    c->identity_header = strdup(hdr);
    if(!c->identity_header)
      return ERR_NOMEM;
    (void)log_secret_add(hdr);
    rc = mi_url(c, ep, "2019-08-01", "mi_res_id", o, env_client_id);
  }
  else if((ep && imds_ep) || access(himds, F_OK) == 0) {
    c->kind = KIND_ARC;
    kind_name = "Azure Arc";
    if(ids || env_client_id) {
      log_error(MOD, "managed identity: Azure Arc supports only the "
                "system-assigned identity; remove the user-assigned id");
      return ERR_CONFIG;
    }
    c->arc_key_dir = strdup(opt(o->arc_key_dir) ? o->arc_key_dir :
                            CRED_DEFAULT_ARC_KEY_DIR);
    if(!c->arc_key_dir)
      return ERR_NOMEM;
    rc = mi_url(c, ep ? ep : CRED_DEFAULT_ARC_ENDPOINT, "2020-06-01", "",
                o, NULL);
  }
  else {
    struct buf base;
    const char *host = opt(o->imds_endpoint) ? o->imds_endpoint :
                       CRED_DEFAULT_IMDS;
    size_t hl = strlen(host);

    c->kind = KIND_IMDS;
    kind_name = "IMDS";
    buf_init(&base, 4096);
    while(hl && host[hl - 1] == '/')
      hl--;
    rc = buf_printf(&base, "%.*s/metadata/identity/oauth2/token", (int)hl,
                    host);
    if(!rc)
      rc = mi_url(c, base.data, "2018-02-01", "msi_res_id", o,
                  env_client_id);
    buf_free(&base);
  }
  snprintf(c->describe + strlen(c->describe),
           sizeof(c->describe) - strlen(c->describe), "managed_identity (%s%s)",
           kind_name, user);
  return rc;
}

/* Sets up the Entra ID methods. */
static int
setup_entra(struct cred *c, enum cred_kind kind, const char *tenant,
            const char *client_id, const struct cred_opts *o,
            const char *secret, const char *cert, const char *cert_pw,
            const char *fed)
{
  const char *auth = opt_env(o->authority_host, "AZURE_AUTHORITY_HOST");
  struct jwt_error je;
  struct buf url;
  size_t al;
  int rc;

  if(!tenant || !client_id) {
    log_error(MOD, "%s needs tenant_id and client_id",
              kind == KIND_SECRET ? "client_secret" : kind == KIND_CERT ?
              "client_certificate" : "workload_identity");
    return ERR_CONFIG;
  }
  if(!tenant_ok(tenant)) {
    log_error(MOD, "tenant_id %s is not a tenant id or domain name", tenant);
    return ERR_CONFIG;
  }
  c->kind = kind;
  c->tenant = strdup(tenant);
  c->client_id = strdup(client_id);
  if(!c->tenant || !c->client_id)
    return ERR_NOMEM;
  if(!auth)
    auth = CRED_DEFAULT_AUTHORITY;
  al = strlen(auth);
  while(al && auth[al - 1] == '/')
    al--;
  buf_init(&url, 4096);
  rc = buf_printf(&url, "%.*s/%s/oauth2/v2.0/token", (int)al, auth, tenant);
  if(rc)
    return rc;
  c->token_url = buf_detach(&url, NULL);
  switch(kind) {
  case KIND_SECRET:
    if(!secret) {
      log_error(MOD, "client_secret needs the client secret");
      return ERR_CONFIG;
    }
    c->secret = strdup(secret);
    if(!c->secret)
      return ERR_NOMEM;
    (void)log_secret_add(secret);
    strcat(c->describe, "client_secret");
    break;
  case KIND_CERT:
    if(!cert) {
      log_error(MOD, "client_certificate needs certificate_file");
      return ERR_CONFIG;
    }
    if(cert_pw)
      (void)log_secret_add(cert_pw);
    rc = jwt_key_load(cert, cert_pw, &c->key, &je);
    if(rc) {
      log_error(MOD, "client_certificate: %s", je.text);
      return rc == ERR_NOMEM ? rc : ERR_CONFIG;
    }
    c->alg = o->certificate_alg == JWT_RS256 ? JWT_RS256 : JWT_PS256;
    strcat(c->describe, c->alg == JWT_RS256 ? "client_certificate (RS256)" :
           "client_certificate (PS256)");
    break;
  case KIND_WORKLOAD:
    if(!fed) {
      log_error(MOD, "workload_identity needs federated_token_file or "
                "AZURE_FEDERATED_TOKEN_FILE");
      return ERR_CONFIG;
    }
    c->fed_file = strdup(fed);
    if(!c->fed_file)
      return ERR_NOMEM;
    strcat(c->describe, "workload_identity");
    break;
  default:
    return ERR_INVAL;
  }
  return 0;
}

int
cred_create(uv_loop_t *loop, struct http_engine *http,
            const struct cred_opts *o, struct cred **out)
{
  struct cred *c;
  const char *tenant, *client, *secret, *cert, *cert_pw, *fed;
  int rc;

  if(!loop || !http || !o || !out)
    return ERR_INVAL;
  *out = NULL;
  c = calloc(1, sizeof(*c));
  if(!c)
    return ERR_NOMEM;
  c->loop = loop;
  c->http = http;
  c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : CRED_DEFAULT_TIMEOUT_MS;
  backoff_init(&c->bo, o->backoff_base_ms, o->backoff_cap_ms);
  c->scope = strdup(opt(o->scope) ? o->scope : CRED_DEFAULT_SCOPE);
  if(!c->scope) {
    rc = ERR_NOMEM;
    goto out;
  }
  tenant = opt_env(o->tenant_id, "AZURE_TENANT_ID");
  client = opt_env(o->client_id, "AZURE_CLIENT_ID");
  switch(o->method) {
  case CRED_CLIENT_SECRET:
    rc = setup_entra(c, KIND_SECRET, tenant, client, o, opt(o->client_secret),
                     NULL, NULL, NULL);
    break;
  case CRED_CLIENT_CERTIFICATE:
    rc = setup_entra(c, KIND_CERT, tenant, client, o, NULL,
                     opt(o->certificate_file), opt(o->certificate_password),
                     NULL);
    break;
  case CRED_WORKLOAD_IDENTITY:
    rc = setup_entra(c, KIND_WORKLOAD, tenant, client, o, NULL, NULL, NULL,
                     opt_env(o->federated_token_file,
                             "AZURE_FEDERATED_TOKEN_FILE"));
    break;
  case CRED_MANAGED_IDENTITY:
    rc = setup_mi(c, o, NULL);
    break;
  case CRED_DEFAULT:
    strcpy(c->describe, "default: ");
    secret = opt_env(o->client_secret, "AZURE_CLIENT_SECRET");
    cert = opt_env(o->certificate_file, "AZURE_CLIENT_CERTIFICATE_PATH");
    cert_pw = opt_env(o->certificate_password,
                      "AZURE_CLIENT_CERTIFICATE_PASSWORD");
    fed = opt_env(o->federated_token_file, "AZURE_FEDERATED_TOKEN_FILE");
    if(tenant && client && secret)
      rc = setup_entra(c, KIND_SECRET, tenant, client, o, secret, NULL, NULL,
                       NULL);
    else if(tenant && client && cert)
      rc = setup_entra(c, KIND_CERT, tenant, client, o, NULL, cert, cert_pw,
                       NULL);
    else if(tenant && client && fed)
      rc = setup_entra(c, KIND_WORKLOAD, tenant, client, o, NULL, NULL, NULL,
                       fed);
    else
      rc = setup_mi(c, o, opt(o->client_id) ? NULL :
                    opt(getenv("AZURE_CLIENT_ID")));
    break;
  default:
    rc = ERR_INVAL;
  }
  if(rc)
    goto out;
  log_info(MOD, "credential %s, scope %s", c->describe, c->scope);
  *out = c;
  c = NULL;
out:
  if(c)
    cred_destroy(c);
  return rc;
}
