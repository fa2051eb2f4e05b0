/*
 * storage.c: the Azure Blob Storage client of storage.h.
 *
 * Each operation (list page, list all, get, delete) is a struct storage_op
 * that builds one HTTP request per attempt, signs it for the auth method in
 * use, classifies the answer, and either completes, retries after a backoff
 * timer, or (list all) moves on to the next page. An operation owns a libuv
 * timer from creation to its end, so its memory is freed in the timer's
 * close callback, after the user's callback has run. While an operation
 * waits for an Entra ID token it holds a second reference, so that a token
 * arriving after a cancel finds valid memory.
 */
#include "storage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backoff.h"
#include "err.h"
#include "log.h"
#include "storage_auth.h"
#include "storage_conn.h"

#define MOD "storage"
#define STORAGE_DEFAULT_TIMEOUT_MS 60000L
#define STORAGE_DEFAULT_GET_TIMEOUT_MS 600000L
#define STORAGE_DEFAULT_ATTEMPTS 6u
/* Room for a service error document when the blob cap is tiny. */
#define STORAGE_MIN_RESPONSE_CAP (1024u * 1024u)
/* A listing page is at most 5000 entries of a few hundred bytes. */
#define STORAGE_LIST_RESPONSE_CAP (64u * 1024u * 1024u)

enum op_kind { OP_LIST_PAGE, OP_LIST_ALL, OP_GET, OP_DELETE };

struct storage {
  struct http_engine *http;
  uv_loop_t *loop;
  char *endpoint;               /* without a trailing '/' */
  char *account;                /* may be NULL except for Shared Key */
  char *container;
  enum storage_auth auth;
  struct storage_signer *signer;  /* keyed HMAC (Shared Key); the decoded
                                     key itself is wiped once keyed */
  char *sas;                    /* without '?' (SAS) */
  struct storage_token_provider token;
  long timeout_ms;
  long get_timeout_ms;
  unsigned max_attempts;
  uint64_t backoff_base_ms;
  uint64_t backoff_cap_ms;
  struct storage_op *ops;       /* operations in flight */
};

struct storage_op {
  struct storage *s;
  enum op_kind kind;
  char *name;                   /* blob name (get, delete) */
  char *etag;                   /* If-Match, quoted */
  char *prefix;                 /* listing */
  char *marker;
  unsigned maxresults;
  char **suffixes;
  size_t nsuffixes;
  size_t max_bytes;             /* get */
  struct http_sink sink;        /* get: the caller's sink */
  int has_sink;
  size_t got;                   /* get: body bytes received this attempt */
  long long content_length;     /* get: from the response, -1 unknown */
  struct buf body;              /* get without a sink */
  storage_list_cb list_cb;
  storage_page_cb page_cb;
  storage_done_cb done_cb;
  storage_get_cb get_cb;
  void *ud;
  struct http_request *req;     /* the attempt in flight, or NULL */
  uv_timer_t timer;             /* retry delay; closing frees the op */
  struct backoff bo;
  unsigned attempt;             /* attempts made */
  int token_retried;            /* the one 401 retry under Entra ID */
  int waiting_token;
  int refs;                     /* 1 until finished, +1 waiting a token */
  int finished;
  size_t pages, listed, skipped_dirs, skipped_suffix;
  struct storage_op *prev, *next;
};

static void op_attempt(struct storage_op *op);

const char *
storage_auth_name(const struct storage *s)
{
  switch(s->auth) {
  case STORAGE_AUTH_SHARED_KEY:
    return "Shared Key";
  case STORAGE_AUTH_SAS:
    return "SAS token";
  default:
    return "Entra ID";
  }
}

const char *
storage_endpoint(const struct storage *s)
{
  return s->endpoint;
}

static void
op_unref(struct storage_op *op)
{
  if(--op->refs > 0)
    return;
  free(op->name);
  free(op->etag);
  free(op->prefix);
  free(op->marker);
  for(size_t i = 0; i < op->nsuffixes; i++)
    free(op->suffixes[i]);
  free(op->suffixes);
  buf_free(&op->body);
  free(op);
}

static void
on_op_timer_closed(uv_handle_t *h)
{
  op_unref(h->data);
}

/* A short description of the operation for messages ("list container
   'reports'", "get blob 'a.json'"). */
static void
op_what(const struct storage_op *op, char *out, size_t size)
{
  switch(op->kind) {
  case OP_LIST_PAGE:
  case OP_LIST_ALL:
    snprintf(out, size, "list container '%s'", op->s->container);
    break;
  case OP_GET:
    snprintf(out, size, "get blob '%s'", op->name);
    break;
  default:
    snprintf(out, size, "delete blob '%s'", op->name);
    break;
  }
}

