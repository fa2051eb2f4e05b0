/*
 * storage.h: the Azure Blob Storage client of the daemon (SPEC section 5).
 *
 * Operations on one container: list (one page, or every page with prefix,
 * name-suffix and directory-marker filtering), get (streamed into a capped
 * buffer or a caller's sink, with If-Match), and delete (with If-Match).
 * Everything runs on the HTTP engine's loop and completes through a
 * callback; nothing blocks.
 *
 * Authentication, one of: Shared Key (the account key signs each request),
 * a SAS token (appended to every URL), a connection string (which yields
 * one of those two), or an Entra ID bearer token from a token provider (the
 * credentials module; scope https://storage.azure.com/.default).
 *
 * Retry policy (decided here, so callers need none for transient faults):
 * connection errors, timeouts, 408, 429 and 5xx are retried with capped
 * exponential backoff and full jitter (backoff.h), up to max_attempts
 * attempts in all; then the operation fails with ERR_NET (no response) or
 * ERR_AGAIN (the service kept answering with a transient status), and the
 * caller tries again at its next poll. A streamed get whose sink already
 * received bytes is not retried (the sink cannot take them twice): it fails
 * with ERR_NET and the caller retries the blob. A 401 under Entra ID drops
 * the cached token and retries once at once.
 *
 * Results carry an error code (err.h) and a message for operators that
 * names the auth method in use and what to check:
 *   ERR_AUTH      403/401 (AuthenticationFailed, AuthorizationFailure,
 *                 AuthorizationPermissionMismatch, ...) or no token
 *   ERR_NOTFOUND  missing container, or a blob deleted after it was listed
 *   ERR_CHANGED   412: the blob changed since it was listed (ETag)
 *   ERR_TOOBIG    a blob over max_bytes, refused from its Content-Length
 *                 without reading it (or stopped at the cap while streaming)
 *   ERR_PARSE     a listing that is not valid List Blobs XML (with location)
 *   ERR_NET, ERR_AGAIN  transient, after the retries above
 *   ERR_HTTP      any other status (the service's code and message kept)
 *   ERR_ABORTED   cancelled, or the client destroyed
 * Messages never contain a key, a SAS token or a URL's query string.
 */
#ifndef SS_STORAGE_H
#define SS_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "blob_list.h"
#include "buf.h"
#include "http.h"

struct storage;
struct storage_op;

enum storage_auth {
  STORAGE_AUTH_SHARED_KEY = 0,
  STORAGE_AUTH_SAS,
  STORAGE_AUTH_ENTRA
};

/*
 * Hands a token request's outcome to the storage client: rc 0 with token
 * (borrowed for the call), or a negative ERR_* with a message for operators
 * (borrowed; must not contain secrets).
 */
typedef void (*storage_token_cb)(void *req, int rc, const char *token,
                                 const char *error);

/*
 * An Entra ID token source, filled in by the credentials module. get() must
 * eventually call cb(req, ...) exactly once (it may do so before returning)
 * and return 0, or return a negative ERR_* without calling cb. invalidate
 * (optional) drops a cached token that the service refused.
 */
struct storage_token_provider {
  int (*get)(void *ud, storage_token_cb cb, void *req);
  void (*invalidate)(void *ud);
  void *ud;                     /* borrowed; outlives the client */
};

struct storage_opts {
  const char *connection_string;  /* if set: endpoint, account and key or
                                     SAS come from it; auth is ignored */
  const char *endpoint;           /* blob endpoint; NULL: from account as
                                     https://ACCOUNT.blob.core.windows.net */
  const char *account;            /* needed for Shared Key */
  enum storage_auth auth;
  const char *account_key;        /* base64, for Shared Key */
  const char *sas_token;          /* with or without a leading '?' */
  struct storage_token_provider token;   /* for STORAGE_AUTH_ENTRA */
  const char *container;          /* required */
  long timeout_ms;                /* list/delete request time limit;
                                     0: 60 s */
  long get_timeout_ms;            /* get request time limit; 0: 600 s */
  unsigned max_attempts;          /* attempts per operation; 0: 6 */
  uint64_t backoff_base_ms;       /* 0: 1 s */
  uint64_t backoff_cap_ms;        /* 0: 60 s */
};

