/*
 * token_parse.h: the JSON answers of token endpoints (SPEC section 4).
 *
 * One parser serves every source of tokens, because they answer in the same
 * family of shapes:
 *   Entra ID v2.0:  {"token_type":"Bearer","expires_in":3599,
 *                    "access_token":"..."}
 *   IMDS, Arc, App Service:  {"access_token":"...","expires_on":"1700003600",
 *                    "expires_in":"86399","resource":"...","token_type":
 *                    "Bearer"}  (numbers as strings; expires_on also as an
 *                    RFC 3339 time)
 * and their errors:
 *   {"error":"invalid_client","error_description":"AADSTS7000215: ..."}
 *   {"error":{"code":"...","message":"..."}}
 *   {"statusCode":400,"message":"...","correlationId":"..."}  (App Service)
 *
 * Secrets: nothing taken from a body that carries an access token ever
 * reaches the error text (not even the JSON parser's "near '...'" excerpt);
 * the description of an error body is scrubbed with log_scrub() and cut to
 * fit, so it can be logged.
 */
#ifndef SS_TOKEN_PARSE_H
#define SS_TOKEN_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Longest access token accepted; real ones are 1.5 to 4 KiB. */
#define TOKEN_MAX_LEN (32 * 1024)
/* Longest lifetime believed: one year. Longer means a broken answer. */
#define TOKEN_MAX_LIFETIME (366 * 86400)

struct token_result {
  char *access_token;  /* owned; free with token_result_free() */
  int64_t expires_at;  /* Unix seconds */
  int64_t lifetime;    /* seconds from now to expires_at at parse time */
  int64_t refresh_at;  /* Unix seconds from refresh_in, or 0 when absent */
};

/* Why a body was refused. */
struct token_error {
  char code[64];      /* the service's error code ("invalid_client"), or ""
                         when the body is not an error document */
  char text[400];     /* what went wrong, for a log line; no secret */
  int line;           /* 1-based location of a JSON syntax error, else 0 */
  int column;
};

/*
 * Parses the body (len bytes, borrowed; need not be NUL-terminated) of a
 * token response received at Unix time now. Returns:
 *   0          *out filled (the caller owns out->access_token);
 *   ERR_AUTH   an error document: err->code and err->text hold its code and
 *              description;
 *   ERR_PARSE  not JSON, not an object, or a success body whose fields are
 *              missing or invalid (err->text says which field, never its
 *              value; line/column locate a syntax error);
 *   ERR_TOOBIG an access token over TOKEN_MAX_LEN;
 *   ERR_NOMEM.
 * expires_in wins over expires_on when both are present, because it does
 * not depend on the two clocks agreeing. err may be NULL.
 */
int token_parse(const char *body, size_t len, int64_t now,
                struct token_result *out, struct token_error *err);

/* Wipes and frees the token inside r (r itself is the caller's). */
void token_result_free(struct token_result *r);

#endif
