/*
 * daemon.c: `spectra-sentinel run`, the polling pipeline of SPEC section 1.
 *
 * The life of a blob (a struct job):
 *
 *   listed --(checkpoint lane: lookup)--> QUEUED
 *   QUEUED --(download slot)--> DOWNLOADING: Get Blob into memory (a blob
 *       of at most MEM_BLOB_MAX bytes, within MEM_BLOBS_BUDGET) or streamed
 *       to a spool file under state.directory/spool (loop thread; writes
 *       land in the page cache, as nginx's proxy buffering does)
 *   --> TRANSFORMING (thread pool): transform -> batcher -> request bodies
 *       kept in memory (within MEM_BODIES_BUDGET) or appended to a second
 *       spool file; records too large for any body are dead-lettered there
 *       and then
 *   --> SHIPPING: each body, in order, is read back and handed to the
 *       destination (at most destination.concurrency bodies at once); the
 *       Logs Ingestion client retries, splits and bisects on its own and
 *       reports per body how many records were acknowledged and how many
 *       dead-lettered
 *   --> COMMITTING (checkpoint lane): the blob is recorded done and synced
 *   --> DELETING (after_ingest: delete, with If-Match) --> freed
 *
 * Bad input (not JSON, no tc_report, over max_blob_bytes) goes from
 * TRANSFORMING straight to COMMITTING as failed, with a dead-letter
 * reference. A transient failure (storage 5xx, network, a blob deleted or
 * changed under us) drops the job uncommitted: the next listing finds the
 * blob again, so nothing is skipped.
 *
 * The checkpoint lane: every checkpoint call (lookups included) runs on the
 * thread pool, one batch of operations at a time, so the loop thread never
 * waits for an fsync and the checkpoint object needs no lock. A batch holds
 * all operations queued while the previous one ran: many commits share one
 * fdatasync (group commit). Begin lines do not ask for a sync of their own:
 * a blob's records wait until a sync covered its begin line.
 *
 * Memory is bounded by configuration: at most MAX_JOBS jobs exist (a job is
 * a few hundred bytes until it downloads), downloads held in memory stay
 * within MEM_BLOBS_BUDGET and the rest stream to disk, request bodies in
 * memory stay within MEM_BODIES_BUDGET and the rest wait on disk (new
 * blobs wait while they pile up), at most
 * pool-size transforms run, and at most 2 * destination.concurrency
 * requests (about max_request_bytes each) are being built or sent.
 *
 * Cost per blob does not grow with the backlog: jobs are found by name in
 * a hash table, the next one to start by a cursor, the ones with bodies to
 * send in a ship queue; a listing round pauses at a page boundary while
 * the job table is full and resumes where it stopped.
 */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "batcher.h"
#include "blob_list.h"
#include "buf.h"
#include "checkpoint.h"
#include "deadletter.h"
#include "err.h"
#include "filesink.h"
#include "fsio.h"
#include "gzip.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"
#include "storage.h"
#include "source.h"
#include "transform.h"
#include "cred.h"

#define MOD "daemon"
#define MAX_JOBS 4096            /* jobs alive at once (backpressure) */
#define MAX_STAGED 256           /* jobs holding spool files (downloading,
                                    transforming or shipping): bounds open
                                    descriptors and spool disk while the
                                    destination is slow or down */
#define JOB_HASH 8191            /* buckets of the job table by name */
#define LIST_PAGE 1000           /* maxresults of one List Blobs page */
#define SOON_MS 200              /* next poll after the work drained */

/*
 * Memory instead of spool files for the common case. A blob of at most
 * MEM_BLOB_MAX bytes (its listed size) downloads into memory while the
 * blobs so held stay within MEM_BLOBS_BUDGET; larger ones, and any beyond
 * the budget, stream to a spool file. Request bodies likewise stay in
 * memory within MEM_BODIES_BUDGET and go to the job's body spool file
 * beyond it. A spool file costs an inode created and evicted, the bytes
 * copied into the page cache and read back, and for a typical report of
 * tens of kilobytes that was most of the daemon's system time.
 *
 * No new blob is taken up while the bodies in memory reach
 * MEM_BODIES_HIGH, half the budget: a destination slower than the
 * transform (or throttled, or down) then holds the pipeline back instead
 * of filling spool files that only wait to be read back (61 of the 425
 * blobs of the benchmark corpus did, in a run with gzip). The other half
 * is for the bodies of the jobs already under way, so the spool file is
 * left for a blob whose own records exceed the budget (or for several
 * large ones already under way).
 */
#define MEM_BLOB_MAX (4u << 20)
#define MEM_BLOBS_BUDGET (16u << 20)
#define MEM_BODIES_BUDGET (8u << 20)
#define MEM_BODIES_HIGH (MEM_BODIES_BUDGET / 2)

/*
 * glibc's malloc (its thresholds): blocks smaller than MALLOC_MMAP_MIN come
 * from a heap rather than a mapping of their own, and up to
 * MALLOC_TRIM_KEEP bytes free at the top of a heap stay there instead of
 * going back to the kernel. See malloc_tune().
 */
#define MALLOC_MMAP_MIN ((size_t)8 << 20)
#define MALLOC_TRIM_KEEP ((size_t)32 << 20)

enum job_phase {
  JOB_QUEUED,
  JOB_STARTING,                 /* its begin line is being journalled */
  JOB_DOWNLOADING,
  JOB_TRANSFORMING,
  JOB_SHIPPING,
  JOB_COMMITTING,
  JOB_DELETING
};

/*
 * One request body of a job: its JSON, offsets ((count + 1) size_t) and
 * times (count int64_t), either at off in the job's body spool file (in
 * that order) or in memory (mem: offsets, times, then JSON, so that the
 * arrays are aligned).
 */
struct body_ref {
  char *mem;         /* owned, or NULL: the body is in the spool file */
  uint64_t off;      /* file offset of the JSON, then offsets, then times */
  uint64_t len;      /* JSON bytes */
  uint64_t count;    /* records */
  uint64_t first;    /* sequence number of the first record in the blob */
  int64_t min_time;  /* TimeGenerated bounds of its records */
  int64_t max_time;
};

struct daemon;

struct job {
  struct daemon *d;
  struct job *next;             /* the daemon's job list, in listing order */
  struct job *prev;
  struct job *hnext;            /* the daemon's job table by name */
  struct job *snext;            /* the ship queue: bodies left to send */
  struct job *sprev;
  int in_shipq;
  uint64_t begin_seq;           /* its begin line, in journal order */
  char *name;                   /* owned */
  char *etag;                   /* owned */
  int64_t last_modified;
  uint64_t size;
  enum job_phase phase;
  uv_work_t work;               /* transform or body preparation */

  /* DOWNLOADING */
  int spool_fd;                 /* -1 when none */
  uint64_t spool_bytes;
  void *get_op;                 /* the storage operation, for cancel */
  int in_mem;                   /* downloading into mem, not spool_fd */
  struct buf mem;               /* the blob, when in_mem */
  size_t mem_reserved;          /* bytes of MEM_BLOBS_BUDGET held */

  /* TRANSFORMING results (written by the worker, read after it; a body
     in memory is freed by the worker that copies it into a request) */
  int body_fd;                  /* -1 when none */
  struct body_ref *bodies;      /* owned */
  size_t nbodies;
  size_t bodies_cap;
  uint64_t records;             /* records the transform produced */
  uint64_t rejected;            /* too large for any body: dead-lettered */
  uint64_t shrunk_records;
  uint64_t shrunk_fields;
  char *fail_reason;            /* owned; bad input */
  int work_rc;                  /* 0, or why the transform could not run */

  /* SHIPPING */
  size_t next_body;             /* next body to hand to the destination */
  size_t taken;                 /* bodies a shipment being built holds */
  size_t bodies_busy;           /* bodies being prepared or sent */
  uint64_t acked;
  uint64_t dead;
  unsigned commit_failures;     /* consecutive failed commits */
  int commit_queued;            /* a commit op is in the lane */
};

/* One checkpoint operation queued for the lane. */
enum ckop_kind { CKOP_CLASSIFY, CKOP_BEGIN, CKOP_COMMIT, CKOP_ADVANCE,
                 CKOP_SYNC };

struct listed {
  char *name;                   /* owned */
  char *etag;                   /* owned */
  int64_t last_modified;
  uint64_t size;
  enum checkpoint_state state;  /* set by the lane */
};

struct ckop {
  struct ckop *next;
  enum ckop_kind kind;
  struct job *job;              /* BEGIN, COMMIT (borrowed) */
  struct listed *items;         /* CLASSIFY (owned) */
  size_t nitems;
  int64_t watermark;            /* ADVANCE */
  int rc;                       /* result, set by the lane */
};

struct daemon {
  uv_loop_t loop;
  char *config_path;            /* owned */
  struct config *cfg;           /* owned */
  struct config *next_cfg;      /* owned; a reload waiting for the drain */

  struct http_engine *http;
  struct cred *cred;            /* ingestion (and storage with entra) */
  struct cred *storage_cred;
  struct storage *storage;
  struct ingest *ingest;
  struct filesink *fsink;
  struct deadletter *dl;
  struct checkpoint *ck;        /* touched only by the lane */
  struct metrics *metrics;
  struct metrics_server *msrv;
  char spool_dir[4096];

  uv_timer_t poll_timer;
  uv_timer_t tick_timer;        /* heartbeat, watchdog, status */
  uv_timer_t stop_timer;
  uv_timer_t retry_timer;       /* failed checkpoint commits */
  uv_timer_t linger_timer;      /* a shipment waiting to fill up */
  int linger_expired;
  int commit_retry;             /* a commit is waiting to be retried */
  uv_signal_t sig_term;
  uv_signal_t sig_int;
  uv_signal_t sig_hup;
  uint64_t watchdog_ms;
  uint64_t last_watchdog;

  /* Jobs. Every loop over them per event would make the daemon's cost
     grow with the backlog (MAX_JOBS) for each blob: the table finds a job
     by name, the cursor the next one to start, the ship queue the ones
     with bodies to send, and nqueued counts the ones not started. */
  struct job *jobs;
  struct job *jobs_tail;
  struct job *cursor;           /* jobs before it are not QUEUED */
  struct job *jhash[JOB_HASH];
  struct job *shipq;            /* jobs with bodies left to send */
  struct job *shipq_tail;
  size_t nqueued;
  size_t nshipping;             /* jobs SHIPPING */
  /* Begin lines are written without a sync of their own and made durable
     before the blob's first record is sent (see ship_pump): an fdatasync
     per blob was a fifth of the daemon's CPU. */
  uint64_t begin_next;          /* the last begin_seq handed out */
  uint64_t begin_written;       /* begin lines written up to this seq */
  uint64_t begin_durable;       /* begin lines synced up to this seq */
  int sync_queued;              /* a CKOP_SYNC is in the lane */
  int lane_synced;              /* the last batch synced (set by the lane) */
  uint64_t stats_ms;            /* when the watermark metric was updated */
  size_t njobs;
  size_t downloading;
  size_t transforming;
  size_t bodies_busy;
  /* A shipment ship_pump built but did not send (not full yet), kept for
     its next call: ship_pump runs after every event, and allocating and
     zeroing the 14 KB struct each time made pump() 1.6% of the daemon's
     instructions (callgrind, headline, none: 18.8 M of 1,152 M; 1.8 M
     with the spare). Owned. */
  struct shipment *ship_spare;
  size_t max_transforms;
  size_t mem_blobs;             /* bytes of MEM_BLOBS_BUDGET in use */
  int malloc_dirty;             /* blobs done since malloc_idle() last ran */
  atomic_size_t mem_bodies;     /* bytes of MEM_BODIES_BUDGET in use */

