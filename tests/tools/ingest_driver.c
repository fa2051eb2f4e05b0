/*
 * ingest_driver.c: sends generated records through the batcher and the Logs
 * Ingestion client, for tests/integration/test_ingest*.sh, which compile it
 * against $BUILD/libspectra.a and run it against tests/fakes/fake_azure.py.
 *
 *   ingest_driver [--option value]...
 *
 * Credential (client_secret against the fake): --authority, --tenant,
 * --client-id, --secret. Client: --endpoint, --dcr, --stream,
 * --concurrency, --max-pending, --timeout-ms, --backoff-base-ms,
 * --backoff-cap-ms, --compression gzip|none, --ca-file. Records: --count N,
 * --poison I,J,K (these task_ids start with "poison"), --time-offset S
 * (TimeGenerated = now + S; records step 1 s apart), --pad BYTES (a string
 * of that size in each record), --max-request BYTES (the batcher's body
 * cap). --deadletter DIR writes rejected records there. --close-after-ms MS
 * shuts the client down after MS milliseconds, whatever is left.
 *
 * Prints one JSON line: {"bodies","acked","rejected","pending","aborted",
 * "requests","throttled","splits","bisections","retries","clamped",
 * "config_errors","auth_refreshes","rejects":[{"index","status","code",
 * "request_id"}...]} and exits 0, or non-zero on a setup failure.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "batcher.h"
#include "cred.h"
#include "deadletter.h"
#include "err.h"
#include "http.h"
#include "ingest.h"
#include "log.h"

static struct {
  uv_loop_t loop;
  uv_timer_t timer;
  struct http_engine *http;
  struct cred *cred;
  struct ingest *ing;
  struct deadletter *dl;
  struct batcher_batch **bodies;
  size_t nbodies, next, done;
  uint64_t acked, rejected, pending, aborted;
  json_t *rejects;
  struct ingest_stats st;
  int closing, closed_http;
} d;

static int
on_body(void *ud, const struct batcher_body *body)
{
  struct batcher_batch *b;

  (void)ud;
  if(batcher_batch_create(body, 0, body->count, &b))
    return ERR_NOMEM;
  d.bodies = realloc(d.bodies, (d.nbodies + 1) * sizeof(*d.bodies));
  d.bodies[d.nbodies++] = b;
  return 0;
}

static int
on_reject(void *ud, uint64_t seq, const char *json, size_t len,
          const char *reason)
{
  (void)ud;
  (void)json;
  (void)len;
  fprintf(stderr, "batcher rejected record %llu: %s\n",
          (unsigned long long)seq, reason);
  return 0;
}

static void submit_more(void);

static void
on_http_closed(void *ud)
{
  (void)ud;
  d.closed_http = 1;
}

static void
on_timer_closed(uv_handle_t *h)
{
  (void)h;
}

static void
on_ingest_closed(void *ud)
{
  (void)ud;
  d.ing = NULL;
  cred_destroy(d.cred);
  d.cred = NULL;
  http_engine_close(d.http, on_http_closed, NULL);
  uv_close((uv_handle_t *)&d.timer, on_timer_closed);
}

static void
shutdown_all(void)
{
  if(d.closing)
    return;
  d.closing = 1;
  uv_timer_stop(&d.timer);
  ingest_get_stats(d.ing, &d.st);
  ingest_close(d.ing, on_ingest_closed, NULL);
}

static void
on_done(void *ud, const struct ingest_result *res)
{
  (void)ud;
  d.done++;
  if(res->rc == ERR_ABORTED)
    d.aborted++;
  for(uint64_t i = 0; i < res->body->count; i++) {
    if(res->state[i] == INGEST_ACKED)
      d.acked++;
    else if(res->state[i] == INGEST_REJECTED) {
      const struct ingest_reject *r = res->reject[i];
      const char *json;
      size_t len;

      d.rejected++;
      json_array_append_new(d.rejects, json_pack(
        "{s:I,s:i,s:s,s:s}", "index", (json_int_t)(res->body->first + i),
        "status", r->status, "code", r->code, "request_id", r->request_id));
      if(d.dl && !batcher_body_record(res->body, i, &json, &len)) {
        struct deadletter_entry e;

        memset(&e, 0, sizeof(e));
        e.blob = "driver/generated.json";
        e.etag = "0x8D0000000000001";
        e.record_index = (int64_t)(res->body->first + i);
        e.reason = "rejected";
        e.http_status = r->status;
        e.error_code = r->code;
        e.error_message = r->message;
        e.request_id = r->request_id;
        e.record = json;
        e.record_len = len;
        if(deadletter_write(d.dl, &e))
          fprintf(stderr, "dead-letter write failed\n");
      }
    }
    else
      d.pending++;
  }
  if(!d.closing)
    submit_more();
  if(d.done == d.nbodies)
    shutdown_all();
}

static void
submit_more(void)
{
  while(d.next < d.nbodies) {
    int rc = ingest_submit(d.ing, batcher_batch_body(d.bodies[d.next]),
                           on_done, NULL);

    if(rc == ERR_AGAIN)
      break;
    if(rc) {
      fprintf(stderr, "ingest_submit: %s\n", err_str(rc));
      exit(1);
    }
    d.next++;
  }
}

static void
on_close_timer(uv_timer_t *t)
{
  (void)t;
  shutdown_all();
}

static void
on_start(uv_timer_t *t)
{
  (void)t;
  submit_more();
  if(d.nbodies == 0)
    shutdown_all();
}

int
main(int argc, char **argv)
{
  struct cred_opts co;
  struct ingest_opts io;
  struct http_engine_opts ho;
  struct batcher *b = NULL;
  const char *poison = "", *dldir = NULL;
  long count = 10, pad = 0, time_offset = 0, close_after = 0;
  size_t max_request = BATCHER_DEFAULT_MAX_REQUEST;
  json_t *out;
  char *line;
  int i, rc;

  memset(&co, 0, sizeof(co));
  memset(&io, 0, sizeof(io));
  memset(&ho, 0, sizeof(ho));
  co.method = CRED_CLIENT_SECRET;
  io.dcr_immutable_id = "dcr-00000000000000000000000000000000";
  io.stream = "Custom-SpectraDetectLogs_CL";
  if(getenv("DRIVER_DEBUG"))
    log_set_level(LOG_DEBUG);
  for(i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];

    if(!strcmp(k, "--authority")) co.authority_host = v;
    else if(!strcmp(k, "--tenant")) co.tenant_id = v;
    else if(!strcmp(k, "--client-id")) co.client_id = v;
    else if(!strcmp(k, "--secret")) co.client_secret = v;
    else if(!strcmp(k, "--endpoint")) io.endpoint = v;
    else if(!strcmp(k, "--dcr")) io.dcr_immutable_id = v;
    else if(!strcmp(k, "--stream")) io.stream = v;
    else if(!strcmp(k, "--concurrency")) io.concurrency = (unsigned)atoi(v);
    else if(!strcmp(k, "--max-pending")) io.max_pending = (size_t)atol(v);
    else if(!strcmp(k, "--timeout-ms")) io.timeout_ms = atol(v);
    else if(!strcmp(k, "--backoff-base-ms")) io.backoff_base_ms = strtoull(v, 0, 10);
    else if(!strcmp(k, "--backoff-cap-ms")) io.backoff_cap_ms = strtoull(v, 0, 10);
    else if(!strcmp(k, "--compression"))
      io.compression = !strcmp(v, "none") ? INGEST_NONE : INGEST_GZIP;
    else if(!strcmp(k, "--ca-file")) ho.ca_file = v;
    else if(!strcmp(k, "--count")) count = atol(v);
    else if(!strcmp(k, "--poison")) poison = v;
    else if(!strcmp(k, "--time-offset")) time_offset = atol(v);
    else if(!strcmp(k, "--pad")) pad = atol(v);
    else if(!strcmp(k, "--max-request")) max_request = (size_t)atol(v);
    else if(!strcmp(k, "--deadletter")) dldir = v;
    else if(!strcmp(k, "--close-after-ms")) close_after = atol(v);
    else {
      fprintf(stderr, "unknown option %s\n", k);
      return 2;
    }
  }
  if(i != argc) {
    fprintf(stderr, "options come in pairs\n");
    return 2;
  }
  d.rejects = json_array();
  if(dldir && deadletter_open(dldir, DEADLETTER_SYNC_EACH, &d.dl))
    return 3;

  /* Records, through the real batcher. */
  if(batcher_create(max_request, on_body, on_reject, NULL, &b))
    return 3;
  {
    int64_t base = (int64_t)time(NULL) + time_offset;
    char *padding = malloc((size_t)pad + 1);

    memset(padding, 'p', (size_t)pad);
    padding[pad] = '\0';
    for(long n = 0; n < count; n++) {
      char tg[21], list[64], *rec;
      int is_poison = 0;
      int64_t t = base + n % 600;

      snprintf(list, sizeof(list), ",%s,", poison);
      {
        char key[32];

        snprintf(key, sizeof(key), ",%ld,", n);
        is_poison = strstr(list, key) != NULL;
      }
      batcher_time_format(t, tg);
      tg[20] = '\0';
      if(asprintf(&rec, "{\"TimeGenerated\":\"%s\",\"task_id\":\"%s-%ld\","
                  "\"submitted\":%lld,\"processed\":%lld,\"index\":0,"
                  "\"info\":{\"file\":{\"name\":\"f%ld.exe\",\"pad\":\"%s\"}},"
                  "\"tags\":[\"t\"]}", tg, is_poison ? "poison" : "task", n,
                  (long long)t - 5, (long long)t, n, padding) < 0)
        return 3;
      rc = batcher_add(b, rec, strlen(rec), t);
      free(rec);
      if(rc)
        return 3;
    }
    free(padding);
    if(batcher_flush(b))
      return 3;
    batcher_destroy(b);
  }

  uv_loop_init(&d.loop);
  uv_timer_init(&d.loop, &d.timer);
  if(http_engine_create(&d.loop, &ho, &d.http))
    return 3;
  co.arc_himds_path = "/nonexistent/himds";
  if(cred_create(&d.loop, d.http, &co, &d.cred))
    return 3;
  rc = ingest_create(&d.loop, d.http, d.cred, &io, &d.ing);
  if(rc) {
    fprintf(stderr, "ingest_create: %s\n", err_str(rc));
    return 3;
  }
  if(close_after > 0)
    uv_timer_start(&d.timer, on_close_timer, (uint64_t)close_after, 0);
  else
    uv_timer_start(&d.timer, on_start, 0, 0);
  if(close_after > 0) {
    /* Submit right away; the timer is the deadline. */
    submit_more();
  }
  uv_run(&d.loop, UV_RUN_DEFAULT);
  /* Bodies never submitted (a close before their turn) are pending too. */
  for(size_t n = d.next; n < d.nbodies; n++)
    d.pending += batcher_batch_body(d.bodies[n])->count;
  out = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
                  "s:I,s:O}",
                  "bodies", (json_int_t)d.nbodies,
                  "acked", (json_int_t)d.acked,
                  "rejected", (json_int_t)d.rejected,
                  "pending", (json_int_t)d.pending,
                  "aborted", (json_int_t)d.aborted,
                  "requests", (json_int_t)d.st.requests,
                  "throttled", (json_int_t)d.st.throttled,
                  "splits", (json_int_t)d.st.splits,
                  "bisections", (json_int_t)d.st.bisections,
                  "retries", (json_int_t)d.st.retries,
                  "clamped", (json_int_t)d.st.clamped,
                  "config_errors", (json_int_t)d.st.config_errors,
                  "auth_refreshes", (json_int_t)d.st.auth_refreshes,
                  "bytes_sent", (json_int_t)d.st.bytes_sent,
                  "rejects", d.rejects);
  line = json_dumps(out, JSON_COMPACT);
  printf("%s\n", line);
  free(line);
  json_decref(out);
  json_decref(d.rejects);
  for(size_t n = 0; n < d.nbodies; n++)
    batcher_batch_destroy(d.bodies[n]);
  free(d.bodies);
  deadletter_destroy(d.dl);
  log_secret_clear();
  if(!d.closed_http || uv_loop_close(&d.loop)) {
    fprintf(stderr, "the loop did not close cleanly\n");
    return 4;
  }
  return 0;
}
