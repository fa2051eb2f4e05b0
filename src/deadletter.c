/*
 * deadletter.c: NDJSON dead-letter files, appended and counted.
 *
 * Lines are built with jansson (so that any blob name or service message
 * is escaped correctly) and written whole. Text from outside (a service's
 * error message, a record that is not valid JSON) is first made valid UTF-8,
 * because jansson refuses anything else and a dead-letter line must never
 * be lost to an encoding problem.
 */
#include "deadletter.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

struct deadletter {
  char *dir;
  enum deadletter_sync sync;
  pthread_mutex_t lock;
  int fd;                  /* the current day's file, or -1 */
  char day[9];             /* "YYYYMMDD" of fd */
};

/* Creates path and its missing parents with mode 0700. */
static int
mkdirs(const char *path)
{
  char *p = strdup(path);
  int rc = 0;

  if(!p)
    return ERR_NOMEM;
  for(char *s = p + 1; ; s++) {
    if(*s == '/' || *s == '\0') {
      char c = *s;

      *s = '\0';
      if(mkdir(p, 0700) && errno != EEXIST) {
        rc = ERR_IO;
        break;
      }
      *s = c;
      if(!c)
        break;
    }
  }
  free(p);
  return rc;
}

int
deadletter_open(const char *dir, enum deadletter_sync sync,
                struct deadletter **out)
{
  struct deadletter *d = NULL;
  struct stat st;
  int rc;

  if(!dir || !*dir || !out)
    return ERR_INVAL;
  *out = NULL;
  rc = mkdirs(dir);
  if(rc) {
    log_error("deadletter", "cannot create %s: %s", dir, strerror(errno));
    return rc;
  }
  if(stat(dir, &st) || !S_ISDIR(st.st_mode)) {
    log_error("deadletter", "%s is not a directory", dir);
    return ERR_IO;
  }
  if((st.st_mode & 077) && chmod(dir, 0700)) {
    log_error("deadletter", "cannot narrow %s to mode 0700: %s", dir,
              strerror(errno));
    return ERR_IO;
  }
  d = calloc(1, sizeof(*d));
  if(!d)
    return ERR_NOMEM;
  d->dir = strdup(dir);
  if(!d->dir) {
    free(d);
    return ERR_NOMEM;
  }
  d->sync = sync;
  d->fd = -1;
  pthread_mutex_init(&d->lock, NULL);
  *out = d;
  return 0;
}