  /* Listing. */
  int listing;                  /* a listing round is under way */
  int list_failed;
  char *marker;                 /* owned; next page */
  int64_t round_min_unfinished; /* INT64_MAX when none */
  int64_t round_max_lm;
  int found_work;               /* the last round queued something or
                                   could not queue everything */
  int poll_when_drained;        /* poll again soon once no job is left */
  int pages_pending;            /* classify ops not back yet */
  int list_more;                /* pages remain after the current one */
  int list_paused;              /* the next page waits for room (MAX_JOBS) */
  int list_incomplete;          /* the round ended before its last page */

  /* The checkpoint lane. */
  struct ckop *lane_head;
  struct ckop *lane_tail;
  struct ckop *lane_batch;      /* the batch being run */
  int lane_busy;
  uv_work_t lane_work;
  int lane_failed;              /* the last batch could not sync */

  /* Clients being closed (clients_close), and what to do after. */
  int clients_closing;
  void (*close_then)(struct daemon *d);
  struct storage_op *list_op;   /* the List Blobs page in flight */
  struct token_shim *shims;     /* storage token requests waiting on cred */

  /* Ingestion counters already copied into the metrics. */
  uint64_t seen_retries;
  uint64_t seen_bytes_sent;
  uint64_t seen_bytes_json;
  uint64_t seen_clamped;

  /* Lifecycle. */
  int stopping;
  int stopping_hard;            /* shutdown_timeout passed: cancel all */
  int reloading;
  atomic_int abort_work;        /* transforms give up at the next record */
  int closing;
  int exit_rc;
};

static void pump(struct daemon *d);
static void on_poll_timer(uv_timer_t *t);
static void lane_kick(struct daemon *d);
static void job_drop(struct job *j, const char *why);
static void maybe_drained(struct daemon *d);
static int clients_create(struct daemon *d);
static int storage_adapter_get(struct daemon *d, struct job *j);
static int storage_adapter_delete(struct daemon *d, struct job *j);
static void on_downloaded(struct job *j, int rc, const char *why);
static void on_deleted(struct job *j, int rc, const char *why);
static void on_page(struct daemon *d, int rc, const struct blob_entry *entries,
                    size_t n, const char *next_marker);
static void sync_ingest_metrics(struct daemon *d);
static void clients_close(struct daemon *d, void (*then)(struct daemon *d));

/* ---- small helpers ---------------------------------------------------- */

/*
 * The daemon cycles through large buffers: blobs of up to MEM_BLOB_MAX
 * bytes and request bodies of about max_request_bytes, one after the other.
 * glibc's defaults map a block above 128 KiB afresh (a threshold that only
 * rises after such a block is freed) and give a heap's free top back to the
 * kernel beyond twice that, so each new buffer faulted in and zeroed fresh
 * pages: 5,000 of the 13,500 page faults for the 101 MB benchmark corpus,
 * and a fifth of the system CPU (docs/performance.md). Fixed thresholds above
 * those sizes keep freed buffers for the next one; malloc_idle() hands the
 * memory back when the daemon has nothing to do.
 *
 * Each arena keeps its own free memory, and glibc makes up to eight per
 * core: with the thresholds alone, 10,000 typical reports peaked at 70 MB
 * (54 MB with the defaults). One arena per core shares what is kept among
 * the pool threads: 52 to 54 MB in two runs, with about 11,000 page
 * faults instead of 200,000. Called before any thread starts. Elsewhere
 * than glibc, the allocator's own policy stands.
 */
static void
malloc_tune(long ncpu)
{
#ifdef __GLIBC__
  (void)mallopt(M_MMAP_THRESHOLD, (int)MALLOC_MMAP_MIN);
  (void)mallopt(M_TRIM_THRESHOLD, (int)MALLOC_TRIM_KEEP);
  (void)mallopt(M_ARENA_MAX, ncpu > 1 ? (int)ncpu : 1);
#else
  (void)ncpu;
#endif
}

/*
 * Returns the free memory malloc_tune() keeps to the kernel (loop thread).
 * After the 101 MB benchmark corpus that is 36 madvise calls and about a
 * millisecond, once per idle round, so it does not go to the pool.
 */
static void
malloc_idle(struct daemon *d)
{
  if(!d->malloc_dirty)
    return;
  d->malloc_dirty = 0;
#ifdef __GLIBC__
  (void)malloc_trim(0);
#endif
}

static uint64_t
now_ms(struct daemon *d)
{
  return uv_now(&d->loop);
}

static int64_t
wall_now(void)
{
  return (int64_t)time(NULL);
}

static int
has_suffix(const struct config *cfg, const char *name)
{
  size_t nl = strlen(name);

  if(!cfg->source.suffixes.n)
    return 1;
  for(size_t i = 0; i < cfg->source.suffixes.n; i++) {
    const char *s = cfg->source.suffixes.v[i];
    size_t sl = strlen(s);

    if(nl >= sl && !strcmp(name + nl - sl, s))
      return 1;
  }
  return 0;
}

