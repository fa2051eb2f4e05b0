/*
 * storage_probe.c: a command-line driver of the storage client for the
 * integration tests (tests/integration/test_storage_azurite.sh compiles it
 * against $BUILD/libspectra.a). Not part of the daemon.
 *
 *   storage_probe AUTH --container C COMMAND
 *   AUTH:    --conn STRING | --endpoint URL [--account A] (--key K | --sas S)
 *   COMMAND: list [--prefix P] [--max N] [--suffix S]...
 *              every file blob of every page: "name<TAB>size<TAB>etag"
 *            getall [--prefix P] [--max N] [--cap BYTES] [--concurrency N]
 *              lists, then downloads every file blob (alternately into a
 *              buffer and through a streaming sink) and prints
 *              "sha256 size name", or "TOOBIG name" for blobs over the cap
 *            get NAME [--etag E] [--cap BYTES]     prints "sha256 size"
 *            delete NAME [--etag E]
 * A failure prints "error: ERRNAME (STATUS CODE): MESSAGE" on stderr and
 * exits 1. getall prints a summary line on stderr.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "blob_list.h"
#include "buf.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "storage.h"

struct item {
  char *name;
  char *etag;
};

struct probe {
  struct storage *s;
  const char *cmd;
  size_t cap;
  unsigned concurrency;
  struct item *items;
  size_t nitems, citems, next, inflight;
  size_t pages, ok, toobig, failed;
  int rc;
};

/* Streaming digest for the sink path. */
struct dl {
  struct probe *p;
  struct item *it;
  EVP_MD_CTX *md;
  size_t bytes;
  int streamed;
};

static void
print_error(const struct storage_result *res)
{
  fprintf(stderr, "error: %s (%ld %s): %s\n", err_str(res->rc), res->status,
          res->code, res->message);
}

