/*
 * http.c: the libcurl-multi-on-libuv HTTP engine of http.h.
 *
 * This follows curl's docs/examples/multi-uv.c with its gaps fixed: every
 * curl and libuv return value is checked, the timer's owner is found through
 * handle->data (never by casting between struct types), a poll error is
 * passed to curl as CURL_CSELECT_ERR, completion messages are drained after
 * every socket_action call whatever the number of running transfers, and
 * shutdown is ordered: abort the transfers, clean up the multi handle, close
 * every poll handle and the timer, and free the engine in the last close
 * callback, so that the loop ends with no handle of ours and uv_loop_close
 * returns 0.
 *
 * Re-entrancy: done callbacks run from the completion drain, outside any
 * curl callback, so they may submit, cancel, or close the engine. A close
 * requested while the engine is inside one of its own callbacks aborts the
 * transfers at once and defers the multi cleanup to the callback's end.
 * Sink callbacks run inside curl and must not call into the engine.
 */
#include "http.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"

#define MOD "http"
/* The body of a non-2xx response to a streamed request is kept for its
   error document, up to this many bytes. */
#define HTTP_ERROR_BODY_MAX (1u * 1024u * 1024u)
/* curl's receive buffer for a streamed body (CURLOPT_BUFFERSIZE). */
#define HTTP_SINK_READ (256L * 1024)

struct http_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct http_engine *e;
  struct http_sock *prev, *next;   /* the engine's list of open sockets */
};

struct http_engine {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  char *user_agent;
  long connect_timeout_ms;
  long timeout_ms;
  size_t max_response;
  STACK_OF(X509) *extra_ca;        /* certificates of tls.ca_file, or NULL */
  struct http_request *reqs;       /* in-flight requests */
  size_t inflight;
  struct http_sock *socks;         /* sockets with a poll handle */
  size_t open_handles;             /* libuv handles not yet closed */
  int depth;                       /* nesting of engine callbacks */
  int closing;                     /* http_engine_close was called */
  int torn_down;                   /* multi cleaned up, handles closing */
  void (*closed)(void *ud);
  void *closed_ud;
};

struct http_request {
  struct http_engine *e;
  CURL *easy;
  char *method;
  char *url;
  struct curl_slist *headers;
  int has_content_type;
  const void *body;
  void *body_owned;
  size_t body_len;
  int has_body;
  long timeout_ms;
  size_t max_response;
  struct http_sink sink;
  int has_sink;
  http_done_cb done;
  void *ud;
  int submitted;
  struct http_request *prev, *next;

  /* Response state. */
  struct buf hdrs;       /* "name\0value\0" pairs of the current response */
  long line_status;      /* status of the response whose headers arrive */
  int headers_done;      /* the final response's headers are complete */
  int streaming;         /* 2xx with a sink: body goes to the sink */
  size_t body_bytes;     /* body bytes received (buffered or streamed) */
  int abort_rc;          /* ERR_* set by a callback that aborted */
  char abort_msg[160];
  char errbuf[CURL_ERROR_SIZE];
  struct http_response resp;
};

static void engine_teardown(struct http_engine *e);

/* Enters an engine callback: a close requested inside it is deferred. */
static void
engine_enter(struct http_engine *e)
{
  e->depth++;
}

/* Leaves an engine callback, running a deferred teardown at the outermost. */
static void
engine_leave(struct http_engine *e)
{
  e->depth--;
  if(e->depth == 0 && e->closing && !e->torn_down)
    engine_teardown(e);
}

/* Counts a closed libuv handle; the last one frees a closing engine. */
static void
engine_handle_closed(struct http_engine *e)
{
  void (*closed)(void *ud);
  void *ud;

  e->open_handles--;
  if(!e->torn_down || e->open_handles)
    return;
  closed = e->closed;
  ud = e->closed_ud;
  if(e->extra_ca)
    sk_X509_pop_free(e->extra_ca, X509_free);
  free(e->user_agent);
  free(e);
  curl_global_cleanup();
  if(closed)
    closed(ud);
}