void
deadletter_destroy(struct deadletter *d)
{
  if(!d)
    return;
  if(d->fd >= 0)
    close(d->fd);
  pthread_mutex_destroy(&d->lock);
  free(d->dir);
  free(d);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
  size_t len;
  unsigned cp;

  if(s[0] < 0x80)
    return 1;
  if(s[0] >= 0xc2 && s[0] <= 0xdf) {
    len = 2;
    cp = s[0] & 0x1f;
  }
  else if(s[0] >= 0xe0 && s[0] <= 0xef) {
    len = 3;
    cp = s[0] & 0x0f;
  }
  else if(s[0] >= 0xf0 && s[0] <= 0xf4) {
    len = 4;
    cp = s[0] & 0x07;
  }
  else
    return 0;
  if(len > n)
    return 0;
  for(size_t i = 1; i < len; i++) {
    if((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
     (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

/* A JSON string of at most max bytes of s[0..n): invalid UTF-8 becomes
   '?', the cut falls on a character boundary, and registered secrets are
   scrubbed. Returns a new reference or NULL. */
static json_t *
safe_string(const char *s, size_t n, size_t max)
{
  char *tmp = malloc(max + 1);
  size_t o = 0, i = 0;
  json_t *j;

  if(!tmp)
    return NULL;
  while(i < n) {
    size_t len = utf8_seq((const unsigned char *)s + i, n - i);

    if(!len) {
      if(o + 1 > max)
        break;
      tmp[o++] = '?';
      i++;
      continue;
    }
    if(o + len > max)
      break;
    /* A NUL would end the text early for log_scrub; fold it. */
    if(len == 1 && s[i] == '\0')
      tmp[o] = '?';
    else
      memcpy(tmp + o, s + i, len);
    o += len;
    i += len;
  }
  tmp[o] = '\0';
  log_scrub(tmp, o + 1);
  j = json_string(tmp);
  free(tmp);
  return j;
}

static int
set_str(json_t *o, const char *key, const char *v, size_t max)
{
  json_t *s;

  if(!v)
    return 0;
  s = safe_string(v, strlen(v), max);
  return s ? json_object_set_new(o, key, s) : -1;
}

/* Builds the line for e (without the newline). */
static char *
build_line(const struct deadletter_entry *e, time_t now)
{
  json_t *o = json_object(), *rec = NULL;
  char ts[32];
  struct tm tm;
  time_t t = e->time > 0 ? (time_t)e->time : now;
  char *line = NULL;
  int bad = 0;

  if(!o)
    return NULL;
  gmtime_r(&t, &tm);
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
  bad |= json_object_set_new(o, "kind", json_string(e->record_index >= 0 ?
                                                    "record" : "blob"));
  bad |= json_object_set_new(o, "time", json_string(ts));
  bad |= set_str(o, "blob", e->blob, 4096);
  bad |= set_str(o, "etag", e->etag, 256);
  if(e->record_index >= 0)
    bad |= json_object_set_new(o, "record_index",
                               json_integer((json_int_t)e->record_index));
  bad |= set_str(o, "reason", e->reason, 256);
  if(e->http_status)
    bad |= json_object_set_new(o, "http_status", json_integer(e->http_status));
  bad |= set_str(o, "error_code", e->error_code, 256);
  bad |= set_str(o, "error_message", e->error_message,
                 DEADLETTER_MAX_MESSAGE);
  bad |= set_str(o, "request_id", e->request_id, 128);
  if(e->record && e->record_len) {
    rec = json_loadb(e->record, e->record_len, 0, NULL);
    if(rec)
      bad |= json_object_set_new(o, "record", rec);
    else {
      json_t *s = safe_string(e->record, e->record_len, e->record_len);

      bad |= s ? json_object_set_new(o, "record_text", s) : -1;
    }
  }
  if(!bad)
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return line;
}

/* Makes sure d->fd is today's file. Called with d->lock held. */
static int
open_day(struct deadletter *d, time_t now)
{
  char day[9], path[4096];
  struct tm tm;
  struct stat st;
  int fd, created;

  gmtime_r(&now, &tm);
  strftime(day, sizeof(day), "%Y%m%d", &tm);
  if(d->fd >= 0 && !strcmp(day, d->day))
    return 0;
  if((size_t)snprintf(path, sizeof(path), "%s/dead-letter-%s.ndjson", d->dir,
                      day) >= sizeof(path))
    return ERR_INVAL;
  created = access(path, F_OK) != 0;
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
            0600);
  if(fd < 0) {
    log_error("deadletter", "cannot open %s: %s", path, strerror(errno));
    return ERR_IO;
  }
  if(fstat(fd, &st) == 0 && (st.st_mode & 077) && fchmod(fd, 0600)) {
    log_error("deadletter", "cannot narrow %s to mode 0600: %s", path,
              strerror(errno));
    close(fd);
    return ERR_IO;
  }
  if(created && d->sync == DEADLETTER_SYNC_EACH) {
    /* The new name must survive a crash as well as the lines in it. */
    int dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if(dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  if(d->fd >= 0)
    close(d->fd);
  d->fd = fd;
  memcpy(d->day, day, sizeof(day));
  return 0;
}

int
deadletter_write(struct deadletter *d, const struct deadletter_entry *e)
{
  time_t now = time(NULL);
  char *line = NULL;
  size_t len, off = 0;
  off_t start;
  int rc, saved;

  if(!d || !e || !e->blob || !e->reason)
    return ERR_INVAL;
  line = build_line(e, now);
  if(!line)
    return ERR_NOMEM;
  len = strlen(line);
  line[len++] = '\n';   /* json_dumps' NUL is replaced: len is exact */
  pthread_mutex_lock(&d->lock);
  rc = open_day(d, now);
  if(rc)
    goto out;
  start = lseek(d->fd, 0, SEEK_END);
  while(off < len) {
    ssize_t w = write(d->fd, line + off, len - off);

    if(w < 0 && errno == EINTR)
      continue;
    if(w <= 0) {
      saved = errno;
      log_error("deadletter", "cannot write to %s/dead-letter-%s.ndjson: %s",
                d->dir, d->day, strerror(saved));
      /* Cut a partial line back off so the file stays line-aligned. */
      if(off && start >= 0 && ftruncate(d->fd, start)) {
        /* Nothing more to do: the count reports the torn line. */
      }
      errno = saved;
      rc = ERR_IO;
      goto out;
    }
    off += (size_t)w;
  }
  if(d->sync == DEADLETTER_SYNC_EACH && fdatasync(d->fd)) {
    log_error("deadletter", "fdatasync of dead-letter-%s.ndjson: %s", d->day,
              strerror(errno));
    rc = ERR_IO;
  }
out:
  pthread_mutex_unlock(&d->lock);
  free(line);
  return rc;
}

int
deadletter_sync(struct deadletter *d)
{
  int rc = 0;

  if(!d)
    return ERR_INVAL;
  pthread_mutex_lock(&d->lock);
  if(d->fd >= 0 && fdatasync(d->fd))
    rc = ERR_IO;
  if(!rc && d->fd >= 0) {
    int dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if(dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  pthread_mutex_unlock(&d->lock);
  return rc;
}

/* Counts the lines of one file by the kind at their start. */
static int
count_file(int fd, struct deadletter_counts *c)
{
  static const char rec[] = "{\"kind\":\"record\"";
  static const char blob[] = "{\"kind\":\"blob\"";
  char chunk[65536], head[sizeof(rec)];
  size_t hn = 0;
  int in_line = 0;

  for(;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));

    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0)
      return ERR_IO;
    if(n == 0)
      break;
    for(ssize_t i = 0; i < n; i++) {
      char ch = chunk[i];

      if(ch == '\n') {
        if(hn >= sizeof(rec) - 1 && !memcmp(head, rec, sizeof(rec) - 1))
          c->records++;
        else if(hn >= sizeof(blob) - 1 && !memcmp(head, blob,
                                                  sizeof(blob) - 1))
          c->blobs++;
        else
          c->bad++;
        hn = 0;
        in_line = 0;
        continue;
      }
      in_line = 1;
      if(hn < sizeof(head))
        head[hn++] = ch;
    }
  }
  /* A last line without its newline was torn by a crash. */
  if(in_line)
    c->bad++;
  return 0;
}

int
deadletter_count(const char *dir, struct deadletter_counts *out)
{
  DIR *dh;
  struct dirent *de;
  int rc = 0;

  if(!dir || !out)
    return ERR_INVAL;
  memset(out, 0, sizeof(*out));
  dh = opendir(dir);
  if(!dh)
    return errno == ENOENT ? 0 : ERR_IO;
  while((de = readdir(dh)) != NULL) {
    size_t n = strlen(de->d_name);
    int fd;

    if(n < 7 || strcmp(de->d_name + n - 7, ".ndjson"))
      continue;
    fd = openat(dirfd(dh), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if(fd < 0) {
      rc = ERR_IO;
      break;
    }
    out->files++;
    rc = count_file(fd, out);
    close(fd);
    if(rc)
      break;
  }
  closedir(dh);
  return rc;
}