/* FNV-1a of a blob name, for the job table. */
static size_t
name_hash(const char *name)
{
  uint64_t h = UINT64_C(1469598103934665603);

  for(const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * UINT64_C(1099511628211);
  return (size_t)(h % JOB_HASH);
}

static struct job *
job_find(struct daemon *d, const char *name)
{
  for(struct job *j = d->jhash[name_hash(name)]; j; j = j->hnext) {
    if(!strcmp(j->name, name))
      return j;
  }
  return NULL;
}

/* Appends j (QUEUED) to the job list and the table. */
static void
job_link(struct daemon *d, struct job *j)
{
  size_t h = name_hash(j->name);

  j->prev = d->jobs_tail;
  j->next = NULL;
  if(d->jobs_tail)
    d->jobs_tail->next = j;
  else
    d->jobs = j;
  d->jobs_tail = j;
  j->hnext = d->jhash[h];
  d->jhash[h] = j;
  if(!d->cursor)
    d->cursor = j;
  d->njobs++;
  d->nqueued++;
}

/* Puts j at the end of the ship queue (once). */
static void
shipq_add(struct daemon *d, struct job *j)
{
  if(j->in_shipq)
    return;
  j->in_shipq = 1;
  j->snext = NULL;
  j->sprev = d->shipq_tail;
  if(d->shipq_tail)
    d->shipq_tail->snext = j;
  else
    d->shipq = j;
  d->shipq_tail = j;
}

/* Takes j out of the ship queue, if it is there. */
static void
shipq_del(struct daemon *d, struct job *j)
{
  if(!j->in_shipq)
    return;
  j->in_shipq = 0;
  if(j->sprev)
    j->sprev->snext = j->snext;
  else
    d->shipq = j->snext;
  if(j->snext)
    j->snext->sprev = j->sprev;
  else
    d->shipq_tail = j->sprev;
  j->snext = j->sprev = NULL;
}

/* Creates a temp file in the spool directory, already unlinked. */
static int
spool_open(struct daemon *d)
{
  int fd = open(d->spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

  if(fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    char path[4200];

    snprintf(path, sizeof(path), "%s/blob-XXXXXX", d->spool_dir);
    fd = mkostemp(path, O_CLOEXEC);
    if(fd >= 0)
      unlink(path);
  }
  return fd;
}

/* The bytes a body takes in memory: JSON, offsets and times. */
static size_t
body_mem_size(const struct body_ref *r)
{
  return (size_t)r->len + ((size_t)r->count + 1) * sizeof(size_t) +
         (size_t)r->count * sizeof(int64_t);
}

/* Frees a body's memory copy and returns its bytes to the budget (any
   thread). */
static void
body_release(struct daemon *d, struct body_ref *r)
{
  if(!r->mem)
    return;
  free(r->mem);
  r->mem = NULL;
  atomic_fetch_sub(&d->mem_bodies, body_mem_size(r));
}

/* Takes n bytes of MEM_BODIES_BUDGET if they fit (any thread). */
static int
mem_bodies_take(struct daemon *d, size_t n)
{
  size_t cur = atomic_load(&d->mem_bodies);

  while(cur + n <= MEM_BODIES_BUDGET) {
    if(atomic_compare_exchange_weak(&d->mem_bodies, &cur, cur + n))
      return 1;
  }
  return 0;
}

/* Frees the downloaded blob held in memory, if any (loop thread). */
static void
blob_release(struct job *j)
{
  buf_free(&j->mem);
  j->d->mem_blobs -= j->mem_reserved;
  j->mem_reserved = 0;
}

static void
job_free(struct job *j)
{
  if(!j)
    return;
  if(j->spool_fd >= 0)
    close(j->spool_fd);
  if(j->body_fd >= 0)
    close(j->body_fd);
  blob_release(j);
  for(size_t i = 0; i < j->nbodies; i++)
    body_release(j->d, &j->bodies[i]);
  free(j->bodies);
  free(j->fail_reason);
  free(j->name);
  free(j->etag);
  free(j);
}

/* Unlinks j from the daemon's list and frees it. */
static void
job_remove(struct job *j)
{
  struct daemon *d = j->d;

  d->malloc_dirty = 1;
  if(j->prev)
    j->prev->next = j->next;
  else
    d->jobs = j->next;
  if(j->next)
    j->next->prev = j->prev;
  else
    d->jobs_tail = j->prev;
  if(d->cursor == j)
    d->cursor = j->next;
  for(struct job **pp = &d->jhash[name_hash(j->name)]; *pp;
      pp = &(*pp)->hnext) {
    if(*pp == j) {
      *pp = j->hnext;
      break;
    }
  }
  shipq_del(d, j);
  if(j->phase == JOB_QUEUED)
    d->nqueued--;
  else if(j->phase == JOB_SHIPPING)
    d->nshipping--;
  d->njobs--;
  job_free(j);
  metrics_set(d->metrics, METRIC_BACKLOG_BLOBS, (int64_t)d->njobs);
  if(d->njobs == 0 && d->poll_when_drained && !d->listing && !d->stopping &&
     !d->reloading) {
    d->poll_when_drained = 0;
    uv_timer_start(&d->poll_timer, on_poll_timer, SOON_MS, 0);
  }
}

/* ---- the checkpoint lane ---------------------------------------------- */

static void
lane_push(struct daemon *d, struct ckop *op)
{
  op->next = NULL;
  if(d->lane_tail)
    d->lane_tail->next = op;
  else
    d->lane_head = op;
  d->lane_tail = op;
  lane_kick(d);
}

static void
lane_run(uv_work_t *w)
{
  struct daemon *d = w->data;
  int wrote = 0, rc;

  for(struct ckop *op = d->lane_batch; op; op = op->next) {
    switch(op->kind) {
    case CKOP_CLASSIFY:
      for(size_t i = 0; i < op->nitems; i++) {
        struct listed *l = &op->items[i];

        l->state = checkpoint_lookup(d->ck, l->name, l->etag,
                                     l->last_modified);
      }
      op->rc = 0;
      break;
    case CKOP_BEGIN:
      /* Synced with the next batch that syncs (ship_pump asks for one
         before the blob's records leave). */
      op->rc = checkpoint_begin(d->ck, op->job->name, op->job->etag,
                                op->job->last_modified);
      break;
    case CKOP_SYNC:
      op->rc = 0;
      wrote = 1;
      break;
    case CKOP_COMMIT:
      op->rc = checkpoint_commit(d->ck, op->job->name, op->job->etag,
                                 op->job->last_modified,
                                 op->job->acked + op->job->dead,
                                 op->job->fail_reason);
      wrote = 1;
      break;
    case CKOP_ADVANCE:
      op->rc = checkpoint_advance(d->ck, op->watermark);
      wrote = 1;
      break;
    }
  }
  d->lane_synced = 0;
  if(wrote) {
    rc = checkpoint_sync(d->ck);
    d->lane_synced = rc == 0;
    /* Nothing written in this batch is durable: report every write as
       failed, so that no commit is acted upon (after_ingest: delete). */
    for(struct ckop *op = d->lane_batch; op && rc; op = op->next) {
      if(op->kind != CKOP_CLASSIFY && !op->rc)
        op->rc = rc;
    }
  }
}

static void on_classified(struct daemon *d, struct ckop *op);
static void on_committed(struct daemon *d, struct job *j, int rc);
static void on_begun(struct daemon *d, struct job *j, int rc);

static void
lane_done(uv_work_t *w, int status)
{
  struct daemon *d = w->data;
  struct ckop *batch = d->lane_batch, *next;
  struct checkpoint_stats st;

  d->lane_batch = NULL;
  d->lane_busy = 0;
  d->lane_failed = 0;
  /* Begin lines written in this batch; all written so far are durable if
     it synced. */
  for(struct ckop *op = batch; op && status >= 0; op = op->next) {
    if(op->kind == CKOP_BEGIN && !op->rc &&
       op->job->begin_seq > d->begin_written)
      d->begin_written = op->job->begin_seq;
  }
  if(status >= 0 && d->lane_synced)
    d->begin_durable = d->begin_written;
  for(struct ckop *op = batch; op; op = next) {
    next = op->next;
    if(status < 0 && !op->rc)
      op->rc = ERR_ABORTED;
    switch(op->kind) {
    case CKOP_CLASSIFY:
      on_classified(d, op);
      break;
    case CKOP_BEGIN:
      on_begun(d, op->job, op->rc);
      break;
    case CKOP_SYNC:
      d->sync_queued = 0;
      break;
    case CKOP_COMMIT:
      if(op->rc)
        d->lane_failed = 1;
      on_committed(d, op->job, op->rc);
      break;
    case CKOP_ADVANCE:
      if(op->rc)
        log_warn(MOD, "cannot record the watermark: %s", err_str(op->rc));
      break;
    }
    for(size_t i = 0; i < op->nitems; i++) {
      free(op->items[i].name);
      free(op->items[i].etag);
    }
    free(op->items);
    free(op);
  }
  /* checkpoint_get_stats walks every entry: at most once a second. */
  if(!d->stats_ms || now_ms(d) - d->stats_ms >= 1000) {
    d->stats_ms = now_ms(d);
    checkpoint_get_stats(d->ck, &st);
    metrics_set(d->metrics, METRIC_CHECKPOINT_WATERMARK, st.watermark);
  }
  lane_kick(d);
  pump(d);
  maybe_drained(d);
}

static void
lane_kick(struct daemon *d)
{
  int rc;

  if(d->lane_busy || !d->lane_head)
    return;
  d->lane_batch = d->lane_head;
  d->lane_head = d->lane_tail = NULL;
  d->lane_busy = 1;
  d->lane_work.data = d;
  rc = uv_queue_work(&d->loop, &d->lane_work, lane_run, lane_done);
  if(rc) {
    /* Cannot happen with a valid loop; run the batch here rather than
       losing it. */
    log_error(MOD, "uv_queue_work: %s", uv_strerror(rc));
    lane_run(&d->lane_work);
    lane_done(&d->lane_work, 0);
  }
}

/* Queues a checkpoint operation for j. */
static void
lane_job(struct daemon *d, enum ckop_kind kind, struct job *j)
{
  struct ckop *op = calloc(1, sizeof(*op));

  if(!op) {
    /* Out of memory: the blob stays unfinished and is found again. */
    if(kind == CKOP_COMMIT)
      job_drop(j, "out of memory");
    return;
  }
  op->kind = kind;
  op->job = j;
  if(kind == CKOP_COMMIT)
    j->commit_queued = 1;
  if(kind == CKOP_BEGIN)
    j->begin_seq = ++d->begin_next;
  lane_push(d, op);
}

/* ---- listing ---------------------------------------------------------- */

static void list_next_page(struct daemon *d);

static void
round_finished(struct daemon *d)
{
  int64_t w;

  d->listing = 0;
  free(d->marker);
  d->marker = NULL;
  metrics_poll_done(d->metrics, !d->list_failed);
  /* A round that ended before its last page (stop, reload) saw only some
     blobs: an unlisted one may be older and unfinished, so the watermark
     stays. */
  if(!d->list_failed && !d->list_incomplete) {
    /* The watermark moves to the oldest blob still unfinished, counting the
       jobs of earlier rounds, or to the newest listed blob when all are
       done. */
    w = d->round_min_unfinished;
    for(struct job *j = d->jobs; j; j = j->next) {
      if(j->last_modified < w)
        w = j->last_modified;
    }
    if(w == INT64_MAX)
      w = d->round_max_lm;
    if(w > 0) {
      struct ckop *op = calloc(1, sizeof(*op));

      if(op) {
        op->kind = CKOP_ADVANCE;
        op->watermark = w;
        lane_push(d, op);
      }
    }
  }
  if(!d->stopping && !d->reloading) {
    /* The next round is a full interval away; a round that found work
       pulls it forward to soon after that work drains (job_remove), so a
       backlog larger than the pipeline is worked through without waiting
       an interval per pipeline-full. */
    d->poll_when_drained = d->found_work;
    /* A round that found nothing, with nothing in flight: idle until the
       next one, so the buffers kept for reuse can go. */
    if(!d->found_work && d->njobs == 0)
      malloc_idle(d);
    uv_timer_start(&d->poll_timer, on_poll_timer,
                   d->found_work && d->njobs == 0
                   ? SOON_MS : d->cfg->source.poll_interval_ms, 0);
  }
  maybe_drained(d);
}

static void
on_classified(struct daemon *d, struct ckop *op)
{
  d->pages_pending--;
  for(size_t i = 0; i < op->nitems; i++) {
    struct listed *l = &op->items[i];
    struct job *j;

    if(op->rc)
      break;
    switch(l->state) {
    case CHECKPOINT_DONE:
    case CHECKPOINT_FAILED:
    case CHECKPOINT_OLD:
      metrics_inc(d->metrics, METRIC_BLOBS_SKIPPED_DONE, 1);
      continue;
    case CHECKPOINT_BEFORE_START:
      metrics_inc(d->metrics, METRIC_BLOBS_SKIPPED_BEFORE_START, 1);
      continue;
    case CHECKPOINT_NEW:
      break;
    }
    if(l->last_modified < d->round_min_unfinished)
      d->round_min_unfinished = l->last_modified;
    if(job_find(d, l->name))
      continue; /* already in the pipeline (a changed ETag waits for it) */
    if(d->njobs >= MAX_JOBS || d->stopping || d->reloading) {
      d->found_work = 1; /* more than fits: list again after the drain */
      continue;
    }
    j = calloc(1, sizeof(*j));
    if(!j)
      continue;
    j->d = d;
    j->spool_fd = -1;
    j->body_fd = -1;
    j->name = l->name;
    j->etag = l->etag;
    l->name = l->etag = NULL; /* stolen */
    j->last_modified = l->last_modified;
    j->size = l->size;
    j->phase = JOB_QUEUED;
    /* Append, so that blobs start in listing order. */
    job_link(d, j);
    d->found_work = 1;
  }
  metrics_set(d->metrics, METRIC_BACKLOG_BLOBS, (int64_t)d->njobs);
  if(op->rc)
    d->list_failed = 1;
  if(d->list_more && !d->list_failed && !d->stopping && !d->reloading) {
    /* The next page is fetched once a whole page fits in the job table
       (list_resume): the round keeps its place in a container larger than
       the pipeline instead of listing it again from the start after every
       MAX_JOBS blobs. */
    if(d->njobs + LIST_PAGE > MAX_JOBS)
      d->list_paused = 1;
    else
      list_next_page(d);
  }
  else if(d->pages_pending == 0 && !d->list_more)
    round_finished(d);
  else if(d->pages_pending == 0 &&
          (d->list_failed || d->stopping || d->reloading)) {
    d->list_incomplete = d->list_more;
    round_finished(d);
  }
}

/* Fetches the next page of a paused round once it fits in the job table,
   or ends the round, incomplete, when the daemon stops or reloads. */
static void
list_resume(struct daemon *d)
{
  if(!d->list_paused)
    return;
  if(d->stopping || d->reloading) {
    d->list_paused = 0;
    d->list_incomplete = 1;
    if(d->pages_pending == 0)
      round_finished(d);
    return;
  }
  /* A checkpoint commit waiting to be retried holds new work back. */
  if(!d->commit_retry && d->njobs + LIST_PAGE <= MAX_JOBS) {
    d->list_paused = 0;
    list_next_page(d);
  }
}

/*
 * A page of List Blobs arrived (adapter callback): filter it and send it to
 * the lane for lookups. entries are borrowed.
 */
static void
on_page(struct daemon *d, int rc, const struct blob_entry *entries,
        size_t n, const char *next_marker)
{
  struct ckop *op;

  if(rc) {
    d->list_failed = 1;
    d->list_more = 0;
    if(d->pages_pending == 0)
      round_finished(d);
    return;
  }
  metrics_inc(d->metrics, METRIC_BLOBS_LISTED, n);
  free(d->marker);
  d->marker = next_marker && *next_marker ? strdup(next_marker) : NULL;
  d->list_more = d->marker != NULL;
  op = calloc(1, sizeof(*op));
  if(op)
    op->items = calloc(n ? n : 1, sizeof(*op->items));
  if(!op || !op->items) {
    free(op);
    d->list_failed = 1;
    d->list_more = 0;
    if(d->pages_pending == 0)
      round_finished(d);
    return;
  }
  op->kind = CKOP_CLASSIFY;
  for(size_t i = 0; i < n; i++) {
    const struct blob_entry *b = &entries[i];

    if(b->last_modified > d->round_max_lm)
      d->round_max_lm = b->last_modified;
    if(b->is_dir_marker) {
      metrics_inc(d->metrics, METRIC_BLOBS_SKIPPED_DIRECTORY, 1);
      continue;
    }
    if(!has_suffix(d->cfg, b->name)) {
      metrics_inc(d->metrics, METRIC_BLOBS_SKIPPED_SUFFIX, 1);
      continue;
    }
    struct listed *l = &op->items[op->nitems];
    l->name = strdup(b->name);
    l->etag = strdup(b->etag);
    if(!l->name || !l->etag) {
      free(l->name);
      free(l->etag);
      continue;
    }
    l->last_modified = b->last_modified;
    l->size = b->content_length < 0 ? 0 : (uint64_t)b->content_length;
    op->nitems++;
  }
  d->pages_pending++;
  lane_push(d, op);
}

static void
on_poll_timer(uv_timer_t *t)
{
  struct daemon *d = t->data;

  if(d->listing || d->stopping || d->reloading)
    return;
  if(d->commit_retry) {
    uv_timer_start(&d->poll_timer, on_poll_timer, 1000, 0);
    return;
  }
  d->listing = 1;
  d->list_failed = 0;
  d->list_more = 0;
  d->list_paused = 0;
  d->list_incomplete = 0;
  d->found_work = 0;
  d->pages_pending = 0;
  d->round_min_unfinished = INT64_MAX;
  d->round_max_lm = 0;
  free(d->marker);
  d->marker = NULL;
  list_next_page(d);
}

/* ---- downloading ------------------------------------------------------ */

static void start_transform(struct job *j);

/* Storage adapter callback: the download finished. */
static void
on_downloaded(struct job *j, int rc, const char *why)
{
  struct daemon *d = j->d;

  j->get_op = NULL;
  d->downloading--;
  if(rc == ERR_TOOBIG) {
    /* Over max_blob_bytes: bad input, recorded as failed, never retried
       unless its ETag changes. The transform step records it (dead-letter
       writes belong on the pool) without reading the blob. */
    if(asprintf(&j->fail_reason, "blob larger than max_blob_bytes (%" PRIu64
                " bytes)", d->cfg->source.max_blob_bytes) < 0)
      j->fail_reason = NULL;
    if(!j->fail_reason)
      job_drop(j, "out of memory");
    else
      start_transform(j);
  }
  else if(rc) {
    job_drop(j, why ? why : err_str(rc));
  }
  else
    start_transform(j);
  pump(d);
  maybe_drained(d);
}

static void
start_download(struct job *j)
{
  struct daemon *d = j->d;
  int rc;

  if(j->size <= MEM_BLOB_MAX && d->mem_blobs + j->size <= MEM_BLOBS_BUDGET) {
    /* Capped at the listed size: a blob that grew since the listing is a
       changed blob (spool_write answers ERR_CHANGED), found again later. */
    j->in_mem = 1;
    j->mem_reserved = (size_t)j->size;
    d->mem_blobs += j->mem_reserved;
    /* TRANSFORM_PAD more than listed: the zero slack after the blob that
       lets the transform scan it in place (spool_write keeps the blob
       itself to its listed size). */
    buf_init(&j->mem, (size_t)j->size + TRANSFORM_PAD);
    /* The listed size is already counted in the budget: take it at once
       rather than doubling up to it, which copied the blob about once
       more on its way in. (If that fails, growing may still work.) */
    if(j->size)
      (void)buf_reserve(&j->mem, (size_t)j->size + TRANSFORM_PAD);
  }
  else if((j->spool_fd = spool_open(d)) < 0) {
    log_error(MOD, "cannot create a spool file in %s: %s", d->spool_dir,
              strerror(errno));
    job_drop(j, "no spool file");
    return;
  }
  j->phase = JOB_DOWNLOADING;
  d->downloading++;
  rc = storage_adapter_get(d, j);
  if(rc) {
    d->downloading--;
    job_drop(j, err_str(rc));
  }
}

/* ---- transforming ----------------------------------------------------- */

struct tctx {
  struct job *j;
  struct batcher *batcher;
  uint64_t file_off;
  int rc;
};

/* Batcher callback (pool thread): keep one body, in memory within
   MEM_BODIES_BUDGET, else in the job's body spool file, and remember
   where. */
static int
on_body(void *ud, const struct batcher_body *b)
{
  struct tctx *t = ud;
  struct job *j = t->j;
  struct daemon *d = j->d;
  size_t offs = (b->count + 1) * sizeof(size_t);
  size_t times = b->count * sizeof(int64_t);
  struct body_ref r = { NULL, t->file_off, b->len, b->count, b->first,
                        b->min_time, b->max_time };
  int rc;

  if(j->nbodies == j->bodies_cap) {
    size_t n = j->bodies_cap ? j->bodies_cap * 2 : 16;
    struct body_ref *nb = realloc(j->bodies, n * sizeof(*nb));

    if(!nb)
      return ERR_NOMEM;
    j->bodies = nb;
    j->bodies_cap = n;
  }
  if(mem_bodies_take(d, body_mem_size(&r))) {
    if((r.mem = malloc(body_mem_size(&r))) == NULL) {
      atomic_fetch_sub(&d->mem_bodies, body_mem_size(&r));
      return ERR_NOMEM;
    }
    /* Offsets and times first, where they are aligned, then the JSON. */
    memcpy(r.mem, b->offsets, offs);
    memcpy(r.mem + offs, b->times, times);
    memcpy(r.mem + offs + times, b->json, b->len);
    r.off = 0;
    j->bodies[j->nbodies++] = r;
    return 0;
  }
  if(j->body_fd < 0 && (j->body_fd = spool_open(d)) < 0)
    return ERR_IO;
  if((rc = fsio_pwrite_all(j->body_fd, b->json, b->len, t->file_off)) != 0 ||
     (rc = fsio_pwrite_all(j->body_fd, b->offsets, offs, t->file_off + b->len)) ||
     (rc = fsio_pwrite_all(j->body_fd, b->times, times,
                    t->file_off + b->len + offs)) != 0)
    return rc;
  j->bodies[j->nbodies++] = r;
  t->file_off += b->len + offs + times;
  return 0;
}

/* Batcher callback (pool thread): a record too large for any request. */
static int
on_reject(void *ud, uint64_t seq, const char *json, size_t len,
          const char *reason)
{
  struct tctx *t = ud;
  struct job *j = t->j;

  struct deadletter_entry e = {
    .blob = j->name, .etag = j->etag, .record_index = (int64_t)seq,
    .reason = "too_large", .error_message = reason, .record = json,
    .record_len = len,
  };

  j->rejected++;
  metrics_inc(j->d->metrics, METRIC_RECORDS_DEAD_LETTERED_TOO_LARGE, 1);
  return deadletter_write(j->d->dl, &e);
}

/* Records a blob that failed as bad input (pool thread). */
static int
dead_blob(struct job *j)
{
  struct deadletter_entry e = {
    .blob = j->name, .etag = j->etag, .record_index = -1,
    .reason = "bad_input", .error_message = j->fail_reason,
  };

  return deadletter_write(j->d->dl, &e);
}

/* Transform callback (pool thread). */
static int
on_record(void *ud, const struct transform_record *rec)
{
  struct tctx *t = ud;

  if(atomic_load_explicit(&t->j->d->abort_work, memory_order_relaxed))
    return ERR_ABORTED;
  t->j->records++;
  if(rec->shrunk) {
    t->j->shrunk_records++;
    t->j->shrunk_fields += rec->shrunk;
  }
  return batcher_add(t->batcher, rec->json, rec->len, rec->time_generated);
}

static void
transform_work(uv_work_t *w)
{
  struct job *j = w->data;
  struct daemon *d = j->d;
  struct transform_opts o = {
    .max_field_bytes = (size_t)d->cfg->destination.max_field_bytes,
    .last_modified = j->last_modified,
    .now = wall_now(),
  };
  struct transform_error e;
  struct source *src = NULL;
  struct tctx t = { .j = j };
  int rc;

  memset(&e, 0, sizeof(e));
  if(j->fail_reason) {
    j->work_rc = dead_blob(j);
    return;
  }
  rc = batcher_create((size_t)d->cfg->destination.max_request_bytes, on_body,
                      on_reject, &t, &t.batcher);
  if(!rc && j->in_mem && j->mem.len &&
     buf_reserve(&j->mem, TRANSFORM_PAD) == 0) {
    /* Zero slack after the blob (reserved at the download's start): the
       transform scans the blob where it is instead of copying it. */
    memset(j->mem.data + j->mem.len, 0, TRANSFORM_PAD);
    rc = source_open_padded(j->mem.data, j->mem.len,
                            d->cfg->source.max_blob_bytes, &src);
  }
  else if(!rc && j->in_mem)
    rc = source_open_buffer(j->mem.data ? j->mem.data : "", j->mem.len,
                            d->cfg->source.max_blob_bytes, &src);
  else if(!rc)
    rc = source_open_fd(j->spool_fd, 0, d->cfg->source.max_blob_bytes, &src);
  if(!rc)
    rc = transform_run(source_transform(src), &o, on_record, &t, NULL, &e);
  if(!rc)
    rc = batcher_flush(t.batcher);
  if(rc == ERR_PARSE || rc == ERR_TOOBIG) {
    /* Bad input: nothing was emitted (the transform validates first), so
       drop whatever the batcher holds and record the reason. */
    for(size_t i = 0; i < j->nbodies; i++)
      body_release(d, &j->bodies[i]);
    j->nbodies = 0;
    j->rejected = 0;
    j->records = 0;
    if(rc == ERR_TOOBIG)
      j->fail_reason = strdup("decompressed report larger than "
                              "max_blob_bytes");
    else if(asprintf(&j->fail_reason, "bad input at line %" PRIu64
                     " column %" PRIu64 " (byte %" PRIu64 "): %s", e.line,
                     e.column, e.offset, e.text) < 0)
      j->fail_reason = NULL;
    rc = j->fail_reason ? dead_blob(j) : ERR_NOMEM;
  }
  j->work_rc = rc;
  batcher_destroy(t.batcher);
  source_destroy(src);
}

static void start_shipping(struct job *j);

static void
transform_done(uv_work_t *w, int status)
{
  struct job *j = w->data;
  struct daemon *d = j->d;

  d->transforming--;
  if(j->spool_fd >= 0)
    close(j->spool_fd); /* the blob itself is no longer needed */
  j->spool_fd = -1;
  blob_release(j);
  if(status < 0 || j->work_rc) {
    job_drop(j, status < 0 ? "cancelled" : err_str(j->work_rc));
  }
  else if(j->fail_reason) {
    log_warn(MOD, "%s (ETag %s): %s", j->name, j->etag, j->fail_reason);
    metrics_inc(d->metrics, METRIC_BLOBS_FAILED, 1);
    j->phase = JOB_COMMITTING;
    lane_job(d, CKOP_COMMIT, j);
  }
  else {
    metrics_inc(d->metrics, METRIC_RECORDS_SHRUNK, j->shrunk_records);
    metrics_inc(d->metrics, METRIC_FIELDS_SHRUNK, j->shrunk_fields);
    if(j->shrunk_fields)
      log_info(MOD, "%s: %" PRIu64 " fields in %" PRIu64 " records shrunk "
               "to max_field_bytes", j->name, j->shrunk_fields,
               j->shrunk_records);
    j->dead = j->rejected;
    start_shipping(j);
  }
  pump(d);
  maybe_drained(d);
}

static void
start_transform(struct job *j)
{
  struct daemon *d = j->d;
  int rc;

  j->phase = JOB_TRANSFORMING;
  j->work.data = j;
  d->transforming++;
  rc = uv_queue_work(&d->loop, &j->work, transform_work, transform_done);
  if(rc) {
    d->transforming--;
    job_drop(j, uv_strerror(rc));
  }
}

/* ---- shipping --------------------------------------------------------- */

/*
 * Shipping. A shipment is one request: the bodies of one or more blobs
 * (segments), concatenated into one JSON array of at most
 * max_request_bytes whose TimeGenerated values span at most 30 minutes.
 * Typical reports yield a few kilobytes of records each, so one request per
 * blob would send nearly empty requests (and a DCR accepts 12,000 requests
 * a minute); concatenating keeps requests full. A blob's bodies always
 * leave in order, and a shipment's result is split back per segment, so
 * each blob still commits only when all its records are done.
 */
#define SHIP_MAX_SEGMENTS 256
#define SHIP_LINGER_MS 1000      /* wait this long for a fuller request */
#define SHIP_FULL_PERCENT 97     /* or send as soon as it is this full */

struct segment {
  struct job *j;
  size_t index;                 /* the body of j */
  uint64_t count;               /* its records */
  uint64_t first;               /* sequence number of its first record */
  uint64_t at;                  /* index of its first record in the
                                   shipment */
  uint64_t acked;
  uint64_t dead;
};

struct shipment {
  struct daemon *d;
  uv_work_t work;
  struct segment seg[SHIP_MAX_SEGMENTS];
  size_t nseg;
  uint64_t count;               /* records in all segments */
  /* The combined body, assembled in place in a batch that the ingestion
     client takes as it is (ingest_submit_batch): no copy on the loop. */
  struct batcher_batch *batch;  /* owned until submitted */
  int rc;
  /* Dead-letter work for records the API rejected. */
  struct deadletter_entry *dead;  /* owned array, strings owned */
  size_t ndead;
};

static void
shipment_free(struct shipment *s)
{
  if(!s)
    return;
  for(size_t i = 0; i < s->ndead; i++) {
    free((char *)s->dead[i].error_code);
    free((char *)s->dead[i].error_message);
    free((char *)s->dead[i].request_id);
    free((char *)s->dead[i].record);
  }
  free(s->dead);
  batcher_batch_destroy(s->batch);
  free(s);
}

/*
 * Lays the records of every segment's body out as one body, in a batch
 * the ingestion client will take (pool thread). A body comes from memory
 * or is read back from its blob's body spool. The jobs' body tables do not
 * grow or move while they ship, and each body belongs to the one shipment
 * that took it, which also frees its memory copy: so this is safe here.
 */
static void
prepare_work(uv_work_t *w)
{
  struct shipment *s = w->data;
  struct daemon *d = s->d;
  size_t cap = 2, pos = 1;
  uint64_t k = 0;
  char *json;                   /* these three point into s->batch */
  size_t *offsets;
  int64_t *times;

  for(size_t i = 0; i < s->nseg; i++)
    cap += s->seg[i].j->bodies[s->seg[i].index].len;
  s->rc = batcher_batch_alloc(s->count, cap, &s->batch, &json, &offsets,
                              &times);
  if(s->rc)
    return;
  json[0] = '[';
  for(size_t i = 0; i < s->nseg && !s->rc; i++) {
    const struct job *j = s->seg[i].j;
    struct body_ref *r = &j->bodies[s->seg[i].index];
    size_t offs = (r->count + 1) * sizeof(size_t);
    size_t tsz = r->count * sizeof(int64_t);
    size_t *o = r->mem ? (size_t *)(void *)r->mem : malloc(offs);

    if(!o) {
      s->rc = ERR_NOMEM;
      break;
    }
    /* The body is "[" r0 "," ... "]": its records, with their separating
       commas, are bytes 1 .. len-2; the comma before the next segment's
       records replaces its "]". */
    if(r->mem) {
      memcpy(times + k, r->mem + offs, tsz);
      memcpy(json + pos, r->mem + offs + tsz + 1, r->len - 2);
    }
    else {
      s->rc = fsio_pread_all(j->body_fd, json + pos, r->len - 2,
                             r->off + 1);
      if(!s->rc)
        s->rc = fsio_pread_all(j->body_fd, o, offs, r->off + r->len);
      if(!s->rc)
        s->rc = fsio_pread_all(j->body_fd, times + k, tsz,
                               r->off + r->len + offs);
    }
    for(uint64_t x = 0; !s->rc && x < r->count; x++)
      offsets[k + x] = pos + (o[x] - 1);
    if(r->mem)
      /* Copied once: a retry uses the client's copy, and a failure drops
         the blob, which is found again on a later poll. */
      body_release(d, r);
    else
      free(o);
    pos += r->len - 2;
    k += r->count;
    json[pos++] = i + 1 < s->nseg ? ',' : ']';
  }
  if(s->rc)
    return;
  offsets[s->count] = pos;
  s->rc = batcher_batch_seal(s->batch, pos, 0);
  if(!s->rc && d->fsink)
    s->rc = filesink_write(d->fsink, json, offsets, s->count);
}

static void body_finished(struct job *j, uint64_t acked, uint64_t dead,
                          int rc);

/* Ends a shipment: every segment's blob learns its outcome. */
static void
shipment_end(struct shipment *s, int rc)
{
  struct daemon *d = s->d;

  d->bodies_busy--;
  for(size_t i = 0; i < s->nseg; i++)
    body_finished(s->seg[i].j, rc ? 0 : s->seg[i].acked,
                  rc ? 0 : s->seg[i].dead, rc);
  shipment_free(s);
  pump(d);
  maybe_drained(d);
}

static void
dead_work(uv_work_t *w)
{
  struct shipment *s = w->data;

  s->rc = 0;
  for(size_t i = 0; i < s->ndead && !s->rc; i++)
    s->rc = deadletter_write(s->d->dl, &s->dead[i]);
}

static void
dead_done(uv_work_t *w, int status)
{
  struct shipment *s = w->data;
  int rc = status < 0 ? ERR_ABORTED : s->rc;

  if(rc)
    log_error(MOD, "cannot write the dead-letter file: %s; the blobs of "
              "this request stay unfinished", err_str(rc));
  else
    metrics_inc(s->d->metrics, METRIC_RECORDS_DEAD_LETTERED_REJECTED,
                s->ndead);
  shipment_end(s, rc);
}

static char *
dupstr(const char *p)
{
  return strdup(p ? p : "");
}

/* The segment that holds record i of the shipment. */
static struct segment *
segment_of(struct shipment *s, uint64_t i)
{
  size_t lo = 0, hi = s->nseg;

  while(hi - lo > 1) {
    size_t mid = (lo + hi) / 2;

    if(s->seg[mid].at <= i)
      lo = mid;
    else
      hi = mid;
  }
  return &s->seg[lo];
}

/* The Logs Ingestion client finished a shipment (loop thread). */
static void
on_ingested(void *ud, const struct ingest_result *res)
{
  struct shipment *s = ud;
  struct daemon *d = s->d;
  int rc;

  if(res->rc) {
    shipment_end(s, res->rc);
    return;
  }
  metrics_inc(d->metrics, METRIC_RECORDS_SENT, res->acked);
  if(res->rejected) {
    s->dead = calloc(res->rejected, sizeof(*s->dead));
    if(!s->dead) {
      shipment_end(s, ERR_NOMEM);
      return;
    }
  }
  for(uint64_t i = 0; i < res->body->count; i++) {
    struct segment *g = segment_of(s, i);
    const struct ingest_reject *r = res->reject[i];
    struct deadletter_entry *e;
    const char *rec;
    size_t len;

    if(res->state[i] == INGEST_ACKED) {
      g->acked++;
      continue;
    }
    if(res->state[i] != INGEST_REJECTED || s->ndead == res->rejected)
      continue;
    /* Copy what the dead-letter line needs; res is borrowed. */
    g->dead++;
    e = &s->dead[s->ndead++];
    batcher_body_record(res->body, i, &rec, &len);
    e->blob = g->j->name;
    e->etag = g->j->etag;
    e->record_index = (int64_t)(g->first + (i - g->at));
    e->reason = "rejected";
    e->http_status = r ? r->status : 0;
    e->error_code = dupstr(r ? r->code : "");
    e->error_message = dupstr(r ? r->message : "");
    e->request_id = dupstr(r ? r->request_id : "");
    e->record = strndup(rec, len);
    e->record_len = len;
    if(!e->error_code || !e->error_message || !e->request_id || !e->record) {
      shipment_end(s, ERR_NOMEM);
      return;
    }
  }
  if(!s->ndead) {
    shipment_end(s, 0);
    return;
  }
  log_warn(MOD, "%zu records rejected by the Logs Ingestion API; written "
           "to the dead-letter directory", s->ndead);
  s->work.data = s;
  rc = uv_queue_work(&d->loop, &s->work, dead_work, dead_done);
  if(rc)
    shipment_end(s, ERR_NOMEM);
}

static void
prepare_done(uv_work_t *w, int status)
{
  struct shipment *s = w->data;
  struct daemon *d = s->d;
  int rc;

  if(status < 0 && !s->rc)
    s->rc = ERR_ABORTED;
  if(s->rc) {
    log_error(MOD, "cannot prepare a request body: %s", err_str(s->rc));
    shipment_end(s, s->rc);
    return;
  }
  if(d->fsink) {
    for(size_t i = 0; i < s->nseg; i++)
      s->seg[i].acked = s->seg[i].count;
    metrics_inc(d->metrics, METRIC_RECORDS_SENT, s->count);
    shipment_end(s, 0);
    return;
  }
  rc = d->ingest ? ingest_submit_batch(d->ingest, s->batch, on_ingested, s)
                 : ERR_ABORTED;
  if(rc) {
    shipment_end(s, rc);
    return;
  }
  /* The client took the body; s stays for the result. */
  s->batch = NULL;
}

static void
on_linger(uv_timer_t *t)
{
  struct daemon *d = t->data;

  d->linger_expired = 1;
  pump(d);
}

/* Is more input on its way (a blob not yet transformed)? */
static int
more_coming(const struct daemon *d)
{
  /* Queued blobs do not count: they start only when staged blobs leave,
     so waiting for them would wait for ourselves; nor does a listing that
     is paused for room, or whose blobs could not start for the same
     reason. downloading counts the STARTING and DOWNLOADING jobs. */
  if(d->downloading || d->transforming)
    return 1;
  return d->listing && !d->list_paused &&
         d->nshipping < MAX_STAGED;
}

/*
 * An empty shipment for ship_pump to fill: the one it kept last time
 * (whose segment array need not be cleared: only the first nseg entries
 * are read), else a new one. Returns NULL when out of memory. The caller
 * owns the result: it sends it or gives it back as d->ship_spare.
 */
static struct shipment *
ship_candidate(struct daemon *d)
{
  struct shipment *s = d->ship_spare;

  if(s) {
    d->ship_spare = NULL;
    s->nseg = 0;
    s->count = 0;
    return s;
  }
  return calloc(1, sizeof(*s));
}

/*
 * Starts shipments while request slots are free (two per slot: one being
 * compressed while one is sent). A shipment takes the next bodies of the
 * blobs that are shipping, oldest blob first, while they fit; it leaves
 * when it is SHIP_FULL_PERCENT full, when no more input is coming, when it
 * has waited SHIP_LINGER_MS, or when the daemon is stopping.
 */
static void
ship_pump(struct daemon *d)
{
  size_t max = (size_t)d->cfg->destination.max_request_bytes;
  int rc;

  while(!d->stopping_hard &&
        d->bodies_busy < 2 * (size_t)d->cfg->destination.concurrency) {
    struct shipment *s = ship_candidate(d);
    size_t len = 2;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int full = 0, need_sync = 0;

    if(!s)
      return;
    s->d = d;
    for(struct job *j = d->shipq; j && !full; j = j->snext) {
      if(j->phase != JOB_SHIPPING || j->records == UINT64_MAX)
        continue;
      /* The journal must name a blob before any of its records leave (a
         crash may then send them again, and only then): its begin line
         waits for a sync, which one CKOP_SYNC provides for all. */
      if(j->begin_seq > d->begin_durable) {
        need_sync = 1;
        continue;
      }
      for(size_t b = j->next_body + j->taken; b < j->nbodies; b++) {
        const struct body_ref *r = &j->bodies[b];
        size_t add = r->len - 2 + (s->nseg ? 1 : 0);
        int64_t nlo = r->min_time < lo ? r->min_time : lo;
        int64_t nhi = r->max_time > hi ? r->max_time : hi;

        if(s->nseg == SHIP_MAX_SEGMENTS || (max - len) * 100 < max) {
          full = 1;
          break;
        }
        /* Too large for the room left: this blob's later bodies wait
           behind it (a blob's bodies leave in order), but a smaller body of
           a later blob may still fill the request (first fit). */
        if(len + add > max)
          break;
        /* Out of this request's 30-minute window: this blob waits for a
           later request (its bodies stay in order), later blobs may fit. */
        if(nhi - nlo > BATCHER_MAX_SPAN_SECONDS)
          break;
        s->seg[s->nseg++] = (struct segment){ j, b, r->count, r->first,
                                              s->count, 0, 0 };
        s->count += r->count;
        len += add;
        lo = nlo;
        hi = nhi;
        j->taken++;
      }
    }
    for(size_t i = 0; i < s->nseg; i++)
      s->seg[i].j->taken = 0;
    if(need_sync && !d->sync_queued) {
      struct ckop *op = calloc(1, sizeof(*op));

      if(op) {
        op->kind = CKOP_SYNC;
        d->sync_queued = 1;
        lane_push(d, op); /* its completion pumps again */
      }
    }
    if(!s->nseg) {
      d->ship_spare = s;
      return;
    }
    if(!full && len * 100 < max * SHIP_FULL_PERCENT &&
       (more_coming(d) || need_sync) && !d->linger_expired &&
       !d->stopping) {
      /* Worth waiting a moment for the transforms in progress. */
      if(!uv_is_active((uv_handle_t *)&d->linger_timer))
        uv_timer_start(&d->linger_timer, on_linger, SHIP_LINGER_MS, 0);
      d->ship_spare = s;
      return;
    }
    d->linger_expired = 0;
    uv_timer_stop(&d->linger_timer);
    for(size_t i = 0; i < s->nseg; i++) {
      struct job *j = s->seg[i].j;

      j->next_body++;
      j->bodies_busy++;
      if(j->next_body >= j->nbodies)
        shipq_del(d, j);
    }
    d->bodies_busy++;
    s->work.data = s;
    rc = uv_queue_work(&d->loop, &s->work, prepare_work, prepare_done);
    if(rc) {
      shipment_end(s, ERR_NOMEM);
      return;
    }
  }
}

static void
maybe_commit(struct job *j)
{
  struct daemon *d = j->d;

  if(j->phase != JOB_SHIPPING || j->bodies_busy ||
     j->next_body < j->nbodies)
    return;
  if(j->acked + j->dead != j->records) {
    job_drop(j, "not every record was delivered");
    return;
  }
  metrics_inc(d->metrics, METRIC_BLOBS_PROCESSED, 1);
  log_debug(MOD, "%s: %" PRIu64 " records sent, %" PRIu64 " dead-lettered",
            j->name, j->acked, j->dead);
  j->phase = JOB_COMMITTING;
  d->nshipping--;
  if(j->body_fd >= 0)
    close(j->body_fd);
  j->body_fd = -1;
  lane_job(d, CKOP_COMMIT, j);
}

/*
 * One body of j is finished: acked records were acknowledged, dead ones
 * dead-lettered; rc != 0 means the body could not be delivered now (the
 * daemon is stopping, or a local failure) and the blob stays unfinished.
 * The caller runs pump() afterwards.
 */
static void
body_finished(struct job *j, uint64_t acked, uint64_t dead, int rc)
{
  j->bodies_busy--;
  j->acked += acked;
  j->dead += dead;
  if(rc) {
    j->next_body = j->nbodies; /* send nothing more for this blob */
    shipq_del(j->d, j);
    if(!j->bodies_busy)
      job_drop(j, err_str(rc));
    else
      j->records = UINT64_MAX; /* cannot complete: dropped when idle */
  }
  else if(j->records == UINT64_MAX) {
    if(!j->bodies_busy)
      job_drop(j, "an earlier body failed");
  }
  else
    maybe_commit(j);
}

static void
start_shipping(struct job *j)
{
  j->phase = JOB_SHIPPING;
  j->d->nshipping++;
  j->next_body = 0;
  if(j->nbodies)
    shipq_add(j->d, j);
  maybe_commit(j); /* a report with no records at all */
}

/* ---- committing and after_ingest -------------------------------------- */

static void
on_deleted(struct job *j, int rc, const char *why)
{
  struct daemon *d = j->d;

  if(rc)
    log_warn(MOD, "%s: after_ingest delete failed: %s (the blob stays; it "
             "is done and will not be sent again)", j->name,
             why ? why : err_str(rc));
  job_remove(j);
  pump(d);
  maybe_drained(d);
}

/* Re-queues the commits that failed (jobs still COMMITTING, not queued). */
static void
on_retry_timer(uv_timer_t *t)
{
  struct daemon *d = t->data;

  d->commit_retry = 0;
  for(struct job *j = d->jobs; j; j = j->next) {
    if(j->phase == JOB_COMMITTING && j->commit_failures && !j->commit_queued) {
      j->commit_queued = 1;
      lane_job(d, CKOP_COMMIT, j);
    }
  }
}

static void
on_committed(struct daemon *d, struct job *j, int rc)
{
  j->commit_queued = 0;
  if(rc) {
    /* The records are delivered but the commit is not durable. Keep the
       job and retry the commit (dropping it would send every record again
       on each poll while the disk stays full). Listing and new work pause
       meanwhile (see pump), so nothing advances past a state that cannot
       be written. */
    if(j->commit_failures++ == 0 || j->commit_failures % 30 == 0)
      log_error(MOD, "%s: checkpoint commit failed: %s; retrying (check "
                "the state directory %s: disk full or read-only?)", j->name,
                err_str(rc), d->cfg->state.directory);
    if(d->stopping_hard) {
      job_remove(j);
      return;
    }
    d->commit_retry = 1;
    if(!uv_is_active((uv_handle_t *)&d->retry_timer))
      uv_timer_start(&d->retry_timer, on_retry_timer, 1000, 0);
    return;
  }
  if(j->commit_failures)
    log_info(MOD, "%s: checkpoint commit succeeded after %u failures",
             j->name, j->commit_failures);
  /* Only a blob whose every record was acknowledged is deleted: a bad
     blob, or one with dead-lettered records, stays for inspection and
     replay. */
  if(d->cfg->source.after_ingest == CONFIG_AFTER_INGEST_DELETE &&
     !j->fail_reason && j->dead == 0 && !d->stopping_hard) {
    j->phase = JOB_DELETING;
    if(storage_adapter_delete(d, j) == 0)
      return;
  }
  job_remove(j);
}

/* ---- scheduling ------------------------------------------------------- */

/* Drops a job without committing it: the blob will be listed again. */
static void
job_drop(struct job *j, const char *why)
{
  struct daemon *d = j->d;

  if(!d->stopping)
    log_warn(MOD, "%s: not finished (%s); it will be retried on a later "
             "poll", j->name, why);
  job_remove(j);
}

static void list_resume(struct daemon *d);

static void
pump(struct daemon *d)
{
  size_t staged = 0;

  /* Free request slots go to blobs already shipping, oldest first, even
     while stopping: finishing them is what a graceful stop is for. */
  ship_pump(d);
  list_resume(d);
  if(d->stopping || d->reloading || d->commit_retry)
    return;
  staged = d->downloading + d->transforming + d->nshipping;
  /* Jobs start in list order: those before the cursor have started. */
  while(d->cursor && d->cursor->phase != JOB_QUEUED)
    d->cursor = d->cursor->next;
  for(struct job *j = d->cursor, *next; j; j = next) {
    next = j->next;
    if(j->phase != JOB_QUEUED)
      continue;
    if(d->downloading >= d->cfg->source.download_concurrency)
      break;
    /* Do not download more than the transforms can take: a downloaded blob
       waits on disk, but unbounded waiting blobs fill the disk. */
    if(d->transforming >= d->max_transforms &&
       d->downloading >= 1)
      break;
    /* Do not run ahead of the destination: transformed blobs wait on disk
       for request slots, each with an open spool file. */
    if(staged >= MAX_STAGED)
      break;
    /* Nor ahead of the request bodies waiting in memory: past
       MEM_BODIES_HIGH a new blob's bodies would go to a spool file, to be
       read back when a slot frees. The bodies leave memory as requests
       are built, and pump runs again as each request ends. */
    if((d->nshipping || d->transforming) &&
       atomic_load(&d->mem_bodies) >= MEM_BODIES_HIGH)
      break;
    staged++;
    /* The begin line is journalled before the first byte is fetched, and
       synced before the first record is sent (ship_pump), so that after a
       crash the journal names every blob whose records may have been sent
       (the only ones that may be sent twice). */
    j->phase = JOB_STARTING;
    d->nqueued--;
    d->cursor = next;
    d->downloading++;
    lane_job(d, CKOP_BEGIN, j);
  }
}

static void
on_begun(struct daemon *d, struct job *j, int rc)
{
  d->downloading--;
  if(rc) {
    job_drop(j, "cannot journal its start (is the state directory full or "
             "read-only?)");
    return;
  }
  if(d->stopping) {
    job_remove(j);
    return;
  }
  start_download(j);
}


/* ---- clients: storage, credentials, destination ----------------------- */

/*
 * The storage client asks for Entra tokens through a provider interface
 * with its own callback shape; a shim carries (cb, req) through the
 * credential provider. Shims are listed so that they can be cancelled
 * before the clients are destroyed.
 */
struct token_shim {
  struct token_shim *next;
  struct daemon *d;
  storage_token_cb cb;
  void *req;
};

static void
shim_unlink(struct daemon *d, struct token_shim *t)
{
  for(struct token_shim **pp = &d->shims; *pp; pp = &(*pp)->next) {
    if(*pp == t) {
      *pp = t->next;
      return;
    }
  }
}

static void
shim_done(void *ud, int rc, const char *token, const char *err)
{
  struct token_shim *t = ud;

  shim_unlink(t->d, t);
  if(!rc)
    metrics_set(t->d->metrics, METRIC_TOKEN_EXPIRY_STORAGE, 0);
  t->cb(t->req, rc, token, err);
  free(t);
}

static int
storage_token_get(void *ud, storage_token_cb cb, void *req)
{
  struct daemon *d = ud;
  struct token_shim *t = calloc(1, sizeof(*t));
  int rc;

  if(!t)
    return ERR_NOMEM;
  t->d = d;
  t->cb = cb;
  t->req = req;
  t->next = d->shims;
  d->shims = t;
  rc = cred_get_token(d->storage_cred, shim_done, t);
  if(rc) {
    shim_unlink(d, t);
    free(t);
  }
  return rc;
}

static void
storage_token_invalidate(void *ud)
{
  struct daemon *d = ud;

  cred_invalidate(d->storage_cred, NULL);
}

static void
on_list(const struct storage_result *res, struct blob_page *page, void *ud)
{
  struct daemon *d = ud;

  d->list_op = NULL;
  if(res->rc || !page) {
    if(res->rc != ERR_ABORTED)
      log_error(MOD, "listing container %s failed: %s",
                d->cfg->source.container,
                res->message[0] ? res->message : err_str(res->rc));
    on_page(d, res->rc ? res->rc : ERR_INVAL, NULL, 0, NULL);
    return;
  }
  on_page(d, 0, page->entries, page->n, page->next_marker);
}

static void
list_next_page(struct daemon *d)
{
  int rc;

  if(!d->storage) {
    on_page(d, ERR_ABORTED, NULL, 0, NULL);
    return;
  }
  rc = storage_list_page(d->storage, d->cfg->source.prefix, d->marker,
                         LIST_PAGE, on_list, d, &d->list_op);
  if(rc) {
    d->list_op = NULL;
    log_error(MOD, "cannot start listing: %s", err_str(rc));
    on_page(d, rc, NULL, 0, NULL);
  }
}

/* The download sink: body bytes go to the job's spool file. */
static int
spool_write(void *ud, const void *data, size_t len)
{
  struct job *j = ud;

  if(j->in_mem) {
    /* More bytes than listed: the blob changed since the listing. */
    if(len > j->size - j->mem.len || buf_append(&j->mem, data, len) != 0)
      return ERR_CHANGED;
    j->spool_bytes += len;
    return 0;
  }
  if(fsio_write_all(j->spool_fd, data, len) != 0) {
    log_error(MOD, "%s: cannot write the spool file: %s", j->name,
              strerror(errno));
    return ERR_IO;
  }
  j->spool_bytes += len;
  return 0;
}

static void
on_get(const struct storage_result *res, struct buf *body, void *ud)
{
  struct job *j = ud;

  (void)body;
  j->get_op = NULL;
  if(res->rc && res->rc != ERR_ABORTED && res->rc != ERR_TOOBIG)
    log_warn(MOD, "%s: download failed: %s", j->name,
             res->message[0] ? res->message : err_str(res->rc));
  on_downloaded(j, res->rc, res->message[0] ? res->message : NULL);
}

static int
storage_adapter_get(struct daemon *d, struct job *j)
{
  struct http_sink sink = { NULL, spool_write, j };

  if(!d->storage)
    return ERR_ABORTED;
  return storage_get(d->storage, j->name, j->etag,
                     (size_t)d->cfg->source.max_blob_bytes, &sink, on_get, j,
                     (struct storage_op **)&j->get_op);
}

static void
on_delete(const struct storage_result *res, void *ud)
{
  struct job *j = ud;

  j->get_op = NULL;
  on_deleted(j, res->rc, res->message[0] ? res->message : NULL);
}

static int
storage_adapter_delete(struct daemon *d, struct job *j)
{
  if(!d->storage)
    return ERR_ABORTED;
  return storage_delete(d->storage, j->name, j->etag, on_delete, j,
                        (struct storage_op **)&j->get_op);
}

static enum cred_method
cred_method_of(enum config_cred_method m)
{
  switch(m) {
  case CONFIG_CRED_CLIENT_SECRET: return CRED_CLIENT_SECRET;
  case CONFIG_CRED_CLIENT_CERTIFICATE: return CRED_CLIENT_CERTIFICATE;
  case CONFIG_CRED_WORKLOAD_IDENTITY: return CRED_WORKLOAD_IDENTITY;
  case CONFIG_CRED_MANAGED_IDENTITY: return CRED_MANAGED_IDENTITY;
  default: return CRED_DEFAULT;
  }
}

static int
cred_for(struct daemon *d, const struct config *cfg, const char *scope,
         struct cred **out)
{
  const struct config_credential *c = &cfg->credential;
  struct cred_opts o;

  memset(&o, 0, sizeof(o));
  o.method = cred_method_of(c->method);
  o.tenant_id = c->tenant_id;
  o.client_id = c->client_id;
  o.client_secret = c->client_secret;
  o.certificate_file = c->certificate_file;
  o.certificate_alg = JWT_PS256;
  o.authority_host = c->authority_host;
  o.scope = scope;
  o.imds_endpoint = c->imds_endpoint;
  if(o.method == CRED_MANAGED_IDENTITY || o.method == CRED_DEFAULT) {
    o.mi_client_id = c->client_id;
    o.mi_object_id = c->object_id;
    o.mi_res_id = c->resource_id;
  }
  return cred_create(&d->loop, d->http, &o, out);
}

/* The ingestion client's per-attempt observer: metrics and readiness. */
static void
observe_attempt(void *ud, long status, uint64_t json_bytes)
{
  struct daemon *d = ud;

  metrics_count_status(d->metrics, status);
  metrics_observe_request_size(d->metrics, json_bytes);
  /* A rejected record (400) is the API working; only failures that leave
     records pending count against readiness. */
  metrics_send_done(d->metrics, (status >= 200 && status < 300) ||
                                status == 400 || status == 413);
}

static int
clients_create(struct daemon *d)
{
  const struct config *cfg = d->cfg;
  struct http_engine_opts ho;
  struct storage_opts so;
  char err[640] = "";
  int rc;

  memset(&ho, 0, sizeof(ho));
  ho.ca_file = cfg->tls.ca_file;
  ho.timeout_ms = (long)cfg->destination.timeout_ms;
  if((rc = http_engine_create(&d->loop, &ho, &d->http)) != 0) {
    log_error(MOD, "cannot start the HTTP engine%s: %s",
              cfg->tls.ca_file[0] ? " (check tls.ca_file)" : "",
              err_str(rc));
    return rc == ERR_CONFIG ? ERR_CONFIG : rc;
  }

  memset(&so, 0, sizeof(so));
  so.connection_string = cfg->source.connection_string;
  so.endpoint = cfg->source.endpoint;
  so.account = cfg->source.account;
  so.account_key = cfg->source.account_key;
  so.sas_token = cfg->source.sas_token;
  so.container = cfg->source.container;
  switch(cfg->source.auth) {
  case CONFIG_AUTH_SAS: so.auth = STORAGE_AUTH_SAS; break;
  case CONFIG_AUTH_ENTRA: so.auth = STORAGE_AUTH_ENTRA; break;
  default: so.auth = STORAGE_AUTH_SHARED_KEY; break;
  }
  if(so.auth == STORAGE_AUTH_ENTRA && !cfg->source.connection_string[0]) {
    if((rc = cred_for(d, cfg, cfg->credential.storage_scope,
                      &d->storage_cred)) != 0)
      return ERR_CONFIG;
    so.token.get = storage_token_get;
    so.token.invalidate = storage_token_invalidate;
    so.token.ud = d;
  }
  rc = storage_create(d->http, &d->loop, &so, &d->storage, err, sizeof(err));
  if(rc) {
    log_error(MOD, "source: %s", err[0] ? err : err_str(rc));
    return ERR_CONFIG;
  }

  if(cfg->destination.type == CONFIG_DEST_FILE) {
    if((rc = filesink_open(cfg->destination.path, &d->fsink)) != 0) {
      log_error(MOD, "destination.path %s: %s", cfg->destination.path,
                strerror(errno));
      return ERR_CONFIG;
    }
  }
  else {
    struct ingest_opts io;

    if((rc = cred_for(d, cfg, cfg->credential.scope, &d->cred)) != 0)
      return ERR_CONFIG;
    memset(&io, 0, sizeof(io));
    io.endpoint = cfg->destination.endpoint;
    io.dcr_immutable_id = cfg->destination.dcr_immutable_id;
    io.stream = cfg->destination.stream;
    io.compression = cfg->destination.compression == CONFIG_COMPRESSION_NONE
                     ? INGEST_NONE : INGEST_GZIP;
    io.gzip_level = GZIP_DEFAULT_LEVEL;
    io.concurrency = cfg->destination.concurrency;
    io.max_pending = 4 * (size_t)cfg->destination.concurrency;
    io.timeout_ms = (long)cfg->destination.timeout_ms;
    io.observe = observe_attempt;
    io.observe_ud = d;
    if((rc = ingest_create(&d->loop, d->http, d->cred, &io,
                           &d->ingest)) != 0)
      return ERR_CONFIG;
    log_info(MOD, "credential: %s", cred_describe(d->cred));
  }
  log_info(MOD, "source: %s, container %s, auth %s",
           storage_endpoint(d->storage), cfg->source.container,
           storage_auth_name(d->storage));
  return 0;
}

static void
after_http_closed(void *ud)
{
  struct daemon *d = ud;
  void (*then)(struct daemon *) = d->close_then;

  d->clients_closing = 0;
  d->close_then = NULL;
  if(then)
    then(d);
}

static void
after_ingest_closed(void *ud)
{
  struct daemon *d = ud;
  struct http_engine *http = d->http;

  /* Token waits first: their storage requests go away with the client. */
  while(d->shims) {
    struct token_shim *t = d->shims;

    d->shims = t->next;
    cred_cancel(d->storage_cred, t);
    free(t);
  }
  storage_destroy(d->storage);
  d->storage = NULL;
  cred_destroy(d->storage_cred);
  d->storage_cred = NULL;
  cred_destroy(d->cred);
  d->cred = NULL;
  filesink_destroy(d->fsink);
  d->fsink = NULL;
  d->http = NULL;
  if(http)
    http_engine_close(http, after_http_closed, d);
  else
    after_http_closed(d);
}

/*
 * Closes every client, in dependency order (ingestion, then storage and
 * credentials, then the HTTP engine), then calls then(d) (may be NULL).
 * Pending operations complete with ERR_ABORTED on the way, which drops
 * their jobs uncommitted. A second call while closing only replaces then.
 */
static void
clients_close(struct daemon *d, void (*then)(struct daemon *d))
{
  struct ingest *ing = d->ingest;

  if(then || !d->clients_closing)
    d->close_then = then;
  if(d->clients_closing)
    return;
  d->clients_closing = 1;
  if(d->list_op) {
    struct storage_op *op = d->list_op;

    d->list_op = NULL;
    storage_cancel(op);
  }
  d->ingest = NULL;
  if(ing)
    ingest_close(ing, after_ingest_closed, d);
  else
    after_ingest_closed(d);
}

/* Copies the ingestion client's counters into the metrics (on each tick). */
static void
sync_ingest_metrics(struct daemon *d)
{
  struct ingest_stats st;
  struct cred_stats cs;

  if(!d->ingest)
    return;
  ingest_get_stats(d->ingest, &st);
  metrics_inc(d->metrics, METRIC_INGESTION_RETRIES,
              st.retries - d->seen_retries);
  metrics_inc(d->metrics, METRIC_INGESTION_BYTES_WIRE,
              st.bytes_sent - d->seen_bytes_sent);
  metrics_inc(d->metrics, METRIC_INGESTION_BYTES_UNCOMPRESSED,
              st.bytes_json - d->seen_bytes_json);
  metrics_inc(d->metrics, METRIC_RECORDS_TIME_CLAMPED,
              st.clamped - d->seen_clamped);
  d->seen_retries = st.retries;
  d->seen_bytes_sent = st.bytes_sent;
  d->seen_bytes_json = st.bytes_json;
  d->seen_clamped = st.clamped;
  if(d->cred) {
    cred_get_stats(d->cred, &cs);
    if(cs.expires_at_ms)
      metrics_set(d->metrics, METRIC_TOKEN_EXPIRY_INGESTION,
                  cs.expires_at_ms / 1000);
  }
  if(d->storage_cred) {
    cred_get_stats(d->storage_cred, &cs);
    if(cs.expires_at_ms)
      metrics_set(d->metrics, METRIC_TOKEN_EXPIRY_STORAGE,
                  cs.expires_at_ms / 1000);
  }
}

/* ---- lifecycle -------------------------------------------------------- */

static size_t
jobs_busy(const struct daemon *d)
{
  size_t n = 0;

  for(const struct job *j = d->jobs; j; j = j->next) {
    if(j->phase != JOB_QUEUED)
      n++;
  }
  return n;
}

static void
close_cb_noop(uv_handle_t *h)
{
  (void)h;
}

static void
finish(struct daemon *d)
{
  if(d->closing)
    return;
  d->closing = 1;
  sdnotify_send("STOPPING=1\nSTATUS=stopped");
  log_info(MOD, "stopped");
  clients_close(d, NULL);
  uv_close((uv_handle_t *)&d->poll_timer, close_cb_noop);
  uv_close((uv_handle_t *)&d->tick_timer, close_cb_noop);
  uv_close((uv_handle_t *)&d->stop_timer, close_cb_noop);
  uv_close((uv_handle_t *)&d->retry_timer, close_cb_noop);
  uv_close((uv_handle_t *)&d->linger_timer, close_cb_noop);
  uv_close((uv_handle_t *)&d->sig_term, close_cb_noop);
  uv_close((uv_handle_t *)&d->sig_int, close_cb_noop);
  uv_close((uv_handle_t *)&d->sig_hup, close_cb_noop);
}

static void apply_reload(struct daemon *d);

static void
maybe_drained(struct daemon *d)
{
  if(!d->stopping && !d->reloading)
    return;
  if(d->list_paused) {
    list_resume(d); /* ends the round, which calls back here */
    return;
  }
  if(d->stopping_hard) {
    /* Past shutdown_timeout nothing new is sent: a blob with no body in
       flight and no commit queued is left unfinished, to be sent again by
       the next run. */
    for(struct job *j = d->jobs, *next; j; j = next) {
      next = j->next;
      if((j->phase == JOB_SHIPPING && !j->bodies_busy) ||
         (j->phase == JOB_COMMITTING && !j->commit_queued))
        job_remove(j);
    }
  }
  if(d->listing || d->lane_busy || d->lane_head || jobs_busy(d))
    return;
  if(d->stopping) {
    /* Jobs never started are simply left for the next run. */
    while(d->jobs)
      job_remove(d->jobs);
    finish(d);
  }
  else
    apply_reload(d);
}

static void
on_stop_timer(uv_timer_t *t)
{
  struct daemon *d = t->data;

  log_warn(MOD, "shutdown_timeout reached with %zu blobs in flight; they "
           "are left unfinished and will be sent again", jobs_busy(d));
  d->stopping_hard = 1;
  atomic_store(&d->abort_work, 1);
  /* Closing the clients completes every transfer with ERR_ABORTED, which
     drops its job uncommitted. */
  clients_close(d, NULL);
  maybe_drained(d);
}

static void
request_stop(struct daemon *d, const char *why)
{
  if(d->stopping)
    return;
  log_info(MOD, "%s: stopping (finishing in-flight blobs within %" PRIu64
           " ms)", why, d->cfg->shutdown_timeout_ms);
  sdnotify_send("STOPPING=1\nSTATUS=stopping");
  d->stopping = 1;
  uv_timer_stop(&d->poll_timer);
  if(d->list_op) {
    struct storage_op *op = d->list_op;

    d->list_op = NULL;
    storage_cancel(op);
  }
  uv_timer_start(&d->stop_timer, on_stop_timer, d->cfg->shutdown_timeout_ms,
                 0);
  maybe_drained(d);
}

static void
on_signal(uv_signal_t *s, int signum)
{
  struct daemon *d = s->data;
  char *errors = NULL, *save = NULL;
  struct config *ncfg = NULL;
  int rc;

  if(signum != SIGHUP) {
    request_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
    return;
  }
  if(d->stopping)
    return;
  rc = config_load(d->config_path, &ncfg, &errors);
  if(rc) {
    log_error(MOD, "SIGHUP: the new configuration is invalid; keeping the "
              "old one:");
    for(char *line = errors ? strtok_r(errors, "\n", &save) : NULL; line;
        line = strtok_r(NULL, "\n", &save))
      log_error(MOD, "  %s", line);
    free(errors);
    return;
  }
  config_register_secrets(ncfg);
  log_set_level(ncfg->log.level);
  log_set_format(ncfg->log.format);
  log_info(MOD, "SIGHUP: configuration reloaded; applying it once the "
           "blobs in flight are done");
  config_destroy(d->next_cfg);
  d->next_cfg = ncfg;
  d->reloading = 1;
  uv_timer_stop(&d->poll_timer);
  maybe_drained(d);
}

static void
reload_reopened(struct daemon *d)
{
  int rc = clients_create(d);

  d->reloading = 0;
  if(rc) {
    log_error(MOD, "cannot apply the reloaded configuration: %s; stopping",
              err_str(rc));
    d->exit_rc = rc;
    request_stop(d, "reload failure");
    return;
  }
  log_info(MOD, "reloaded configuration in effect");
  if(d->next_cfg) {
    /* Another SIGHUP came while the clients were closing: nothing is in
       flight yet, so apply that one now. */
    d->reloading = 1;
    maybe_drained(d);
    return;
  }
  uv_timer_start(&d->poll_timer, on_poll_timer, 0, 0);
}

static void
apply_reload(struct daemon *d)
{
  struct config *old = d->cfg;

  /* Once per new configuration: while the clients close, callbacks that
     complete on the way may find the pipeline drained again (ASan caught
     a second call here setting d->cfg to NULL); a SIGHUP meanwhile leaves
     its configuration for reload_reopened. */
  if(d->clients_closing || !d->next_cfg)
    return;
  /* The pipeline is empty: rebuild every client on the new config. */
  while(d->jobs)
    job_remove(d->jobs);
  d->cfg = d->next_cfg;
  d->next_cfg = NULL;
  config_destroy(old);
  clients_close(d, reload_reopened);
}

static void
on_tick(uv_timer_t *t)
{
  struct daemon *d = t->data;
  uint64_t now = now_ms(d);

  metrics_heartbeat(d->metrics);
  sync_ingest_metrics(d);
  if(d->watchdog_ms && now - d->last_watchdog >= d->watchdog_ms / 2) {
    d->last_watchdog = now;
    sdnotify_send("WATCHDOG=1");
  }
}

/* Opens the state, spool and dead-letter directories and the checkpoint. */
static int
state_open(struct daemon *d)
{
  struct checkpoint_opts o;
  char err[1024] = "", dldir[4200];
  DIR *dir;
  struct dirent *de;
  int rc;

  if(mkdir(d->cfg->state.directory, 0700) < 0 && errno != EEXIST) {
    log_error(MOD, "cannot create state.directory %s: %s",
              d->cfg->state.directory, strerror(errno));
    return ERR_CONFIG;
  }
  snprintf(d->spool_dir, sizeof(d->spool_dir), "%s/spool",
           d->cfg->state.directory);
  if(mkdir(d->spool_dir, 0700) < 0 && errno != EEXIST) {
    log_error(MOD, "cannot create %s: %s", d->spool_dir, strerror(errno));
    return ERR_CONFIG;
  }
  /* Spool files are unlinked at creation; names left by a crash of the
     mkstemp fallback are removed here. */
  if((dir = opendir(d->spool_dir)) != NULL) {
    while((de = readdir(dir)) != NULL) {
      if(!strncmp(de->d_name, "blob-", 5))
        unlinkat(dirfd(dir), de->d_name, 0);
    }
    closedir(dir);
  }
  memset(&o, 0, sizeof(o));
  o.dir = d->cfg->state.directory;
  o.grace = (int64_t)(d->cfg->state.grace_ms / 1000);
  o.start_from = d->cfg->source.start_from == CONFIG_START_NOW ? wall_now()
                 : d->cfg->source.start_from == CONFIG_START_TIME
                   ? d->cfg->source.start_time : 0;
  rc = checkpoint_open(&o, &d->ck, err, sizeof(err));
  if(rc) {
    log_error(MOD, "checkpoint: %s", err);
    if(rc == ERR_PARSE)
      log_error(MOD, "refusing to start: a corrupt checkpoint would make "
                "the daemon send every report again. Inspect it, restore a "
                "backup, or move the state directory aside to start over "
                "deliberately (with source.start_from set as wanted).");
    return rc;
  }
  snprintf(dldir, sizeof(dldir), "%s/dead-letter", d->cfg->state.directory);
  rc = deadletter_open(dldir, DEADLETTER_SYNC_EACH, &d->dl);
  if(rc) {
    log_error(MOD, "cannot open the dead-letter directory %s: %s", dldir,
              err_str(rc));
    return ERR_CONFIG;
  }
  return 0;
}

int
daemon_run(const char *config_path, struct config *cfg)
{
  struct daemon *d = calloc(1, sizeof(*d));
  char err[512] = "", nthreads[24];
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int rc = ERR_NOMEM;
  struct metrics_health h = { 0, 0 };

  if(!d) {
    config_destroy(cfg);
    return ERR_NOMEM;
  }
  d->cfg = cfg;
  d->config_path = strdup(config_path);
  if(ncpu < 1)
    ncpu = 1;
  malloc_tune(ncpu);
  /* The pool runs transforms (CPU-bound: one per core), body preparation
     and the checkpoint lane; size it for that rather than libuv's default
     of 4, unless the operator set it. It must be set before the loop first
     uses the pool. */
  d->max_transforms = (size_t)ncpu;
  if(!getenv("UV_THREADPOOL_SIZE")) {
    snprintf(nthreads, sizeof(nthreads), "%ld", ncpu + 2);
    setenv("UV_THREADPOOL_SIZE", nthreads, 1);
  }
  if((rc = uv_loop_init(&d->loop)) != 0) {
    log_error(MOD, "uv_loop_init: %s", uv_strerror(rc));
    rc = ERR_NOMEM;
    goto out_noloop;
  }
  if((rc = metrics_create(&d->metrics)) != 0)
    goto out_loop;
  if((rc = state_open(d)) != 0)
    goto out_loop;
  h.ready_window_ms = (uint32_t)(cfg->source.poll_interval_ms * 4 > 60000
                                 ? cfg->source.poll_interval_ms * 4 : 60000);
  rc = metrics_server_start(d->metrics, cfg->metrics.listen, &h, &d->msrv,
                            err, sizeof(err));
  if(rc) {
    log_error(MOD, "%s", err);
    rc = ERR_CONFIG;
    goto out_loop;
  }
  if((rc = clients_create(d)) != 0)
    goto out_loop;
  metrics_set_config_loaded(d->metrics, 1);

  uv_timer_init(&d->loop, &d->poll_timer);
  uv_timer_init(&d->loop, &d->tick_timer);
  uv_timer_init(&d->loop, &d->stop_timer);
  uv_timer_init(&d->loop, &d->retry_timer);
  uv_timer_init(&d->loop, &d->linger_timer);
  uv_signal_init(&d->loop, &d->sig_term);
  uv_signal_init(&d->loop, &d->sig_int);
  uv_signal_init(&d->loop, &d->sig_hup);
  d->poll_timer.data = d->tick_timer.data = d->stop_timer.data = d;
  d->retry_timer.data = d;
  d->linger_timer.data = d;
  d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
  uv_signal_start(&d->sig_term, on_signal, SIGTERM);
  uv_signal_start(&d->sig_int, on_signal, SIGINT);
  uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
  {
    uint64_t us;

    sdnotify_watchdog_usec(&us);
    d->watchdog_ms = us / 1000;
  }
  uv_timer_start(&d->tick_timer, on_tick, 0, 1000);
  uv_timer_start(&d->poll_timer, on_poll_timer, 0, 0);
  log_info(MOD, "spectra-sentinel %s running: container %s, destination %s",
           SS_VERSION, cfg->source.container,
           cfg->destination.type == CONFIG_DEST_FILE ? cfg->destination.path
                                                     : cfg->destination.stream);
  sdnotify_send("READY=1\nSTATUS=polling");

  uv_run(&d->loop, UV_RUN_DEFAULT);
  rc = d->exit_rc;

out_loop:
  if(!d->closing) {
    /* A start-up failure: close what was opened. */
    clients_close(d, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
  }
  if(uv_loop_close(&d->loop) != 0) {
    log_error(MOD, "uv_loop_close: handles left open at exit");
    if(!rc)
      rc = ERR_INVAL;
  }
out_noloop:
  metrics_server_stop(d->msrv);
  metrics_destroy(d->metrics);
  checkpoint_destroy(d->ck);
  deadletter_destroy(d->dl);
  free(d->marker);
  free(d->ship_spare);
  free(d->config_path);
  config_destroy(d->cfg);
  config_destroy(d->next_cfg);
  free(d);
  return rc;
}

/* ---- check --online ---------------------------------------------------- */

struct online {
  struct daemon *d;
  int pending;
  int failures;
};

static void
online_token(void *ud, int rc, const char *token, const char *err)
{
  struct online *o = ud;

  (void)token;
  o->pending--;
  if(rc) {
    o->failures++;
    printf("FAIL  Entra ID token for %s: %s\n", o->d->cfg->credential.scope,
           err && *err ? err : err_str(rc));
  }
  else
    printf("ok    Entra ID token for %s (%s)\n", o->d->cfg->credential.scope,
           cred_describe(o->d->cred));
}

static void
online_list(const struct storage_result *res, struct blob_page *page,
            void *ud)
{
  struct online *o = ud;

  o->pending--;
  if(res->rc || !page) {
    o->failures++;
    printf("FAIL  list %s/%s: %s\n", storage_endpoint(o->d->storage),
           o->d->cfg->source.container,
           res->message[0] ? res->message : err_str(res->rc));
  }
  else
    printf("ok    list %s/%s (%s): %zu blobs on the first page%s\n",
           storage_endpoint(o->d->storage), o->d->cfg->source.container,
           storage_auth_name(o->d->storage), page->n,
           page->next_marker && *page->next_marker ? ", more follow" : "");
}

static void
online_closed(struct daemon *d)
{
  (void)d;
}

int
daemon_check_online(const struct config *cfg)
{
  struct daemon *d = calloc(1, sizeof(*d));
  struct online o = { d, 0, 0 };
  int rc;

  if(!d)
    return ERR_NOMEM;
  d->cfg = (struct config *)cfg; /* borrowed: never destroyed here */
  if((rc = uv_loop_init(&d->loop)) != 0) {
    free(d);
    return ERR_NOMEM;
  }
  if((rc = metrics_create(&d->metrics)) != 0 ||
     (rc = clients_create(d)) != 0) {
    printf("FAIL  setting up the clients: %s\n", err_str(rc));
    o.failures++;
  }
  else {
    if(d->cred) {
      o.pending++;
      if(cred_get_token(d->cred, online_token, &o) != 0) {
        o.pending--;
        o.failures++;
      }
    }
    o.pending++;
    if(storage_list_page(d->storage, cfg->source.prefix, NULL, 5,
                         online_list, &o, NULL) != 0) {
      o.pending--;
      o.failures++;
    }
    while(o.pending > 0 && uv_run(&d->loop, UV_RUN_ONCE))
      ;
    if(cfg->destination.type == CONFIG_DEST_FILE)
      printf("ok    destination: NDJSON file %s\n", cfg->destination.path);
    else
      printf("info  destination: %s/dataCollectionRules/%s/streams/%s "
             "(not probed: a test request would ingest data)\n",
             cfg->destination.endpoint, cfg->destination.dcr_immutable_id,
             cfg->destination.stream);
  }
  clients_close(d, online_closed);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&d->loop);
  metrics_destroy(d->metrics);
  free(d);
  return o.failures ? ERR_AUTH : (rc ? ERR_INVAL : 0);
}