static void
on_sock_closed(uv_handle_t *h)
{
  struct http_sock *hs = h->data;
  struct http_engine *e = hs->e;

  free(hs);
  engine_handle_closed(e);
}

static void
on_timer_closed(uv_handle_t *h)
{
  engine_handle_closed(h->data);
}

/* Unlinks a socket context and starts closing its poll handle. */
static void
sock_close(struct http_sock *hs)
{
  struct http_engine *e = hs->e;

  if(hs->prev)
    hs->prev->next = hs->next;
  else
    e->socks = hs->next;
  if(hs->next)
    hs->next->prev = hs->prev;
  hs->prev = hs->next = NULL;
  /* uv_poll_stop cannot fail on a valid handle; closing stops it anyway. */
  (void)uv_poll_stop(&hs->poll);
  uv_close((uv_handle_t *)&hs->poll, on_sock_closed);
}

/* Frees a request and everything it owns. The easy handle is already out of
   the multi handle (or was never in it). */
static void
request_free(struct http_request *r)
{
  if(r->easy)
    curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  free(r->body_owned);
  free(r->method);
  free(r->url);
  buf_free(&r->hdrs);
  buf_free(&r->resp.body);
  free(r);
}

/* Sets the abort code and message of a request from inside a callback. */
static void
request_abort(struct http_request *r, int rc, const char *msg)
{
  if(r->abort_rc)
    return;
  r->abort_rc = rc;
  snprintf(r->abort_msg, sizeof(r->abort_msg), "%s", msg);
}

static int
map_curl_code(CURLcode code)
{
  switch(code) {
  case CURLE_OK:
    return 0;
  case CURLE_OUT_OF_MEMORY:
    return ERR_NOMEM;
  case CURLE_FILESIZE_EXCEEDED:
    return ERR_TOOBIG;
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_BAD_FUNCTION_ARGUMENT:
    return ERR_INVAL;
  default:
    return ERR_NET;
  }
}

/*
 * Finishes a submitted request: takes it out of the multi handle and the
 * engine's list, fills in the response, runs the done callback and frees
 * the request. aborted forces ERR_ABORTED (cancel, shutdown).
 */
static void
request_finish(struct http_request *r, CURLcode code, int aborted)
{
  struct http_engine *e = r->e;
  struct http_response *resp = &r->resp;
  CURLMcode mc;
  double t = 0;
  char where[256];

  mc = curl_multi_remove_handle(e->multi, r->easy);
  if(mc != CURLM_OK)
    log_error(MOD, "curl_multi_remove_handle: %s", curl_multi_strerror(mc));
  if(r->prev)
    r->prev->next = r->next;
  else
    e->reqs = r->next;
  if(r->next)
    r->next->prev = r->prev;
  e->inflight--;

  if(curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &t) == CURLE_OK)
    resp->total_seconds = t;
  resp->request = r;
  resp->curl_code = (int)code;
  resp->status = r->headers_done ? r->line_status : 0;
  if(aborted) {
    resp->result = ERR_ABORTED;
    resp->error = "request cancelled";
    resp->status = 0;
  }
  else if(r->abort_rc) {
    resp->result = r->abort_rc;
    resp->error = r->abort_msg;
  }
  else {
    resp->result = map_curl_code(code);
    if(resp->result == 0 && !r->headers_done) {
      /* A transfer that ended without a final response (HEAD of a broken
         server): report it rather than a bogus status 0 success. */
      resp->result = ERR_NET;
      resp->error = "the server sent no HTTP response";
    }
    else if(resp->result == 0 &&
            (resp->status < 100 || resp->status > 999)) {
      /* curl passes a status line it cannot read ("HTTP/x 1ab"), and the
         body after it, as a response with status 0. Found by
         fuzz_http_response. */
      resp->result = ERR_NET;
      resp->error = "the server sent an invalid HTTP status line";
      resp->status = 0;
    }
    else if(resp->result)
      resp->error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
    else
      resp->error = "";
  }
  if(log_get_level() >= LOG_DEBUG) {
    http_url_redact(r->url, where, sizeof(where));
    log_debug(MOD, "%s %s -> %ld (%s) in %.3f s", r->method, where,
              resp->status, resp->result ? resp->error : "ok",
              resp->total_seconds);
  }
  if(r->done)
    r->done(resp, r->ud);
  request_free(r);
}

