/*
 * storage_conn.h: Azure Storage connection strings.
 *
 * A connection string is "Key=Value;Key=Value;..." with the keys
 * DefaultEndpointsProtocol, AccountName, AccountKey, EndpointSuffix,
 * BlobEndpoint, SharedAccessSignature (and the other services' endpoints,
 * which are accepted and ignored), or the shorthand UseDevelopmentStorage=
 * true for the emulator (account devstoreaccount1 with its well-known key at
 * http://127.0.0.1:10000/devstoreaccount1; a BlobEndpoint next to it
 * overrides the address, for an emulator on another port). Keys compare
 * case-insensitively; a value may contain '=' (SAS tokens do).
 *
 * Error messages name the offending key, never a value: the values include
 * secrets.
 */
#ifndef SS_STORAGE_CONN_H
#define SS_STORAGE_CONN_H

#include <stddef.h>

/* The emulator's well-known account and key (public, documented). */
#define STORAGE_DEV_ACCOUNT "devstoreaccount1"
#define STORAGE_DEV_KEY \
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/" \
  "K1SZFPTOtr/KBHBeksoGMGw=="
#define STORAGE_DEV_BLOB_ENDPOINT "http://127.0.0.1:10000/devstoreaccount1"

/* A parsed connection string. Every string is owned by the struct. */
struct storage_conn {
  char *blob_endpoint;   /* without a trailing '/' */
  char *account;         /* AccountName, or derived from the endpoint;
                            NULL when it cannot be known */
  char *account_key;     /* base64, or NULL */
  char *sas;             /* without a leading '?', or NULL */
};

/*
 * Parses s into *out (zeroed first). On failure returns ERR_CONFIG with a
 * sentence in err (errlen bytes) and leaves *out empty. The caller frees a
 * successful result with storage_conn_free.
 */
int storage_conn_parse(const char *s, struct storage_conn *out, char *err,
                       size_t errlen);

/* Frees the strings of c and zeroes it. NULL is a no-op. */
void storage_conn_free(struct storage_conn *c);

/*
 * Derives the account name from a blob endpoint: the first label of the
 * host for https://ACCOUNT.blob.SUFFIX, or the first path segment for a
 * path-style URL (http://127.0.0.1:10000/ACCOUNT). Returns a new string
 * owned by the caller, or NULL when there is none (or out of memory).
 */
char *storage_conn_account_from_endpoint(const char *endpoint);

#endif