/* The outcome of an operation, valid during its callback. */
struct storage_result {
  int rc;               /* 0 or a negative ERR_* (see above) */
  long status;          /* the last HTTP status, 0 when none */
  char code[64];        /* the service's error code (x-ms-error-code) */
  char message[640];    /* for operators; "" on success */
};

/*
 * Creates a client that sends through http (borrowed; must outlive the
 * client) and uses loop for retry timers. All strings of opts are copied.
 * Secrets (key, SAS) are registered with log_secret_add. On failure
 * returns ERR_CONFIG (with a sentence in err, errlen bytes; never a secret
 * value) or ERR_NOMEM. *out is owned by the caller: storage_destroy.
 */
int storage_create(struct http_engine *http, uv_loop_t *loop,
                   const struct storage_opts *opts, struct storage **out,
                   char *err, size_t errlen);

/*
 * Cancels every operation in flight (their callbacks run with ERR_ABORTED
 * before this returns) and frees the client. Memory of the operations'
 * timers is released by the loop afterwards, so run it before
 * uv_loop_close. NULL is a no-op.
 */
void storage_destroy(struct storage *s);

/* "Shared Key", "SAS token" or "Entra ID": the method in use (static). */
const char *storage_auth_name(const struct storage *s);

/* The blob endpoint in use, without query (owned by the client). */
const char *storage_endpoint(const struct storage *s);

/*
 * Lists one page: prefix and marker may be NULL or "", maxresults 0 lets
 * the service choose (at most 5000). cb gets the page (owned by the
 * client; the callback may take its contents by copying the struct and
 * zeroing *page) or NULL on failure. Directory markers are flagged, not
 * removed. op (may be NULL) receives a handle valid until cb runs.
 */
typedef void (*storage_list_cb)(const struct storage_result *res,
                                struct blob_page *page, void *ud);
int storage_list_page(struct storage *s, const char *prefix,
                      const char *marker, unsigned maxresults,
                      storage_list_cb cb, void *ud, struct storage_op **op);

/* What storage_list_all lists. Strings and the array are copied. */
struct storage_list_filter {
  const char *prefix;                /* NULL or "": the whole container */
  const char *const *suffixes;       /* names must end with one of these;
                                        none: every name */
  size_t nsuffixes;
  unsigned maxresults;               /* per page; 0: service default */
};

/*
 * Called once per page of storage_list_all with the entries that passed
 * the filter (directory markers removed), page->next_marker telling where
 * the listing stands. The page is owned by the client; the callback may
 * take its contents as in storage_list_cb. Returning a negative ERR_*
 * stops the listing with that code.
 */
typedef int (*storage_page_cb)(void *ud, struct blob_page *page);
typedef void (*storage_done_cb)(const struct storage_result *res, void *ud);

/*
 * Lists every page until NextMarker is empty, then calls done once. The
 * counts of skipped directory markers and suffix mismatches are logged at
 * debug level.
 */
int storage_list_all(struct storage *s, const struct storage_list_filter *f,
                     storage_page_cb page_cb, storage_done_cb done, void *ud,
                     struct storage_op **op);

/*
 * Downloads blob name (not encoded; copied). etag (may be NULL) is sent as
 * If-Match, quoted if need be. A blob over max_bytes (0: no cap beyond the
 * engine's) is refused with ERR_TOOBIG from its Content-Length before any
 * byte is read, and stopped at the cap otherwise. Without a sink the body
 * goes into a buffer that cb may take with buf_detach (body is NULL on
 * failure); with sink (copied; sink->ud borrowed) the bytes go there and
 * body is empty.
 */
typedef void (*storage_get_cb)(const struct storage_result *res,
                               struct buf *body, void *ud);
int storage_get(struct storage *s, const char *name, const char *etag,
                size_t max_bytes, const struct http_sink *sink,
                storage_get_cb cb, void *ud, struct storage_op **op);

/* Deletes blob name (and its snapshots) if its ETag is still etag. */
int storage_delete(struct storage *s, const char *name, const char *etag,
                   storage_done_cb cb, void *ud, struct storage_op **op);

/*
 * Cancels an operation whose callback has not run: it runs now with
 * ERR_ABORTED, and op is invalid afterwards.
 */
void storage_cancel(struct storage_op *op);

#endif