/* Runs every completion message curl has queued. */
static void
engine_drain(struct http_engine *e)
{
  CURLMsg *msg;
  int left;

  while(!e->torn_down && (msg = curl_multi_info_read(e->multi, &left))) {
    struct http_request *r = NULL;
    CURLcode code;
    CURL *easy;

    if(msg->msg != CURLMSG_DONE)
      continue;
    /* The message is invalid once its handle is removed: copy it first. */
    easy = msg->easy_handle;
    code = msg->data.result;
    if(curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r) != CURLE_OK ||
       !r) {
      log_error(MOD, "a finished transfer has no request; dropping it");
      (void)curl_multi_remove_handle(e->multi, easy);
      continue;
    }
    request_finish(r, code, 0);
  }
}

/* Tells curl about activity (or a timeout when fd is CURL_SOCKET_TIMEOUT)
   and runs the completions that follow. */
static void
engine_action(struct http_engine *e, curl_socket_t fd, int flags)
{
  int running = 0;
  CURLMcode mc;

  engine_enter(e);
  if(!e->torn_down) {
    mc = curl_multi_socket_action(e->multi, fd, flags, &running);
    if(mc != CURLM_OK)
      log_error(MOD, "curl_multi_socket_action: %s", curl_multi_strerror(mc));
    engine_drain(e);
  }
  engine_leave(e);
}

