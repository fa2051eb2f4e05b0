/*
 * checkpoint.h: which blobs are done, kept crash-safe on disk (SPEC section 6).
 *
 * A blob's identity is (name, ETag): a changed ETag is a new report. A blob is
 * done when all its records were acknowledged or dead-lettered, or when it
 * failed as bad input.
 *
 * On disk, in the state directory:
 *   checkpoint.snap     a snapshot: header, one line per entry, trailer with
 *                       the entry count and a CRC of the whole file; written
 *                       to a temp file, fsync'ed, renamed, directory fsync'ed
 *   checkpoint.journal  an append-only journal of lines, each with its own
 *                       CRC, replayed over the snapshot at load
 * A torn final journal line (a crash in the middle of a write: no newline, or
 * zero bytes a file system left after a power loss) is expected and ignored.
 * Anything else that does not check out (a complete line with a bad CRC, a
 * snapshot without its trailer, an unknown version) is corruption: the load
 * fails with a message naming the file and line, and the daemon refuses to
 * start rather than re-ingest everything.
 *
 * Bounded state: a Last-Modified watermark W (monotone) says that every blob
 * modified before W - grace is done. The daemon moves W to the Last-Modified
 * of the oldest unfinished blob it listed (or the newest listed, when every
 * listed blob is done); entries older than W - grace are pruned. So state
 * grows with the blobs modified within the grace window of the oldest
 * unfinished one, not with the container. A floor F (start_from) says that
 * every blob modified before F is skipped.
 *
 * The functions do blocking file I/O (write, fdatasync, rename): the daemon
 * calls them on the thread pool, never on the loop thread, and never from
 * two threads at once (the object has no lock).
 */
#ifndef SS_CHECKPOINT_H
#define SS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_SNAPSHOT "checkpoint.snap"
#define CHECKPOINT_JOURNAL "checkpoint.journal"

struct checkpoint;

struct checkpoint_opts {
  const char *dir;          /* the state directory (borrowed, created 0700) */
  int64_t grace;            /* seconds (state.grace) */
  int64_t start_from;       /* Unix s; blobs modified before are skipped; 0 =
                               beginning. Only used when the state is new: a
                               floor already on disk is kept. */
  uint64_t compact_lines;   /* journal lines that trigger a compaction
                               (0 = 10000) */
  int readonly;             /* load only (the `state` command): take no
                               lock, create and repair nothing; every
                               writing function returns ERR_INVAL */
};

enum checkpoint_state {
  CHECKPOINT_NEW = 0,       /* not done: process it */
  CHECKPOINT_DONE = 1,      /* done (records acknowledged or dead-lettered) */
  CHECKPOINT_FAILED = 2,    /* done: failed as bad input */
  CHECKPOINT_OLD = 3,       /* done by the watermark (older than W - grace) */
  CHECKPOINT_BEFORE_START = 4 /* older than the start_from floor */
};

/* Counts for `spectra-sentinel state` and metrics. */
struct checkpoint_stats {
  uint64_t done;            /* entries in the window marked done */
  uint64_t failed;          /* entries in the window marked failed */
  uint64_t pending;         /* blobs started but not finished (at a crash,
                               these are the ones that may be sent again) */
  uint64_t total_done;      /* blobs committed done since the state began */
  uint64_t total_failed;    /* blobs committed failed since the state began */
  int64_t watermark;        /* W, Unix s (0 before the first listing) */
  int64_t floor;            /* F, Unix s */
  uint64_t journal_lines;   /* lines since the last compaction */
};

/* One entry, for iteration. Borrowed pointers, valid during the callback. */
struct checkpoint_entry {
  const char *name;
  const char *etag;
  int64_t last_modified;
  enum checkpoint_state state; /* DONE, FAILED, or NEW for a pending blob */
  const char *reason;          /* for FAILED, else "" */
  uint64_t records;            /* records sent or dead-lettered, for DONE */
};

/*
 * Loads the state in opts->dir, creating the directory (0700) and a new
 * state when there is none. Returns 0 and *out (owned by the caller, freed
 * with checkpoint_destroy); ERR_PARSE for a corrupt state, with the reason in
 * err (file, line, what is wrong); ERR_IO when the directory or files cannot
 * be read, created or locked (another process holds the state: only one
 * daemon may use a state directory). err (errlen bytes) may be NULL.
 */
int checkpoint_open(const struct checkpoint_opts *opts,
                    struct checkpoint **out, char *err, size_t errlen);

/* Closes the files and frees everything. NULL is a no-op. */
void checkpoint_destroy(struct checkpoint *c);

/* Says what to do with a listed blob. name and etag are borrowed. */
enum checkpoint_state checkpoint_lookup(const struct checkpoint *c,
                                        const char *name, const char *etag,
                                        int64_t last_modified);

/*
 * Records that a blob was started (advisory: not synced; it tells `state` and
 * the next start which blobs were in flight). Returns 0 or ERR_IO/ERR_NOMEM.
 */
int checkpoint_begin(struct checkpoint *c, const char *name, const char *etag,
                     int64_t last_modified);

/*
 * Records that a blob is done (records > 0 or not) or failed (reason != NULL,
 * a one-line text without secrets). The line is written but not synced:
 * call checkpoint_sync() before relying on it (after_ingest: delete, and
 * before telling anyone it is done). Returns 0 or ERR_IO/ERR_NOMEM; after an
 * I/O error the in-memory state is unchanged and the call may be retried.
 */
int checkpoint_commit(struct checkpoint *c, const char *name,
                      const char *etag, int64_t last_modified,
                      uint64_t records, const char *reason);

/*
 * Makes every commit so far durable (fdatasync of the journal), then
 * compacts when the journal is long. Returns 0 or ERR_IO.
 */
int checkpoint_sync(struct checkpoint *c);

/*
 * Moves the watermark to w if w is later (it never moves back), and prunes
 * the entries older than w - grace. Journalled like a commit (call
 * checkpoint_sync). Returns 0 or ERR_IO.
 */
int checkpoint_advance(struct checkpoint *c, int64_t w);

/* Writes a new snapshot and empties the journal. Returns 0 or ERR_IO. */
int checkpoint_compact(struct checkpoint *c);

void checkpoint_get_stats(const struct checkpoint *c,
                          struct checkpoint_stats *st);

/*
 * Calls fn for every entry in the window and every pending blob, in no
 * particular order. Stops at and returns fn's first non-zero result.
 */
int checkpoint_foreach(const struct checkpoint *c,
                       int (*fn)(void *ud, const struct checkpoint_entry *e),
                       void *ud);

#endif