/*
 * Ends an operation: unlinks it, cancels its request, runs the user's
 * callback with res, and starts closing its timer (which frees it).
 */
static void
op_finish(struct storage_op *op, struct storage_result *res,
          struct blob_page *page)
{
  struct storage *s = op->s;

  if(op->finished)
    return;
  op->finished = 1;
  if(op->prev)
    op->prev->next = op->next;
  else
    s->ops = op->next;
  if(op->next)
    op->next->prev = op->prev;
  op->prev = op->next = NULL;
  if(op->req) {
    struct http_request *r = op->req;

    op->req = NULL;
    http_request_cancel(r);   /* its done callback sees op->finished */
  }
  (void)uv_timer_stop(&op->timer);
  if(res->rc && res->rc != ERR_ABORTED) {
    char what[600];

    op_what(op, what, sizeof(what));
    log_debug(MOD, "%s: %s", what, res->message);
  }
  switch(op->kind) {
  case OP_LIST_PAGE:
    if(op->list_cb)
      op->list_cb(res, res->rc ? NULL : page, op->ud);
    break;
  case OP_LIST_ALL:
    if(op->done_cb)
      op->done_cb(res, op->ud);
    break;
  case OP_GET:
    if(op->get_cb)
      op->get_cb(res, res->rc ? NULL : &op->body, op->ud);
    break;
  case OP_DELETE:
    if(op->done_cb)
      op->done_cb(res, op->ud);
    break;
  }
  uv_close((uv_handle_t *)&op->timer, on_op_timer_closed);
}