static void
on_uv_poll(uv_poll_t *h, int status, int events)
{
  struct http_sock *hs = h->data;
  int flags = 0;

  if(status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if(events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if(events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  /* hs stays allocated until its close callback, even if curl removes the
     socket during this call. */
  engine_action(hs->e, hs->fd, flags);
}

static void
on_uv_timer(uv_timer_t *h)
{
  engine_action(h->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: starts, changes or stops polling a socket. */
static int
on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
               void *socketp)
{
  struct http_engine *e = userp;
  struct http_sock *hs = socketp;
  int events = 0, rc;
  CURLMcode mc;

  (void)easy;
  if(what == CURL_POLL_REMOVE) {
    if(hs) {
      mc = curl_multi_assign(e->multi, fd, NULL);
      if(mc != CURLM_OK)
        log_error(MOD, "curl_multi_assign: %s", curl_multi_strerror(mc));
      sock_close(hs);
    }
    return 0;
  }
  if(!hs) {
    hs = calloc(1, sizeof(*hs));
    if(!hs) {
      /* The transfer cannot be driven; its timeout will end it. */
      log_error(MOD, "out of memory for a socket context");
      return 0;
    }
    hs->fd = fd;
    hs->e = e;
    rc = uv_poll_init_socket(e->loop, &hs->poll, fd);
    if(rc < 0) {
      log_error(MOD, "uv_poll_init_socket: %s", uv_strerror(rc));
      free(hs);
      return 0;
    }
    hs->poll.data = hs;
    e->open_handles++;
    hs->next = e->socks;
    if(e->socks)
      e->socks->prev = hs;
    e->socks = hs;
    mc = curl_multi_assign(e->multi, fd, hs);
    if(mc != CURLM_OK) {
      log_error(MOD, "curl_multi_assign: %s", curl_multi_strerror(mc));
      sock_close(hs);
      return 0;
    }
  }
  if(what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    events |= UV_READABLE;
  if(what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    events |= UV_WRITABLE;
  rc = uv_poll_start(&hs->poll, events, on_uv_poll);
  if(rc < 0)
    log_error(MOD, "uv_poll_start: %s", uv_strerror(rc));
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: (re)arms or stops the single engine timer. */
static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
  struct http_engine *e = userp;
  int rc;

  (void)multi;
  if(timeout_ms < 0) {
    (void)uv_timer_stop(&e->timer);
    return 0;
  }
  /* 0 means "as soon as possible", but never from within this callback. */
  if(timeout_ms == 0)
    timeout_ms = 1;
  rc = uv_timer_start(&e->timer, on_uv_timer, (uint64_t)timeout_ms, 0);
  if(rc < 0) {
    log_error(MOD, "uv_timer_start: %s", uv_strerror(rc));
    return -1;
  }
  return 0;
}

/* CURLOPT_SSL_CTX_FUNCTION: adds tls.ca_file's certificates to the store
   curl loaded from the system bundle, so that they add to it. */
static CURLcode
on_ssl_ctx(CURL *easy, void *sslctx, void *userp)
{
  struct http_engine *e = userp;
  X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)sslctx);

  (void)easy;
  if(!store)
    return CURLE_SSL_CERTPROBLEM;
  for(int i = 0; i < sk_X509_num(e->extra_ca); i++) {
    /* A certificate already in the store (the store may be shared by
       curl's CA cache) is not an error. */
    if(!X509_STORE_add_cert(store, sk_X509_value(e->extra_ca, i)))
      ERR_clear_error();
  }
  return CURLE_OK;
}

/* Reads every certificate of a PEM file. ERR_CONFIG when there is none. */
static int
load_ca_file(const char *path, STACK_OF(X509) **out)
{
  STACK_OF(X509) *sk = NULL;
  BIO *bio = NULL;
  X509 *x;
  int rc = ERR_CONFIG;

  bio = BIO_new_file(path, "r");
  if(!bio) {
    log_error(MOD, "tls.ca_file %s cannot be read", path);
    goto out;
  }
  sk = sk_X509_new_null();
  if(!sk) {
    rc = ERR_NOMEM;
    goto out;
  }
  while((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
    if(!sk_X509_push(sk, x)) {
      X509_free(x);
      rc = ERR_NOMEM;
      goto out;
    }
  }
  ERR_clear_error();   /* the read that ended the loop */
  if(sk_X509_num(sk) == 0) {
    log_error(MOD, "tls.ca_file %s holds no PEM certificate", path);
    goto out;
  }
  *out = sk;
  sk = NULL;
  rc = 0;
out:
  if(sk)
    sk_X509_pop_free(sk, X509_free);
  BIO_free(bio);
  return rc;
}

int
http_engine_create(uv_loop_t *loop, const struct http_engine_opts *opts,
                   struct http_engine **out)
{
  struct http_engine_opts none = { 0 };
  struct http_engine *e = NULL;
  int rc = ERR_NOMEM, curl_inited = 0;
  CURLMcode mc = CURLM_OK;

  *out = NULL;
  if(!loop)
    return ERR_INVAL;
  if(!opts)
    opts = &none;
  if(curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    rc = ERR_INVAL;
    goto out;
  }
  curl_inited = 1;
  e = calloc(1, sizeof(*e));
  if(!e)
    goto out;
  e->loop = loop;
  e->user_agent = strdup(opts->user_agent ? opts->user_agent
                                          : "spectra-sentinel/" SS_VERSION);
  if(!e->user_agent)
    goto out;
  e->connect_timeout_ms = opts->connect_timeout_ms > 0
    ? opts->connect_timeout_ms : HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
  e->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms
                                       : HTTP_DEFAULT_TIMEOUT_MS;
  e->max_response = opts->max_response_bytes ? opts->max_response_bytes
                                             : HTTP_DEFAULT_MAX_RESPONSE_BYTES;
  if(opts->ca_file && opts->ca_file[0]) {
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);

    if(!vi->ssl_version || strncmp(vi->ssl_version, "OpenSSL", 7)) {
      log_error(MOD, "tls.ca_file needs libcurl built with OpenSSL (this "
                "one uses %s)", vi->ssl_version ? vi->ssl_version : "no TLS");
      rc = ERR_CONFIG;
      goto out;
    }
    rc = load_ca_file(opts->ca_file, &e->extra_ca);
    if(rc)
      goto out;
    rc = ERR_NOMEM;
  }
  e->multi = curl_multi_init();
  if(!e->multi) {
    rc = ERR_INVAL;
    goto out;
  }
  if((mc = curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION,
                             on_curl_socket)) != CURLM_OK ||
     (mc = curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e)) != CURLM_OK ||
     (mc = curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION,
                             on_curl_timer)) != CURLM_OK ||
     (mc = curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e)) != CURLM_OK ||
     (mc = curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                             opts->max_host_connections > 0
                               ? opts->max_host_connections
                               : HTTP_DEFAULT_MAX_HOST_CONNECTIONS))
       != CURLM_OK) {
    log_error(MOD, "curl_multi_setopt: %s", curl_multi_strerror(mc));
    rc = ERR_INVAL;
    goto out;
  }
  if(uv_timer_init(loop, &e->timer) < 0) {
    rc = ERR_INVAL;
    goto out;
  }
  e->timer.data = e;
  e->open_handles = 1;
  *out = e;
  return 0;
