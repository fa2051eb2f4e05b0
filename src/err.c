/*
 * err.c: human-readable names for the shared error codes of err.h.
 */
#include "err.h"

const char *
err_str(int code)
{
  switch(code) {
  case ERR_OK: return "success";
  case ERR_NOMEM: return "out of memory";
  case ERR_INVAL: return "invalid argument";
  case ERR_IO: return "input/output error";
  case ERR_PARSE: return "parse error";
  case ERR_TOOBIG: return "size limit exceeded";
  case ERR_CONFIG: return "invalid configuration";
  case ERR_NOTFOUND: return "not found";
  case ERR_AUTH: return "authentication failed";
  case ERR_NET: return "network error";
  case ERR_HTTP: return "unexpected HTTP status";
  case ERR_CHANGED: return "changed while being read";
  case ERR_ABORTED: return "aborted";
  case ERR_AGAIN: return "temporarily unavailable";
  default: return "unknown error";
  }
}