/* Finishes with rc and a printf-formatted message. */
static void
op_fail(struct storage_op *op, int rc, long status, const char *code,
        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
op_fail(struct storage_op *op, int rc, long status, const char *code,
        const char *fmt, ...)
{
  struct storage_result res;
  va_list ap;

  memset(&res, 0, sizeof(res));
  res.rc = rc;
  res.status = status;
  snprintf(res.code, sizeof(res.code), "%s", code ? code : "");
  va_start(ap, fmt);
  vsnprintf(res.message, sizeof(res.message), fmt, ap);
  va_end(ap);
  log_scrub(res.message, sizeof(res.message));
  op_finish(op, &res, NULL);
}

static void
on_retry_timer(uv_timer_t *t)
{
  op_attempt(t->data);
}

/* Schedules another attempt after a backoff delay, or returns ERR_AGAIN
   when the attempts are used up. */
static int
op_retry_later(struct storage_op *op, const char *why)
{
  uint64_t delay;
  char what[600];
  int rc;

  if(op->attempt >= op->s->max_attempts)
    return ERR_AGAIN;
  delay = backoff_next(&op->bo);
  op_what(op, what, sizeof(what));
  log_warn(MOD, "%s: %s; attempt %u of %u in %.1f s", what, why,
           op->attempt + 1, op->s->max_attempts, (double)delay / 1000.0);
  rc = uv_timer_start(&op->timer, on_retry_timer, delay, 0);
  if(rc < 0) {
    log_error(MOD, "uv_timer_start: %s", uv_strerror(rc));
    return ERR_AGAIN;
  }
  return 0;
}

/* Appends "/container[/encoded name]?query" for the operation. */
static int
op_path_query(const struct storage_op *op, struct buf *url)
{
  int rc;

  rc = buf_putc(url, '/');
  if(!rc)
    rc = storage_url_encode(op->s->container, 0, url);
  if(rc)
    return rc;
  if(op->kind == OP_GET || op->kind == OP_DELETE) {
    rc = buf_putc(url, '/');
    if(!rc)
      rc = storage_url_encode(op->name, 1, url);
    return rc;
  }
  rc = buf_puts(url, "?restype=container&comp=list&include=metadata");
  if(!rc && op->maxresults)
    rc = buf_printf(url, "&maxresults=%u", op->maxresults);
  if(!rc && op->prefix && op->prefix[0]) {
    rc = buf_puts(url, "&prefix=");
    if(!rc)
      rc = storage_url_encode(op->prefix, 0, url);
  }
  if(!rc && op->marker && op->marker[0]) {
    rc = buf_puts(url, "&marker=");
    if(!rc)
      rc = storage_url_encode(op->marker, 0, url);
  }
  return rc;
}

/* snprintf for operator messages, where truncation is acceptable. */
static void
msgf(char *out, size_t size, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static void
msgf(char *out, size_t size, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(out, size, fmt, ap);
  va_end(ap);
}

/* The operator's message for a refused credential, by method and code. */
static void
explain_auth(const struct storage_op *op, long status, const char *code,
             char *out, size_t size)
{
  const struct storage *s = op->s;
  int perm = !strncmp(code, "Authorization", 13) &&
             strcmp(code, "AuthorizationFailure");
  const char *need = op->kind == OP_DELETE ? "delete (d)"
                   : op->kind == OP_GET ? "read (r)" : "list (l)";
  char what[600];

  op_what(op, what, sizeof(what));
  switch(s->auth) {
  case STORAGE_AUTH_SHARED_KEY:
    msgf(out, size, "%s: Shared Key authentication for account '%s' "
             "was refused (%ld %s): check that the account key "
             "(source.account_key) is a current access key of that account "
             "(keys may have been rotated), that the account name is right, "
             "and that the system clock is correct (requests are signed "
             "with the time)", what, s->account, status, code);
    break;
  case STORAGE_AUTH_SAS:
    if(perm)
      msgf(out, size, "%s: the SAS token does not allow this (%ld %s): "
               "it needs %s permission (sp=rl for reading, plus d for "
               "after_ingest: delete); an account SAS also needs ss=b and "
               "srt=co; also check its allowed IP range (sip) and protocol "
               "(spr)", what, status, code, need);
    else
      msgf(out, size, "%s: the SAS token was refused (%ld %s): check "
               "that it has not expired (se) and has started (st), that it "
               "was issued for account '%s' and container '%s' with %s "
               "permission, that it was copied whole (sig), and that the "
               "storage firewall admits this host", what, status, code,
               s->account ? s->account : "?", s->container, need);
    break;
  default:
    msgf(out, size, "%s: the Entra ID identity was refused (%ld %s): "
             "grant it the Storage Blob Data Reader role (Storage Blob Data "
             "Contributor for after_ingest: delete) on the account or "
             "container (new role assignments take several minutes), and "
             "check that the token is for https://storage.azure.com and "
             "that the storage firewall admits this host", what, status,
             code);
    break;
  }
}

/* Handles a non-2xx answer: retry, or finish with a classified error. */
static void
op_http_error(struct storage_op *op, struct http_response *resp)
{
  char code[64] = "", msg[400] = "", what[600], why[160];
  const char *h = http_response_header(resp, "x-ms-error-code");
  long st = resp->status;
  struct storage_result res;

  if(blob_error_parse(resp->body.data, resp->body.len, code, sizeof(code),
                      msg, sizeof(msg)) != 0)
    code[0] = msg[0] = '\0';
  if(h && h[0])
    snprintf(code, sizeof(code), "%s", h);
  /* The service's message runs over several lines (RequestId, Time). */
  msg[strcspn(msg, "\r\n")] = '\0';
  op_what(op, what, sizeof(what));

  if(st == 408 || st == 429 || st >= 500) {
    snprintf(why, sizeof(why), "service answered %ld %s", st, code);
    if(op_retry_later(op, why) == 0)
      return;
    op_fail(op, ERR_AGAIN, st, code, "%s: the storage service answered %ld "
            "%s after %u attempts: %s", what, st, code, op->attempt, msg);
    return;
  }
  if(st == 401 && op->s->auth == STORAGE_AUTH_ENTRA && !op->token_retried) {
    op->token_retried = 1;
    if(op->s->token.invalidate)
      op->s->token.invalidate(op->s->token.ud);
    op_attempt(op);
    return;
  }
  if(st == 401 || (st == 403 && (!strncmp(code, "Authentication", 14) ||
                                 !strncmp(code, "Authorization", 13) ||
                                 !strcmp(code, "InvalidAuthenticationInfo") ||
                                 !code[0]))) {
    memset(&res, 0, sizeof(res));
    res.rc = ERR_AUTH;
    res.status = st;
    snprintf(res.code, sizeof(res.code), "%s", code);
    explain_auth(op, st, code[0] ? code : "no error code", res.message,
                 sizeof(res.message));
    log_scrub(res.message, sizeof(res.message));
    op_finish(op, &res, NULL);
    return;
  }
  if(st == 404 && (!strcmp(code, "ContainerNotFound") ||
                   op->kind == OP_LIST_PAGE || op->kind == OP_LIST_ALL)) {
    op_fail(op, ERR_NOTFOUND, st, code, "%s: container '%s' does not exist "
            "at %s (%s): check source.container and the account or "
            "endpoint", what, op->s->container, op->s->endpoint,
            code[0] ? code : "404");
    return;
  }
  if(st == 404) {
    op_fail(op, ERR_NOTFOUND, st, code, "%s: the blob no longer exists "
            "(%s); it was deleted after it was listed, which is not an "
            "error in the blob", what, code[0] ? code : "404");
    return;
  }
  if(st == 412) {
    op_fail(op, ERR_CHANGED, st, code, "%s: the blob changed since it was "
            "listed (ETag %s no longer matches, %s); it will be read again "
            "under its new ETag", what, op->etag ? op->etag : "?",
            code[0] ? code : "412");
    return;
  }
  op_fail(op, ERR_HTTP, st, code, "%s failed: %ld %s: %s", what, st,
          code[0] ? code : "(no error code)", msg);
}

/* Removes directory markers and suffix mismatches from a page. */
static void
op_filter(struct storage_op *op, struct blob_page *page)
{
  size_t i = 0;

  while(i < page->n) {
    const struct blob_entry *e = &page->entries[i];
    int keep = !e->is_dir_marker;

    if(!keep)
      op->skipped_dirs++;
    if(keep && op->nsuffixes) {
      size_t nl = strlen(e->name);

      keep = 0;
      for(size_t j = 0; j < op->nsuffixes && !keep; j++) {
        size_t sl = strlen(op->suffixes[j]);

        keep = nl >= sl && !strcmp(e->name + nl - sl, op->suffixes[j]);
      }
      if(!keep)
        op->skipped_suffix++;
    }
    if(keep)
      i++;
    else
      blob_page_remove(page, i);
  }
}

/* Handles a 2xx listing page. */
static void
op_list_ok(struct storage_op *op, struct http_response *resp)
{
  struct storage_result res;
  struct blob_list_error perr;
  struct blob_page page;
  char what[600];
  int rc;

  op_what(op, what, sizeof(what));
  rc = blob_list_parse(resp->body.data, resp->body.len, &page, &perr);
  if(rc) {
    if(rc == ERR_PARSE)
      op_fail(op, ERR_PARSE, resp->status, "", "%s: the listing is not "
              "valid List Blobs XML: %s at line %lu, column %lu", what,
              perr.text, perr.line, perr.column);
    else
      op_fail(op, rc, resp->status, "", "%s: %s", what, err_str(rc));
    return;
  }
  memset(&res, 0, sizeof(res));
  res.status = resp->status;
  op->pages++;
  op->listed += page.n;
  if(op->kind == OP_LIST_PAGE) {
    op_finish(op, &res, &page);
    blob_page_free(&page);
    return;
  }
  op_filter(op, &page);
  if(page.next_marker && page.next_marker[0] && op->marker &&
     !strcmp(page.next_marker, op->marker)) {
    blob_page_free(&page);
    op_fail(op, ERR_PARSE, resp->status, "", "%s: the service returned the "
            "same NextMarker twice; the listing does not advance", what);
    return;
  }
  rc = op->page_cb ? op->page_cb(op->ud, &page) : 0;
  if(rc < 0) {
    blob_page_free(&page);
    op_fail(op, rc, resp->status, "", "%s: stopped by the caller (%s)",
            what, err_str(rc));
    return;
  }
  if(page.next_marker && page.next_marker[0]) {
    free(op->marker);
    op->marker = page.next_marker;
    page.next_marker = NULL;
    blob_page_free(&page);
    op->attempt = 0;
    backoff_reset(&op->bo);
    op_attempt(op);
    return;
  }
  blob_page_free(&page);
  log_debug(MOD, "%s: %zu pages, %zu entries, %zu directory markers and "
            "%zu other names skipped", what, op->pages, op->listed,
            op->skipped_dirs, op->skipped_suffix);
  op_finish(op, &res, NULL);
}

static void
on_http_done(struct http_response *resp, void *ud)
{
  struct storage_op *op = ud;
  char what[600], why[300];
  struct storage_result res;

  op->req = NULL;
  if(op->finished)
    return;   /* cancelled: op_finish already reported */
  op_what(op, what, sizeof(what));
  switch(resp->result) {
  case 0:
    break;
  case ERR_NET: {
    char where[256];

    http_url_redact(op->s->endpoint, where, sizeof(where));
    if(op->kind == OP_GET && op->has_sink && op->got) {
      op_fail(op, ERR_NET, 0, "", "%s: the transfer from %s broke after %zu "
              "bytes (%s); it is not resumed", what, where, op->got,
              resp->error);
      return;
    }
    snprintf(why, sizeof(why), "%s", resp->error);
    if(op_retry_later(op, why) == 0)
      return;
    op_fail(op, ERR_NET, 0, "", "%s: cannot reach %s after %u attempts: "
            "%s", what, where, op->attempt, resp->error);
    return;
  }
  case ERR_TOOBIG: {
    /* The engine may have refused the Content-Length before our sink saw
       the headers; they are still readable here. */
    const char *cl = http_response_header(resp, "Content-Length");

    if(op->content_length < 0 && cl)
      op->content_length = strtoll(cl, NULL, 10);
    if(op->content_length >= 0)
      op_fail(op, ERR_TOOBIG, resp->status, "", "%s: the blob is %lld "
              "bytes, over max_blob_bytes (%zu); refused without reading it",
              what, op->content_length, op->max_bytes);
    else
      op_fail(op, ERR_TOOBIG, resp->status, "", "%s: the blob is over "
              "max_blob_bytes (%zu); the download was stopped at the cap",
              what, op->max_bytes);
    return;
  }
  case ERR_ABORTED:
    op_fail(op, ERR_ABORTED, 0, "", "%s: cancelled", what);
    return;
  default:
    op_fail(op, resp->result, resp->status, "", "%s: %s", what, resp->error);
    return;
  }
  if(resp->status < 200 || resp->status > 299) {
    op_http_error(op, resp);
    return;
  }
  switch(op->kind) {
  case OP_LIST_PAGE:
  case OP_LIST_ALL:
    op_list_ok(op, resp);
    return;
  default:
    memset(&res, 0, sizeof(res));
    res.status = resp->status;
    op_finish(op, &res, NULL);
    return;
  }
}

/* The get's sink: checks the cap, then buffers or forwards. */
static int
get_sink_headers(void *ud, const struct http_response *resp)
{
  struct storage_op *op = ud;
  const char *cl = http_response_header(resp, "Content-Length");

  op->content_length = cl ? strtoll(cl, NULL, 10) : -1;
  if(op->max_bytes && op->content_length >= 0 &&
     (unsigned long long)op->content_length > op->max_bytes)
    return ERR_TOOBIG;
  if(op->has_sink && op->sink.headers)
    return op->sink.headers(op->sink.ud, resp);
  return 0;
}

static int
get_sink_write(void *ud, const void *data, size_t len)
{
  struct storage_op *op = ud;

  if(op->max_bytes && (len > op->max_bytes || op->got > op->max_bytes - len))
    return ERR_TOOBIG;
  op->got += len;
  if(op->has_sink)
    return op->sink.write(op->sink.ud, data, len);
  return buf_append(&op->body, data, len);
}

/* Sends one attempt, with token when the method is Entra ID. */
static void
op_send(struct storage_op *op, const char *token)
{
  struct storage *s = op->s;
  struct storage_header hdrs[5];
  struct http_request *r = NULL;
  struct buf url, auth;
  char date[40], what[600];
  const char *method;
  size_t nh = 0;
  int rc;

  buf_init(&url, 64 * 1024);
  buf_init(&auth, 64 * 1024);
  method = op->kind == OP_DELETE ? "DELETE" : "GET";
  rc = buf_puts(&url, s->endpoint);
  if(!rc)
    rc = op_path_query(op, &url);
  if(!rc && s->auth == STORAGE_AUTH_SAS)
    rc = buf_printf(&url, "%c%s", strchr(url.data, '?') ? '&' : '?', s->sas);
  if(rc)
    goto out;
  storage_http_date(time(NULL), date, sizeof(date));
  hdrs[nh++] = (struct storage_header){ "x-ms-date", date };
  hdrs[nh++] = (struct storage_header){ "x-ms-version", STORAGE_API_VERSION };
  if(op->etag)
    hdrs[nh++] = (struct storage_header){ "If-Match", op->etag };
  if(op->kind == OP_DELETE)
    hdrs[nh++] = (struct storage_header){ "x-ms-delete-snapshots",
                                          "include" };
  if(s->auth == STORAGE_AUTH_SHARED_KEY)
    rc = storage_sk_authorization(s->account, s->signer, method, url.data,
                                  hdrs, nh, &auth);
  else if(s->auth == STORAGE_AUTH_ENTRA)
    rc = buf_printf(&auth, "Bearer %s", token ? token : "");
  if(rc)
    goto out;
  rc = http_request_create(s->http, method, url.data, &r);
  for(size_t i = 0; !rc && i < nh; i++)
    rc = http_request_add_header(r, hdrs[i].name, hdrs[i].value);
  if(!rc && auth.len)
    rc = http_request_add_header(r, "Authorization", auth.data);
  if(rc)
    goto out;
  if(op->kind == OP_GET) {
    struct http_sink sink = { get_sink_headers, get_sink_write, op };
    size_t cap = op->max_bytes > STORAGE_MIN_RESPONSE_CAP
                   ? op->max_bytes : STORAGE_MIN_RESPONSE_CAP;

    op->got = 0;
    op->content_length = -1;
    buf_reset(&op->body);
    http_request_set_sink(r, &sink);
    if(op->max_bytes)
      http_request_set_max_response(r, cap);
    http_request_set_timeout(r, s->get_timeout_ms);
  }
  else {
    if(op->kind != OP_DELETE)
      http_request_set_max_response(r, STORAGE_LIST_RESPONSE_CAP);
    http_request_set_timeout(r, s->timeout_ms);
  }
  rc = http_submit(r, on_http_done, op);
  if(rc)
    goto out;
  op->req = r;
  r = NULL;
out:
  http_request_destroy(r);
  buf_free(&url);
  /* The Authorization value is a credential: wipe it before freeing. */
  if(auth.data)
    memset(auth.data, 0, auth.cap);
  buf_free(&auth);
  if(rc) {
    op_what(op, what, sizeof(what));
    op_fail(op, rc, 0, "", "%s: cannot send the request: %s", what,
            err_str(rc));
  }
}

static void
on_token(void *req, int rc, const char *token, const char *error)
{
  struct storage_op *op = req;
  char what[600];

  op->waiting_token = 0;
  if(!op->finished) {
    if(rc || !token || !token[0]) {
      op_what(op, what, sizeof(what));
      op_fail(op, ERR_AUTH, 0, "", "%s: no Entra ID token for storage "
              "(scope https://storage.azure.com/.default): %s", what,
              error && error[0] ? error : err_str(rc ? rc : ERR_AUTH));
    }
    else
      op_send(op, token);
  }
  op_unref(op);
}

/* Starts one attempt: gets a token first under Entra ID. */
static void
op_attempt(struct storage_op *op)
{
  struct storage *s = op->s;
  char what[600];
  int rc;

  if(op->finished)
    return;
  op->attempt++;
  if(s->auth != STORAGE_AUTH_ENTRA) {
    op_send(op, NULL);
    return;
  }
  op->waiting_token = 1;
  op->refs++;
  rc = s->token.get(s->token.ud, on_token, op);
  if(rc) {
    op->waiting_token = 0;
    op->refs--;
    op_what(op, what, sizeof(what));
    op_fail(op, ERR_AUTH, 0, "", "%s: no Entra ID token for storage: %s",
            what, err_str(rc));
  }
}

/* Creates an operation of kind, linked into s, with its timer. */
static int
op_create(struct storage *s, enum op_kind kind, struct storage_op **out)
{
  struct storage_op *op = calloc(1, sizeof(*op));
  int rc;

  *out = NULL;
  if(!op)
    return ERR_NOMEM;
  rc = uv_timer_init(s->loop, &op->timer);
  if(rc < 0) {
    free(op);
    return ERR_INVAL;
  }
  op->timer.data = op;
  op->s = s;
  op->kind = kind;
  op->refs = 1;
  op->content_length = -1;
  buf_init(&op->body, (size_t)-2);
  backoff_init(&op->bo, s->backoff_base_ms, s->backoff_cap_ms);
  op->next = s->ops;
  if(s->ops)
    s->ops->prev = op;
  s->ops = op;
  *out = op;
  return 0;
}

/* Undoes op_create for an operation that never started (no callback). */
static void
op_abandon(struct storage_op *op)
{
  struct storage *s = op->s;

  op->finished = 1;
  if(op->prev)
    op->prev->next = op->next;
  else
    s->ops = op->next;
  if(op->next)
    op->next->prev = op->prev;
  uv_close((uv_handle_t *)&op->timer, on_op_timer_closed);
}

static char *
dup_or_null(const char *s, int *rc)
{
  char *p;

  if(!s)
    return NULL;
  p = strdup(s);
  if(!p)
    *rc = ERR_NOMEM;
  return p;
}

/* Quotes an ETag for If-Match unless it already is. */
static char *
quote_etag(const char *etag, int *rc)
{
  char *p;
  size_t n;

  if(!etag || !etag[0])
    return NULL;
  n = strlen(etag);
  if(etag[0] == '"' || !strncmp(etag, "W/", 2))
    return dup_or_null(etag, rc);
  p = malloc(n + 3);
  if(!p) {
    *rc = ERR_NOMEM;
    return NULL;
  }
  p[0] = '"';
  memcpy(p + 1, etag, n);
  p[n + 1] = '"';
  p[n + 2] = '\0';
  return p;
}

int
storage_list_page(struct storage *s, const char *prefix, const char *marker,
                  unsigned maxresults, storage_list_cb cb, void *ud,
                  struct storage_op **opp)
{
  struct storage_op *op;
  int rc;

  if(opp)
    *opp = NULL;
  if(!s || !cb)
    return ERR_INVAL;
  rc = op_create(s, OP_LIST_PAGE, &op);
  if(rc)
    return rc;
  op->prefix = dup_or_null(prefix, &rc);
  op->marker = dup_or_null(marker, &rc);
  op->maxresults = maxresults;
  op->list_cb = cb;
  op->ud = ud;
  if(rc) {
    op_abandon(op);
    return rc;
  }
  if(opp)
    *opp = op;
  op_attempt(op);
  return 0;
}

int
storage_list_all(struct storage *s, const struct storage_list_filter *f,
                 storage_page_cb page_cb, storage_done_cb done, void *ud,
                 struct storage_op **opp)
{
  struct storage_op *op;
  int rc;

  if(opp)
    *opp = NULL;
  if(!s || !done)
    return ERR_INVAL;
  rc = op_create(s, OP_LIST_ALL, &op);
  if(rc)
    return rc;
  if(f) {
    op->prefix = dup_or_null(f->prefix, &rc);
    op->maxresults = f->maxresults;
    if(f->nsuffixes) {
      op->suffixes = calloc(f->nsuffixes, sizeof(char *));
      if(!op->suffixes)
        rc = ERR_NOMEM;
      for(size_t i = 0; !rc && i < f->nsuffixes; i++) {
        op->suffixes[i] = dup_or_null(f->suffixes[i] ? f->suffixes[i] : "",
                                      &rc);
        op->nsuffixes = i + 1;
      }
    }
  }
  op->page_cb = page_cb;
  op->done_cb = done;
  op->ud = ud;
  if(rc) {
    op_abandon(op);
    return rc;
  }
  if(opp)
    *opp = op;
  op_attempt(op);
  return 0;
}

int
storage_get(struct storage *s, const char *name, const char *etag,
            size_t max_bytes, const struct http_sink *sink,
            storage_get_cb cb, void *ud, struct storage_op **opp)
{
  struct storage_op *op;
  int rc;

  if(opp)
    *opp = NULL;
  if(!s || !name || !name[0] || !cb || (sink && !sink->write))
    return ERR_INVAL;
  rc = op_create(s, OP_GET, &op);
  if(rc)
    return rc;
  op->name = dup_or_null(name, &rc);
  op->etag = quote_etag(etag, &rc);
  op->max_bytes = max_bytes;
  if(max_bytes)
    op->body.max = max_bytes;
  if(sink) {
    op->sink = *sink;
    op->has_sink = 1;
  }
  op->get_cb = cb;
  op->ud = ud;
  if(rc) {
    op_abandon(op);
    return rc;
  }
  if(opp)
    *opp = op;
  op_attempt(op);
  return 0;
}

int
storage_delete(struct storage *s, const char *name, const char *etag,
               storage_done_cb cb, void *ud, struct storage_op **opp)
{
  struct storage_op *op;
  int rc;

  if(opp)
    *opp = NULL;
  if(!s || !name || !name[0] || !cb)
    return ERR_INVAL;
  rc = op_create(s, OP_DELETE, &op);
  if(rc)
    return rc;
  op->name = dup_or_null(name, &rc);
  op->etag = quote_etag(etag, &rc);
  op->done_cb = cb;
  op->ud = ud;
  if(rc) {
    op_abandon(op);
    return rc;
  }
  if(opp)
    *opp = op;
  op_attempt(op);
  return 0;
}

void
storage_cancel(struct storage_op *op)
{
  char what[600];

  if(!op || op->finished)
    return;
  op_what(op, what, sizeof(what));
  op_fail(op, ERR_ABORTED, 0, "", "%s: cancelled", what);
}

static void
storage_free(struct storage *s)
{
  if(!s)
    return;
  free(s->endpoint);
  free(s->account);
  free(s->container);
  storage_signer_destroy(s->signer);
  if(s->sas) {
    memset(s->sas, 0, strlen(s->sas));
    free(s->sas);
  }
  free(s);
}

void
storage_destroy(struct storage *s)
{
  if(!s)
    return;
  while(s->ops)
    storage_cancel(s->ops);
  storage_free(s);
}

/* Registers the SAS token and its signature as secrets for the logger. */
static int
register_sas(const char *sas)
{
  const char *sig = strstr(sas, "sig=");
  int rc = log_secret_add(sas);

  if(!rc && sig) {
    char v[256];

    snprintf(v, sizeof(v), "%.*s", (int)strcspn(sig + 4, "&"), sig + 4);
    rc = log_secret_add(v);
  }
  return rc;
}

int
storage_create(struct http_engine *http, uv_loop_t *loop,
               const struct storage_opts *o, struct storage **out,
               char *err, size_t errlen)
{
  struct storage_conn conn;
  struct storage *s = NULL;
  const char *endpoint, *account, *key, *sas;
  unsigned char *raw = NULL;
  size_t raw_len = 0;
  int rc = ERR_NOMEM, krc;

  *out = NULL;
  memset(&conn, 0, sizeof(conn));
  if(err && errlen)
    err[0] = '\0';
  if(!http || !loop || !o) {
    snprintf(err, errlen, "storage: internal error (missing engine, loop "
             "or options)");
    return ERR_INVAL;
  }
  if(!o->container || !o->container[0]) {
    snprintf(err, errlen, "source.container is required");
    return ERR_CONFIG;
  }
  s = calloc(1, sizeof(*s));
  if(!s)
    return ERR_NOMEM;
  s->http = http;
  s->loop = loop;
  s->auth = o->auth;
  s->token = o->token;
  s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms
                                    : STORAGE_DEFAULT_TIMEOUT_MS;
  s->get_timeout_ms = o->get_timeout_ms > 0 ? o->get_timeout_ms
                                            : STORAGE_DEFAULT_GET_TIMEOUT_MS;
  s->max_attempts = o->max_attempts ? o->max_attempts
                                    : STORAGE_DEFAULT_ATTEMPTS;
  s->backoff_base_ms = o->backoff_base_ms;
  s->backoff_cap_ms = o->backoff_cap_ms;
  endpoint = o->endpoint;
  account = o->account;
  key = o->account_key;
  sas = o->sas_token;
  if(o->connection_string && o->connection_string[0]) {
    rc = storage_conn_parse(o->connection_string, &conn, err, errlen);
    if(rc)
      goto out;
    endpoint = conn.blob_endpoint;
    account = conn.account;
    key = conn.account_key;
    sas = conn.sas;
    s->auth = key ? STORAGE_AUTH_SHARED_KEY : STORAGE_AUTH_SAS;
  }
  rc = ERR_CONFIG;
  if(endpoint && endpoint[0]) {
    if(strncasecmp(endpoint, "https://", 8) &&
       strncasecmp(endpoint, "http://", 7)) {
      snprintf(err, errlen, "source.endpoint must be an http(s) URL");
      goto out;
    }
    if(strchr(endpoint, '?')) {
      snprintf(err, errlen, "source.endpoint must not hold a query string "
               "(put a SAS token in source.sas_token)");
      goto out;
    }
    s->endpoint = strdup(endpoint);
  }
  else if(account && account[0]) {
    size_t n = strlen(account) + 40;

    s->endpoint = malloc(n);
    if(s->endpoint)
      snprintf(s->endpoint, n, "https://%s.blob.core.windows.net", account);
  }
  else {
    snprintf(err, errlen, "source: set endpoint or account (or a "
             "connection string)");
    goto out;
  }
  if(!s->endpoint) {
    rc = ERR_NOMEM;
    goto out;
  }
  while(strlen(s->endpoint) > 8 && s->endpoint[strlen(s->endpoint) - 1] == '/')
    s->endpoint[strlen(s->endpoint) - 1] = '\0';
  s->account = account && account[0]
    ? strdup(account) : storage_conn_account_from_endpoint(s->endpoint);
  s->container = strdup(o->container);
  if(!s->container) {
    rc = ERR_NOMEM;
    goto out;
  }
  switch(s->auth) {
  case STORAGE_AUTH_SHARED_KEY:
    if(!s->account) {
      snprintf(err, errlen, "Shared Key needs the account name "
               "(source.account)");
      goto out;
    }
    if(!key || !key[0]) {
      snprintf(err, errlen, "Shared Key needs the account key "
               "(source.account_key or source.account_key_file)");
      goto out;
    }
    if(storage_key_decode(key, &raw, &raw_len)) {
      snprintf(err, errlen, "the account key is not valid base64 (copy "
               "key1 or key2 of the storage account whole)");
      goto out;
    }
    krc = storage_signer_create(raw, raw_len, &s->signer);
    memset(raw, 0, raw_len);
    free(raw);
    raw = NULL;
    if(krc) {
      rc = krc == ERR_NOMEM ? ERR_NOMEM : rc;
      snprintf(err, errlen, "cannot set up HMAC-SHA256 for the account key");
      goto out;
    }
    if(log_secret_add(key)) {
      rc = ERR_NOMEM;
      goto out;
    }
    break;
  case STORAGE_AUTH_SAS:
    if(!sas || !sas[0] || !strcmp(sas, "?")) {
      snprintf(err, errlen, "SAS auth needs source.sas_token");
      goto out;
    }
    s->sas = strdup(sas[0] == '?' ? sas + 1 : sas);
    if(!s->sas || register_sas(s->sas)) {
      rc = ERR_NOMEM;
      goto out;
    }
    if(!strstr(s->sas, "sig=")) {
      snprintf(err, errlen, "source.sas_token has no signature (sig=); "
               "copy the whole token");
      goto out;
    }
    break;
  case STORAGE_AUTH_ENTRA:
    if(!s->token.get) {
      snprintf(err, errlen, "Entra ID auth needs a token provider");
      goto out;
    }
    break;
  default:
    snprintf(err, errlen, "source.auth is not one of shared_key, sas, "
             "entra");
    goto out;
  }
  *out = s;
  s = NULL;
  rc = 0;
out:
  storage_conn_free(&conn);
  storage_free(s);
  return rc;
}