out:
  if(e) {
    if(e->multi)
      curl_multi_cleanup(e->multi);
    if(e->extra_ca)
      sk_X509_pop_free(e->extra_ca, X509_free);
    free(e->user_agent);
    free(e);
  }
  if(curl_inited)
    curl_global_cleanup();
  return rc;
}

/* Cleans up the multi handle and starts closing every libuv handle. */
static void
engine_teardown(struct http_engine *e)
{
  CURLMcode mc;

  e->torn_down = 1;
  /* Cleanup may report CURL_POLL_REMOVE for pooled connections; sockets it
     does not report are closed below. */
  mc = curl_multi_cleanup(e->multi);
  if(mc != CURLM_OK)
    log_error(MOD, "curl_multi_cleanup: %s", curl_multi_strerror(mc));
  e->multi = NULL;
  while(e->socks)
    sock_close(e->socks);
  (void)uv_timer_stop(&e->timer);
  uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}

void
http_engine_close(struct http_engine *e, void (*closed)(void *ud), void *ud)
{
  if(!e || e->closing)
    return;
  e->closing = 1;
  e->closed = closed;
  e->closed_ud = ud;
  engine_enter(e);
  while(e->reqs)
    request_finish(e->reqs, CURLE_OK, 1);
  engine_leave(e);   /* tears down now, or when the outer callback ends */
}

void
http_engine_destroy(struct http_engine *e)
{
  http_engine_close(e, NULL, NULL);
}

size_t
http_engine_inflight(const struct http_engine *e)
{
  return e ? e->inflight : 0;
}

int
http_request_create(struct http_engine *e, const char *method,
                    const char *url, struct http_request **out)
{
  struct http_request *r;

  *out = NULL;
  if(!e || !method || !url || !method[0] || !url[0])
    return ERR_INVAL;
  r = calloc(1, sizeof(*r));
  if(!r)
    return ERR_NOMEM;
  r->e = e;
  r->method = strdup(method);
  r->url = strdup(url);
  r->timeout_ms = e->timeout_ms;
  r->max_response = e->max_response;
  buf_init(&r->hdrs, HTTP_MAX_HEADER_BYTES);
  buf_init(&r->resp.body, r->max_response);
  if(!r->method || !r->url) {
    request_free(r);
    return ERR_NOMEM;
  }
  *out = r;
  return 0;
}

void
http_request_destroy(struct http_request *r)
{
  if(!r)
    return;
  if(r->submitted) {
    log_error(MOD, "http_request_destroy on a submitted request; ignored");
    return;
  }
  request_free(r);
}

