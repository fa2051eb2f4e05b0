/*
 * blob_list.h: the List Blobs response parser, and the storage error
 * document parser, on expat.
 *
 * A List Blobs response (EnumerationResults) becomes a page of entries with
 * the properties the pipeline needs, and the NextMarker that continues the
 * listing. ADLS Gen2 directories, which a flat blob listing shows as
 * zero-length blobs with metadata hdi_isfolder=true (or, in newer service
 * versions, ResourceType "directory"), are flagged as directory markers so
 * that callers skip them. Names sent with Encoded="true" (names holding
 * characters XML cannot carry) are percent-decoded.
 *
 * The input is untrusted: document type declarations (and so entities) are
 * refused, nesting is limited, every text field has a size cap, and a
 * failure reports expat's message with the line and column.
 */
#ifndef SS_BLOB_LIST_H
#define SS_BLOB_LIST_H

#include <stddef.h>
#include <stdint.h>

/* Caps on fields of untrusted listings. A blob name is at most 1,024
   characters, so 8 KiB of UTF-8 (or percent-encoding) is plenty. */
#define BLOB_LIST_MAX_FIELD 8192
#define BLOB_LIST_MAX_DEPTH 32
#define BLOB_LIST_MAX_ENTRIES 100000

struct blob_entry {
  char *name;              /* owned; the decoded blob name */
  char *etag;              /* owned; as listed (unquoted, e.g. 0x8DB...) */
  int64_t last_modified;   /* Unix seconds; -1 when absent or unparsable */
  int64_t content_length;  /* bytes; -1 when absent */
  char *content_encoding;  /* owned, or NULL */
  int is_dir_marker;       /* an ADLS directory, not a file */
};

/* One page of a listing. Owned by whoever holds it; blob_page_free. */
struct blob_page {
  struct blob_entry *entries;
  size_t n;
  size_t cap;
  char *next_marker;       /* owned; NULL or "" when the listing is done */
};

/* Where and why parsing failed. */
struct blob_list_error {
  char text[200];
  unsigned long line;
  unsigned long column;
};

/*
 * Parses len bytes of a List Blobs response into *out (initialized here).
 * Returns 0; ERR_PARSE with err filled (err may be NULL) for XML that is
 * malformed, is not an EnumerationResults document, or breaks a cap;
 * ERR_NOMEM. On failure *out is empty.
 */
int blob_list_parse(const char *xml, size_t len, struct blob_page *out,
                    struct blob_list_error *err);

/* Frees every entry and the marker, and empties p. NULL is a no-op. */
void blob_page_free(struct blob_page *p);

/* Removes entry i from p (freeing it), keeping the order of the others. */
void blob_page_remove(struct blob_page *p, size_t i);

/*
 * Extracts Code and Message from an Azure Storage error document
 * (<Error><Code>..</Code><Message>..</Message></Error>) into code and msg,
 * truncated to their sizes. Missing fields come back as "". Returns 0, or
 * ERR_PARSE when the body is not such a document (both left "").
 */
int blob_error_parse(const char *xml, size_t len, char *code,
                     size_t code_size, char *msg, size_t msg_size);

#endif
