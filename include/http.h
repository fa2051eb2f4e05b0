/*
 * http.h: the HTTP engine every network client of the daemon uses.
 *
 * One libcurl multi handle is driven by the libuv loop through curl's socket
 * and timer callbacks (the pattern of curl's docs/examples/multi-uv.c), so
 * any number of transfers run concurrently on the loop thread without ever
 * blocking it. Connections are reused across requests to the same host.
 *
 * Threading: every function here must be called on the thread that runs the
 * loop the engine was created on. Callbacks run on that thread.
 *
 * Lifecycle of a request:
 *   http_request_create -> http_request_add_header / _set_* -> http_submit
 *   -> exactly one call of the done callback -> the engine frees the request.
 * A request that is never submitted is freed with http_request_destroy.
 *
 * Security: TLS peer and host verification are always on; tls.ca_file adds
 * certificates to the system trust store, it never replaces it. Redirects are
 * not followed (an Authorization header must never reach another host). The
 * engine never logs a URL's query string (SAS tokens live there) nor any
 * request header; callers that log a URL use http_url_redact().
 *
 * Proxies: libcurl's environment handling applies: https_proxy/HTTPS_PROXY
 * for https URLs, http_proxy (lower case only, by curl's CGI-safety rule)
 * for http URLs, ALL_PROXY, and no_proxy/NO_PROXY.
 */
#ifndef SS_HTTP_H
#define SS_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"

struct http_engine;
struct http_request;

/* Defaults applied when an option is left 0 / NULL. */
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define HTTP_DEFAULT_TIMEOUT_MS 60000L
#define HTTP_DEFAULT_MAX_RESPONSE_BYTES (16u * 1024u * 1024u)
#define HTTP_DEFAULT_MAX_HOST_CONNECTIONS 8L
/* Bytes of response headers kept per request; more fails with ERR_TOOBIG. */
#define HTTP_MAX_HEADER_BYTES (64u * 1024u)

struct http_engine_opts {
  const char *ca_file;          /* extra PEM CA bundle added to the system
                                   store, or NULL/"" for none; read once by
                                   http_engine_create (borrowed) */
  const char *user_agent;       /* NULL: "spectra-sentinel/" SS_VERSION */
  long connect_timeout_ms;      /* 0: HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
  long timeout_ms;              /* default total time of a request,
                                   0: HTTP_DEFAULT_TIMEOUT_MS */
  size_t max_response_bytes;    /* default body cap,
                                   0: HTTP_DEFAULT_MAX_RESPONSE_BYTES */
  long max_host_connections;    /* 0: HTTP_DEFAULT_MAX_HOST_CONNECTIONS */
};

/*
 * What a completed (or failed, or cancelled) request hands to its done
 * callback. The struct and everything it points to are owned by the engine
 * and valid only during the callback; a callback that wants to keep the body
 * takes it with buf_detach(&resp->body, ...).
 */
struct http_response {
  int result;            /* 0 when a complete HTTP response arrived (any
                            status); else ERR_NET (connection, DNS, TLS,
                            timeout), ERR_TOOBIG (body over the cap),
                            ERR_ABORTED (cancelled or engine shut down),
                            ERR_NOMEM, or the negative code a sink callback
                            returned */
  long status;           /* HTTP status code; 0 when none was received */
  struct buf body;       /* the body, unless a sink consumed it (then the
                            body of a non-2xx response only) */
  const char *error;     /* a message for result != 0 (the curl error
                            text, which never contains a query string);
                            "" when result == 0. Never NULL */
  int curl_code;         /* the CURLcode of the transfer, 0 on success */
  double total_seconds;  /* wall time of the transfer */
  struct http_request *request;  /* the request (borrowed) */
};

/* Called exactly once per submitted request; see struct http_response. */
typedef void (*http_done_cb)(struct http_response *resp, void *ud);

/*
 * A streaming body consumer, for downloads that must not be held in memory
 * or that go straight to a parser. The sink only sees the body of a 2xx
 * response; any other status is buffered into resp->body (capped) so that
 * the caller can read the service's error document.
 *
 * headers: optional; called once when the final response's status and
 *   headers are known and before any body byte, with resp->body empty.
 *   Returning a negative ERR_* aborts the transfer with that result (used,
 *   for instance, to refuse a Content-Length over a cap).
 * write: called with each chunk of a 2xx body. A negative ERR_* return
 *   aborts the transfer with that result.
 * The engine still enforces the request's max_response_bytes over the
 * streamed bytes and refuses a Content-Length over it before reading.
 */