int
http_request_add_header(struct http_request *r, const char *name,
                        const char *value)
{
  struct curl_slist *l;
  struct buf line;
  int rc;

  if(!name || !value || !name[0] || strpbrk(name, "\r\n:") ||
     strpbrk(value, "\r\n"))
    return ERR_INVAL;
  buf_init(&line, HTTP_MAX_HEADER_BYTES);
  /* curl sends "Name;" as an empty header and "Name:" removes one. */
  rc = value[0] ? buf_printf(&line, "%s: %s", name, value)
                : buf_printf(&line, "%s;", name);
  if(rc)
    goto out;
  l = curl_slist_append(r->headers, line.data);
  if(!l) {
    rc = ERR_NOMEM;
    goto out;
  }
  r->headers = l;
  if(!strcasecmp(name, "Content-Type"))
    r->has_content_type = 1;
out:
  buf_free(&line);
  return rc;
}

void
http_request_set_body(struct http_request *r, const void *data, size_t len)
{
  free(r->body_owned);
  r->body_owned = NULL;
  r->body = data;
  r->body_len = len;
  r->has_body = 1;
}

void
http_request_set_body_owned(struct http_request *r, void *data, size_t len)
{
  free(r->body_owned);
  r->body_owned = data;
  r->body = data;
  r->body_len = len;
  r->has_body = 1;
}

void
http_request_set_timeout(struct http_request *r, long timeout_ms)
{
  if(timeout_ms > 0)
    r->timeout_ms = timeout_ms;
}

void
http_request_set_max_response(struct http_request *r, size_t max)
{
  if(max) {
    r->max_response = max;
    r->resp.body.max = max;
  }
}

void
http_request_set_sink(struct http_request *r, const struct http_sink *sink)
{
  if(sink) {
    r->sink = *sink;
    r->has_sink = 1;
  }
  else
    r->has_sink = 0;
}

const char *
http_request_url(const struct http_request *r)
{
  return r->url;
}

/* Called when the final response's headers are complete. Returns 0 to go
   on, or an ERR_* code (with the abort recorded) to stop the transfer. */
static int
headers_complete(struct http_request *r)
{
  const char *cl;
  int rc;

  r->headers_done = 1;
  r->resp.status = r->line_status;
  r->resp.request = r;
  r->resp.error = "";
  cl = http_response_header(&r->resp, "Content-Length");
  if(cl && strcasecmp(r->method, "HEAD")) {
    char *end;
    unsigned long long n = strtoull(cl, &end, 10);

    if(end != cl && (unsigned long long)r->max_response < n) {
      char msg[128];

      snprintf(msg, sizeof(msg), "response of %llu bytes is over the cap of "
               "%zu bytes", n, r->max_response);
      request_abort(r, ERR_TOOBIG, msg);
      return ERR_TOOBIG;
    }
  }
  if(r->has_sink && r->line_status >= 200 && r->line_status < 300) {
    r->streaming = 1;
    if(r->sink.headers) {
      rc = r->sink.headers(r->sink.ud, &r->resp);
      if(rc < 0) {
        char msg[128];

        snprintf(msg, sizeof(msg), "refused by the response consumer: %s",
                 err_str(rc));
        request_abort(r, rc, msg);
        return rc;
      }
    }
  }
  else if(r->has_sink && r->resp.body.max > HTTP_ERROR_BODY_MAX)
    r->resp.body.max = HTTP_ERROR_BODY_MAX;
  return 0;
}