static void
hex(const unsigned char *d, unsigned n, char *out)
{
  for(unsigned i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", d[i]);
}

static int
on_list_page(void *ud, struct blob_page *page)
{
  struct probe *p = ud;

  p->pages++;
  for(size_t i = 0; i < page->n; i++) {
    struct blob_entry *e = &page->entries[i];

    if(!strcmp(p->cmd, "list"))
      printf("%s\t%lld\t%s\n", e->name, (long long)e->content_length,
             e->etag ? e->etag : "");
    if(p->nitems == p->citems) {
      size_t n = p->citems ? p->citems * 2 : 1024;
      struct item *ni = realloc(p->items, n * sizeof(*ni));

      if(!ni)
        return ERR_NOMEM;
      p->items = ni;
      p->citems = n;
    }
    p->items[p->nitems].name = e->name;
    p->items[p->nitems].etag = e->etag;
    e->name = e->etag = NULL;   /* taken */
    p->nitems++;
  }
  return 0;
}

static void start_downloads(struct probe *p);

static int
dl_write(void *ud, const void *data, size_t len)
{
  struct dl *d = ud;

  d->bytes += len;
  return EVP_DigestUpdate(d->md, data, len) ? 0 : ERR_IO;
}

static void
on_got(const struct storage_result *res, struct buf *body, void *ud)
{
  struct dl *d = ud;
  struct probe *p = d->p;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  char h[2 * EVP_MAX_MD_SIZE + 1];

  p->inflight--;
  if(res->rc == ERR_TOOBIG) {
    printf("TOOBIG %s\n", d->it->name);
    fprintf(stderr, "toobig: %s\n", res->message);
    p->toobig++;
  }
  else if(res->rc) {
    print_error(res);
    p->failed++;
  }
  else {
    if(!d->streamed) {
      EVP_DigestUpdate(d->md, body->data ? body->data : "", body->len);
      d->bytes = body->len;
    }
    EVP_DigestFinal_ex(d->md, md, &mdlen);
    hex(md, mdlen, h);
    if(!strcmp(p->cmd, "get"))
      printf("%s %zu\n", h, d->bytes);
    else
      printf("%s %zu %s\n", h, d->bytes, d->it->name);
    p->ok++;
  }
  EVP_MD_CTX_free(d->md);
  free(d);
  start_downloads(p);
}

static void
start_downloads(struct probe *p)
{
  while(p->next < p->nitems && p->inflight < p->concurrency) {
    struct item *it = &p->items[p->next];
    struct dl *d = calloc(1, sizeof(*d));
    struct http_sink sink = { NULL, dl_write, d };
    int rc;

    if(!d)
      abort();
    d->p = p;
    d->it = it;
    d->md = EVP_MD_CTX_new();
    if(!d->md || !EVP_DigestInit_ex(d->md, EVP_sha256(), NULL))
      abort();
    d->streamed = p->next % 2 == 1;
    p->next++;
    p->inflight++;
    rc = storage_get(p->s, it->name, it->etag, p->cap,
                     d->streamed ? &sink : NULL, on_got, d, NULL);
    if(rc) {
      fprintf(stderr, "error: storage_get: %s\n", err_str(rc));
      p->failed++;
      p->inflight--;
      EVP_MD_CTX_free(d->md);
      free(d);
    }
  }
}

static void
on_listed(const struct storage_result *res, void *ud)
{
  struct probe *p = ud;

  if(res->rc) {
    print_error(res);
    p->rc = 1;
    return;
  }
  if(!strcmp(p->cmd, "getall"))
    start_downloads(p);
}

static void
on_deleted(const struct storage_result *res, void *ud)
{
  struct probe *p = ud;

  if(res->rc) {
    print_error(res);
    p->rc = 1;
  }
  else
    printf("deleted\n");
}

static void
usage(void)
{
  fprintf(stderr, "usage: see the comment at the top of storage_probe.c\n");
  exit(2);
}

int
main(int argc, char **argv)
{
  struct storage_opts o;
  struct storage_list_filter f;
  const char *suffixes[16];
  struct http_engine *http = NULL;
  struct probe p;
  uv_loop_t loop;
  const char *name = NULL, *etag = NULL;
  char err[512];
  int i, rc;

  memset(&o, 0, sizeof(o));
  memset(&f, 0, sizeof(f));
  memset(&p, 0, sizeof(p));
  p.concurrency = 16;
  o.max_attempts = 3;
  o.backoff_base_ms = 50;
  o.backoff_cap_ms = 500;
  if(getenv("PROBE_DEBUG"))
    log_set_level(LOG_DEBUG);
  for(i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

    if(!strcmp(a, "--conn") && v)
      o.connection_string = argv[++i];
    else if(!strcmp(a, "--endpoint") && v)
      o.endpoint = argv[++i];
    else if(!strcmp(a, "--account") && v)
      o.account = argv[++i];
    else if(!strcmp(a, "--key") && v) {
      o.auth = STORAGE_AUTH_SHARED_KEY;
      o.account_key = argv[++i];
    }
    else if(!strcmp(a, "--sas") && v) {
      o.auth = STORAGE_AUTH_SAS;
      o.sas_token = argv[++i];
    }
    else if(!strcmp(a, "--container") && v)
      o.container = argv[++i];
    else if(!strcmp(a, "--prefix") && v)
      f.prefix = argv[++i];
    else if(!strcmp(a, "--max") && v)
      f.maxresults = (unsigned)atoi(argv[++i]);
    else if(!strcmp(a, "--suffix") && v && f.nsuffixes < 16)
      suffixes[f.nsuffixes++] = argv[++i];
    else if(!strcmp(a, "--cap") && v)
      p.cap = (size_t)strtoull(argv[++i], NULL, 10);
    else if(!strcmp(a, "--concurrency") && v)
      p.concurrency = (unsigned)atoi(argv[++i]);
    else if(!strcmp(a, "--etag") && v)
      etag = argv[++i];
    else if(a[0] != '-' && !p.cmd)
      p.cmd = a;
    else if(a[0] != '-' && !name)
      name = a;
    else
      usage();
  }
  if(!p.cmd || p.concurrency == 0)
    usage();
  f.suffixes = suffixes;
  if(uv_loop_init(&loop) || http_engine_create(&loop, NULL, &http)) {
    fprintf(stderr, "error: cannot set up the loop or the engine\n");
    return 1;
  }
  rc = storage_create(http, &loop, &o, &p.s, err, sizeof(err));
  if(rc) {
    fprintf(stderr, "error: %s: %s\n", err_str(rc), err);
    http_engine_destroy(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  if(!strcmp(p.cmd, "list") || !strcmp(p.cmd, "getall"))
    rc = storage_list_all(p.s, &f, on_list_page, on_listed, &p, NULL);
  else if(!strcmp(p.cmd, "get") && name) {
    p.nitems = p.citems = 1;
    p.items = calloc(1, sizeof(*p.items));
    p.items[0].name = strdup(name);
    p.items[0].etag = etag ? strdup(etag) : NULL;
    start_downloads(&p);
    rc = 0;
  }
  else if(!strcmp(p.cmd, "delete") && name)
    rc = storage_delete(p.s, name, etag, on_deleted, &p, NULL);
  else
    usage();
  if(rc) {
    fprintf(stderr, "error: cannot start: %s\n", err_str(rc));
    p.rc = 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  storage_destroy(p.s);
  http_engine_destroy(http);
  uv_run(&loop, UV_RUN_DEFAULT);
  if(uv_loop_close(&loop) != 0) {
    fprintf(stderr, "error: handles left open at exit\n");
    p.rc = 1;
  }
  if(!strcmp(p.cmd, "getall") || !strcmp(p.cmd, "list"))
    fprintf(stderr, "summary: pages=%zu listed=%zu ok=%zu toobig=%zu "
            "failed=%zu\n", p.pages, p.nitems, p.ok, p.toobig, p.failed);
  if(p.failed)
    p.rc = 1;
  if(!strcmp(p.cmd, "get") && (p.toobig || p.failed))
    p.rc = 1;
  for(size_t k = 0; k < p.nitems; k++) {
    free(p.items[k].name);
    free(p.items[k].etag);
  }
  free(p.items);
  return p.rc;
}
