/*
 * cred.h: Microsoft Entra ID access tokens for the daemon (SPEC section 4).
 *
 * A provider fetches tokens for one scope with one credential method and
 * shares them between every request: the ingestion client asks for a token
 * per attempt and gets the cached one; storage with `source.auth: entra`
 * uses a second provider built from the same options with the scope
 * https://storage.azure.com/.default.
 *
 * Methods:
 *   client_secret       POST {authority}/{tenant}/oauth2/v2.0/token with
 *                       grant_type=client_credentials, client_id,
 *                       client_secret, scope.
 *   client_certificate  the same POST with client_assertion_type=
 *                       urn:ietf:params:oauth:client-assertion-type:
 *                       jwt-bearer and a JWT signed with the certificate's
 *                       key (jwt.h; PS256 by default, RS256 on request).
 *   workload_identity   the same with the contents of the federated token
 *                       file as the assertion; the file is read anew for
 *                       every token request, because Kubernetes rotates it.
 *   managed_identity    IMDS (GET {imds}/metadata/identity/oauth2/token,
 *                       api-version 2018-02-01, Metadata: true; a user-
 *                       assigned identity by client_id, object_id or
 *                       msi_res_id); App Service when IDENTITY_ENDPOINT and
 *                       IDENTITY_HEADER are set (api-version 2019-08-01,
 *                       X-IDENTITY-HEADER); Azure Arc when IDENTITY_ENDPOINT
 *                       and IMDS_ENDPOINT are set, or the Arc agent's himds
 *                       file exists (api-version 2020-06-01: the first
 *                       request answers 401 with WWW-Authenticate: Basic
 *                       realm=<path>; the path must name a regular file of
 *                       at most 4096 bytes ending in ".key" directly inside
 *                       the Arc token directory, /var/opt/azcmagent/tokens
 *                       in production and cred_opts.arc_key_dir in tests;
 *                       its contents go back as Authorization: Basic).
 *   default             the environment (AZURE_TENANT_ID and AZURE_CLIENT_ID
 *                       with AZURE_CLIENT_SECRET, else
 *                       AZURE_CLIENT_CERTIFICATE_PATH (and
 *                       AZURE_CLIENT_CERTIFICATE_PASSWORD), else
 *                       AZURE_FEDERATED_TOKEN_FILE), else managed identity
 *                       (user-assigned by AZURE_CLIENT_ID when it is set,
 *                       as the Azure SDKs' DefaultAzureCredential does).
 * Values in cred_opts win over the environment; AZURE_AUTHORITY_HOST is used
 * when authority_host is not set.
 *
 * Caching and refresh: a token is refreshed ahead of its expiry, at the
 * earlier of 5 minutes before expiry and half its lifetime (half the
 * lifetime when that rule would fall before the token was issued, for
 * tokens shorter than 5 minutes), or at the service's refresh_in if that is
 * earlier. Until then cred_get_token answers from the cache at once. After
 * the refresh point the cached token is still handed out while one
 * background refresh runs; concurrent callers never start a second one. A
 * failed refresh backs off (backoff.h, base 1 s, cap 60 s) and the old
 * token is used until it expires; a caller that needs a token when there is
 * no valid one, during the back-off, gets the last error at once.
 *
 * Secrets: access tokens, the client secret, the certificate password,
 * federated tokens, the App Service header and Arc keys are registered with
 * log_secret_add(); none is ever formatted into a message (nor are the
 * short-lived signed assertions, which are not registered). Error texts
 * carry the service's error code and description, never a request body.
 *
 * Threading: loop thread only (the provider uses the HTTP engine). No libuv
 * handle is owned, so cred_destroy is immediate.
 */
#ifndef SS_CRED_H
#define SS_CRED_H

#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "jwt.h"

#define CRED_DEFAULT_SCOPE "https://monitor.azure.com//.default"
#define CRED_STORAGE_SCOPE "https://storage.azure.com/.default"
#define CRED_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define CRED_DEFAULT_IMDS "http://169.254.169.254"
#define CRED_DEFAULT_ARC_KEY_DIR "/var/opt/azcmagent/tokens"
#define CRED_DEFAULT_ARC_HIMDS "/opt/azcmagent/bin/himds"
#define CRED_DEFAULT_ARC_ENDPOINT \
  "http://127.0.0.1:40342/metadata/identity/oauth2/token"
#define CRED_DEFAULT_TIMEOUT_MS 30000L
/* The cap on a token endpoint's answer. */
#define CRED_MAX_RESPONSE (64u * 1024u)
/* The cap on a federated token file and an Arc key file. */
#define CRED_MAX_ASSERTION_FILE (64u * 1024u)
#define CRED_ARC_MAX_KEY 4096