/* CURLOPT_HEADERFUNCTION: records the header lines of the final response. */
static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
  struct http_request *r = ud;
  size_t len = size * n, nlen;
  const char *colon, *v, *end;

  if(r->abort_rc)
    return 0;
  end = p + len;
  while(end > p && (end[-1] == '\n' || end[-1] == '\r'))
    end--;
  if(len >= 5 && !memcmp(p, "HTTP/", 5)) {
    /* A new response (an interim 1xx, or the final one): start over. */
    const char *sp = memchr(p, ' ', (size_t)(end - p));

    buf_reset(&r->hdrs);
    r->line_status = sp ? strtol(sp + 1, NULL, 10) : 0;
    return len;
  }
  if(end == p) {
    /* The blank line ending a header block. */
    if(r->line_status >= 200 && !r->headers_done &&
       headers_complete(r) < 0)
      return 0;
    return len;
  }
  if(*p == ' ' || *p == '\t')
    return len;   /* an obsolete folded line: not needed by any client */
  colon = memchr(p, ':', (size_t)(end - p));
  if(!colon)
    return len;
  nlen = (size_t)(colon - p);
  v = colon + 1;
  while(v < end && (*v == ' ' || *v == '\t'))
    v++;
  while(end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if(buf_append(&r->hdrs, p, nlen) || buf_putc(&r->hdrs, '\0') ||
     buf_append(&r->hdrs, v, (size_t)(end - v)) ||
     buf_putc(&r->hdrs, '\0')) {
    request_abort(r, ERR_TOOBIG, "response headers over the size cap");
    return 0;
  }
  return len;
}

/* CURLOPT_WRITEFUNCTION: buffers the body, or streams a 2xx one to the sink,
   within the response cap. */
static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
  struct http_request *r = ud;
  size_t len = size * n;
  int rc;

  if(r->abort_rc)
    return 0;
  if(!r->headers_done && headers_complete(r) < 0)
    return 0;
  if(len > r->max_response || r->body_bytes > r->max_response - len) {
    char msg[128];

    snprintf(msg, sizeof(msg), "response body over the cap of %zu bytes",
             r->max_response);
    request_abort(r, ERR_TOOBIG, msg);
    return 0;
  }
  r->body_bytes += len;
  if(r->streaming) {
    rc = r->sink.write(r->sink.ud, p, len);
    if(rc < 0) {
      char msg[128];

      snprintf(msg, sizeof(msg), "response consumer failed: %s", err_str(rc));
      request_abort(r, rc, msg);
      return 0;
    }
    return len;
  }
  rc = buf_append(&r->resp.body, p, len);
  if(rc) {
    char msg[128];

    snprintf(msg, sizeof(msg), "response body over the cap of %zu bytes",
             r->resp.body.max);
    request_abort(r, rc, rc == ERR_TOOBIG ? msg : "out of memory");
    return 0;
  }
  return len;
}

/* Applies every option of r to a new easy handle. */
static int
request_setup(struct http_request *r)
{
  struct http_engine *e = r->e;
  struct curl_slist *l;
  CURLcode c = CURLE_OK;
  CURL *h;

  /* No 100-continue round trip, and no form Content-Type on a body. */
  l = curl_slist_append(r->headers, "Expect:");
  if(!l)
    return ERR_NOMEM;
  r->headers = l;
  if(r->has_body && !r->has_content_type) {
    l = curl_slist_append(r->headers, "Content-Type:");
    if(!l)
      return ERR_NOMEM;
    r->headers = l;
  }
  h = r->easy = curl_easy_init();
  if(!h)
    return ERR_NOMEM;
#define SET(opt, val) \
  do { if(c == CURLE_OK) c = curl_easy_setopt(h, opt, val); } while(0)
  SET(CURLOPT_URL, r->url);
  SET(CURLOPT_PRIVATE, (char *)r);
  SET(CURLOPT_ERRORBUFFER, r->errbuf);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_USERAGENT, e->user_agent);
  SET(CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
  SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  SET(CURLOPT_HTTPHEADER, r->headers);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, r);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, r);
  /* A streamed body (a blob download) is read HTTP_SINK_READ bytes per
     recv instead of curl's default 16 KiB: on the bench's 101 MB of
     reports that took recv calls from about 6,500 to 850 and curl's
     zero-timeout polls from 6,900 to 1,300. The buffer lives as long as
     the request; the daemon runs at most source.download_concurrency
     downloads (8 by default: 2 MiB). */
  if(r->has_sink)
    SET(CURLOPT_BUFFERSIZE, HTTP_SINK_READ);
  if(e->extra_ca) {
    SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    SET(CURLOPT_SSL_CTX_DATA, e);
  }
  if(!strcmp(r->method, "HEAD"))
    SET(CURLOPT_NOBODY, 1L);
  else if(!strcmp(r->method, "POST"))
    SET(CURLOPT_POST, 1L);
  else if(strcmp(r->method, "GET"))
    SET(CURLOPT_CUSTOMREQUEST, r->method);
  if(r->has_body) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SET(CURLOPT_POSTFIELDS, r->body ? (const char *)r->body : "");
  }
  else if(!strcmp(r->method, "POST") || !strcmp(r->method, "PUT")) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    SET(CURLOPT_POSTFIELDS, "");
  }
