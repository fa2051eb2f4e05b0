/*
 * err.h: the error codes every spectra-sentinel module returns.
 *
 * Functions return 0 on success or one of these negative codes; outputs go
 * through out-parameters. The set is small on purpose: a code says what kind
 * of failure happened (so callers can decide to retry, reject or stop), and
 * a module-specific error struct or log line carries the details.
 */
#ifndef SS_ERR_H
#define SS_ERR_H

enum {
  ERR_OK = 0,
  ERR_NOMEM = -1,     /* an allocation failed */
  ERR_INVAL = -2,     /* an argument or state the caller should not pass */
  ERR_IO = -3,        /* a read, write, fsync or rename failed (errno kept) */
  ERR_PARSE = -4,     /* input that is not what its format requires */
  ERR_TOOBIG = -5,    /* input or output over its configured size cap */
  ERR_CONFIG = -6,    /* an invalid configuration */
  ERR_NOTFOUND = -7,  /* a file, blob, key or container that does not exist */
  ERR_AUTH = -8,      /* credentials refused or missing */
  ERR_NET = -9,       /* a connection, TLS or timeout failure (retryable) */
  ERR_HTTP = -10,     /* an HTTP status that the caller must look at */
  ERR_CHANGED = -11,  /* the object changed while it was read (ETag) */
  ERR_ABORTED = -12,  /* the operation was cancelled (shutdown) */
  ERR_AGAIN = -13,    /* temporarily unavailable; try again later */
  ERR_LAST = -14
};

/* Returns a static, human-readable description of an error code. Never NULL. */
const char *err_str(int code);

#endif