enum cred_method {
  CRED_DEFAULT = 0,
  CRED_CLIENT_SECRET,
  CRED_CLIENT_CERTIFICATE,
  CRED_WORKLOAD_IDENTITY,
  CRED_MANAGED_IDENTITY
};

/* Every string is borrowed for the duration of cred_create (copied). NULL
   or "" means unset. */
struct cred_opts {
  enum cred_method method;
  const char *tenant_id;
  const char *client_id;
  const char *client_secret;        /* the secret itself (the config layer
                                       reads client_secret_file) */
  const char *certificate_file;     /* PEM with certificate and key */
  const char *certificate_password;
  enum jwt_alg certificate_alg;     /* JWT_PS256 (default) or JWT_RS256 */
  const char *federated_token_file;
  const char *authority_host;       /* default CRED_DEFAULT_AUTHORITY */
  const char *scope;                /* default CRED_DEFAULT_SCOPE */
  const char *imds_endpoint;        /* default CRED_DEFAULT_IMDS */
  const char *mi_client_id;         /* user-assigned identity, at most one */
  const char *mi_object_id;
  const char *mi_res_id;
  const char *arc_key_dir;          /* default CRED_DEFAULT_ARC_KEY_DIR */
  const char *arc_himds_path;       /* default CRED_DEFAULT_ARC_HIMDS */
  long timeout_ms;                  /* per token request; 0: default */
  uint64_t backoff_base_ms;         /* 0: 1 s */
  uint64_t backoff_cap_ms;          /* 0: 60 s */
};

/* Counters for metrics and `check --online`. */
struct cred_stats {
  uint64_t requests;      /* token requests sent (an Arc challenge counts 1) */
  uint64_t failures;      /* of which failed */
  int64_t expires_at_ms;  /* wall-clock expiry of the cached token, or 0 */
};

struct cred;

/*
 * Receives a token. rc == 0: token is the access token (borrowed, valid
 * during the call only: copy it) and err is "". Otherwise token is NULL and
 * err (borrowed, never NULL) says why: ERR_AUTH refused by the service,
 * ERR_NET unreachable, ERR_PARSE a malformed answer, ERR_CONFIG a bad local
 * file, ERR_ABORTED the provider is being destroyed.
 */
typedef void (*cred_token_cb)(void *ud, int rc, const char *token,
                              const char *err);

/* Parses a method name ("default", "client_secret", ...). 0 or ERR_INVAL. */
int cred_method_parse(const char *s, enum cred_method *out);

/* The name of a method, for logs. */
const char *cred_method_name(enum cred_method m);

/*
 * Creates a provider on loop with the engine http (both borrowed; they must
 * outlive the provider). Resolves the method (the default chain, the kind of
 * managed identity), loads the certificate, and checks that the options the
 * method needs are present; no network request is made. On success *out is
 * owned by the caller (cred_destroy). Returns ERR_CONFIG with a logged
 * reason for missing or contradictory options or an unusable certificate,
 * ERR_NOMEM, ERR_INVAL.
 */
int cred_create(uv_loop_t *loop, struct http_engine *http,
                const struct cred_opts *opts, struct cred **out);

/*
 * Cancels the token request in flight, calls every waiting callback with
 * ERR_ABORTED, wipes the cached token and frees c. NULL is a no-op.
 */
void cred_destroy(struct cred *c);

/*
 * Asks for a token. When the cached token is fresh, cb runs before this
 * returns; otherwise it runs later, once, from the loop (see the file
 * comment for refresh, coalescing and back-off). Returns 0 when cb was or
 * will be called, or ERR_NOMEM / ERR_ABORTED without calling it. ud is
 * borrowed and passed back.
 */
int cred_get_token(struct cred *c, cred_token_cb cb, void *ud);

/*
 * Forgets every waiting callback registered with ud, which then never runs
 * (for a caller that goes away first).
 */
void cred_cancel(struct cred *c, void *ud);

/*
 * Drops the cached token after the service refused it (HTTP 401), so that
 * the next cred_get_token fetches a new one at once (unless a refresh is
 * already running, which is joined). token (borrowed) is the token that was
 * refused: when the cache already holds a newer one, nothing happens, so
 * many requests failing with the same old token cause one refresh only.
 * NULL drops whatever is cached.
 */
void cred_invalidate(struct cred *c, const char *token);

/* The resolved method and source, e.g. "managed_identity (Azure Arc)",
   for logs. Owned by c. */
const char *cred_describe(const struct cred *c);

/* Copies the counters into *out. */
void cred_get_stats(const struct cred *c, struct cred_stats *out);

#endif