#undef SET
  if(c != CURLE_OK) {
    log_error(MOD, "curl_easy_setopt: %s", curl_easy_strerror(c));
    return c == CURLE_OUT_OF_MEMORY ? ERR_NOMEM : ERR_INVAL;
  }
  return 0;
}

int
http_submit(struct http_request *r, http_done_cb done, void *ud)
{
  struct http_engine *e;
  CURLMcode mc;
  int rc;

  if(!r || r->submitted)
    return ERR_INVAL;
  e = r->e;
  if(e->closing)
    return ERR_ABORTED;
  rc = request_setup(r);
  if(rc) {
    if(r->easy) {
      curl_easy_cleanup(r->easy);
      r->easy = NULL;
    }
    return rc;
  }
  r->done = done;
  r->ud = ud;
  mc = curl_multi_add_handle(e->multi, r->easy);
  if(mc != CURLM_OK) {
    log_error(MOD, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    return mc == CURLM_OUT_OF_MEMORY ? ERR_NOMEM : ERR_INVAL;
  }
  r->submitted = 1;
  r->next = e->reqs;
  if(e->reqs)
    e->reqs->prev = r;
  e->reqs = r;
  e->inflight++;
  return 0;
}

void
http_request_cancel(struct http_request *r)
{
  struct http_engine *e;

  if(!r || !r->submitted)
    return;
  e = r->e;
  engine_enter(e);
  request_finish(r, CURLE_OK, 1);
  engine_leave(e);
}

const char *
http_response_header(const struct http_response *resp, const char *name)
{
  const struct http_request *r = resp ? resp->request : NULL;
  const char *p, *end, *found = NULL;

  if(!r || !r->hdrs.data)
    return NULL;
  p = r->hdrs.data;
  end = p + r->hdrs.len;
  while(p < end) {
    const char *v = p + strlen(p) + 1;

    if(v >= end)
      break;
    if(!strcasecmp(p, name))
      found = v;
    p = v + strlen(v) + 1;
  }
  return found;
}

char *
http_url_redact(const char *url, char *out, size_t size)
{
  const char *p = url, *auth, *at, *stop;
  size_t n = 0;

  if(!size)
    return out;
  out[0] = '\0';
  if(!url)
    return out;
  auth = strstr(url, "://");
  if(auth && !memchr(url, '?', (size_t)(auth - url))) {
    auth += 3;
    n = (size_t)(auth - url);
    if(n >= size)
      n = size - 1;
    memcpy(out, url, n);
    stop = auth + strcspn(auth, "/?#");
    /* Drop user info (user:password@) from the authority. */
    at = NULL;
    for(const char *q = auth; q < stop; q++)
      if(*q == '@')
        at = q;
    p = at ? at + 1 : auth;
  }
  stop = p + strcspn(p, "?#");
  while(p < stop && n + 1 < size)
    out[n++] = *p++;
  out[n] = '\0';
  return out;
}