struct http_sink {
  int (*headers)(void *ud, const struct http_response *resp);
  int (*write)(void *ud, const void *data, size_t len);
  void *ud;                     /* borrowed, passed to both callbacks */
};

/*
 * Creates an engine on loop (borrowed; it must outlive the engine's close).
 * opts may be NULL for every default; its strings are copied or read during
 * the call. On success *out is owned by the caller and released with
 * http_engine_close or http_engine_destroy. Returns ERR_CONFIG when ca_file
 * cannot be read or holds no certificate, ERR_NOMEM, or ERR_INVAL when curl
 * or libuv refuse setup.
 */
int http_engine_create(uv_loop_t *loop, const struct http_engine_opts *opts,
                       struct http_engine **out);

/*
 * Shuts the engine down: every in-flight request completes with
 * ERR_ABORTED (its done callback runs before this returns), the multi handle
 * is cleaned up, and every libuv handle is closed. The engine's memory is
 * freed in the last close callback, after which closed(ud) runs (closed may
 * be NULL). The caller must keep running the loop until then; afterwards no
 * handle of the engine remains, so uv_loop_close() can return 0.
 * e must not be used after this call. NULL is a no-op.
 */
void http_engine_close(struct http_engine *e, void (*closed)(void *ud),
                       void *ud);

/* http_engine_close without a notification. NULL is a no-op. */
void http_engine_destroy(struct http_engine *e);

/* Number of submitted requests whose done callback has not run yet. */
size_t http_engine_inflight(const struct http_engine *e);

/*
 * Creates a request for method ("GET", "HEAD", "PUT", "POST", "DELETE", ...)
 * and url, both copied. It inherits the engine's timeout and response cap.
 * *out is owned by the caller until http_submit, by the engine afterwards.
 */
int http_request_create(struct http_engine *e, const char *method,
                        const char *url, struct http_request **out);

/*
 * Frees a request that was never submitted (a submitted one is freed by the
 * engine after its done callback). NULL is a no-op.
 */
void http_request_destroy(struct http_request *r);

/*
 * Adds the header "name: value"; both are copied. value may be "" to send an
 * empty header. Names and values must not contain CR or LF (ERR_INVAL).
 * The engine adds User-Agent itself and suppresses "Expect: 100-continue".
 */
int http_request_add_header(struct http_request *r, const char *name,
                            const char *value);

/*
 * Sets the request body to len bytes at data, borrowed: the caller keeps
 * data alive and unchanged until the done callback has run.
 */
void http_request_set_body(struct http_request *r, const void *data,
                           size_t len);

/*
 * Sets the request body to len bytes at data, stolen: the request frees it
 * with free() when it is freed. data must come from malloc.
 */
void http_request_set_body_owned(struct http_request *r, void *data,
                                 size_t len);

/* Sets the total time limit of this request (0 keeps the engine default). */
void http_request_set_timeout(struct http_request *r, long timeout_ms);

/*
 * Sets the response body cap of this request (0 keeps the engine default).
 * It applies to buffered and streamed bodies alike.
 */
void http_request_set_max_response(struct http_request *r, size_t max);

/* Streams a 2xx body to sink (copied by value; sink->ud stays borrowed). */
void http_request_set_sink(struct http_request *r,
                           const struct http_sink *sink);

/* The URL of the request (owned by the request). */
const char *http_request_url(const struct http_request *r);

/*
 * Starts the request. On success the engine owns r and calls done(resp, ud)
 * exactly once, never from within this call. On failure (ERR_NOMEM,
 * ERR_INVAL, ERR_ABORTED when the engine is shutting down) done is never
 * called and r still belongs to the caller.
 */
int http_submit(struct http_request *r, http_done_cb done, void *ud);

/*
 * Cancels a submitted request whose done callback has not run yet: done runs
 * with ERR_ABORTED before this returns, and r is freed. Calling it for a
 * request that already completed is a use after free; callers clear their
 * pointer to r in the done callback.
 */
void http_request_cancel(struct http_request *r);

/*
 * Returns the value of the last response header called name (compared case
 * insensitively), without surrounding whitespace, or NULL. Only headers of
 * the final response count (not those of a 100 Continue). The string is
 * owned by the engine and valid during the done callback (or the sink's
 * headers callback).
 */
const char *http_response_header(const struct http_response *resp,
                                 const char *name);

/*
 * Writes into out (size bytes, NUL-terminated, truncated if need be) a form
 * of url safe for logs: scheme, host, port and path, without user info,
 * query string or fragment. Returns out.
 */
char *http_url_redact(const char *url, char *out, size_t size);

#endif
