/*
 * transform_cli.c: `spectra-sentinel transform FILE|-` (transform_cli.h).
 *
 * A thin shell around transform_run: open the input (spooling stdin to a
 * temporary file, since the transform needs a re-readable source), print
 * each record on its own line, and turn the outcome into the exit status
 * and one-line message of SPEC section 8.
 */
#include "transform_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "source.h"
#include "transform.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_IO 1
#define CLI_EXIT_BADINPUT 4

/* Writes one record and its newline to the FILE * in ud. */
static int
cli_emit(void *ud, const struct transform_record *rec)
{
  FILE *out = ud;

  if(fwrite(rec->json, 1, rec->len, out) != rec->len || putc('\n', out) < 0)
    return ERR_IO;
  return 0;
}

/*
 * Copies standard input into an unlinked temporary file (at most max
 * bytes) and returns its descriptor in *fd, positioned anywhere (the source
 * uses pread). ERR_TOOBIG past the cap, ERR_IO otherwise.
 */
static int
cli_spool_stdin(uint64_t max, int *fd)
{
  char chunk[64 * 1024];
  uint64_t total = 0;
  FILE *tmp = tmpfile();
  size_t n;
  int rc = 0;

  *fd = -1;
  if(!tmp)
    return ERR_IO;
  while((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
    total += n;
    if(total > max) {
      rc = ERR_TOOBIG;
      goto out;
    }
    if(fwrite(chunk, 1, n, tmp) != n) {
      rc = ERR_IO;
      goto out;
    }
  }
  if(ferror(stdin) || fflush(tmp) != 0) {
    rc = ERR_IO;
    goto out;
  }
  *fd = dup(fileno(tmp));
  if(*fd < 0)
    rc = ERR_IO;
out:
  fclose(tmp);
  return rc;
}

int
transform_cli_run(const char *path_or_dash, const char *blob_name,
                  FILE *out, FILE *err)
{
  struct transform_opts opts;
  struct transform_error terr;
  struct source *src = NULL;
  struct stat st;
  int is_stdin = path_or_dash && !strcmp(path_or_dash, "-");
  int fd = -1, rc, status = CLI_EXIT_IO;

  memset(&opts, 0, sizeof(opts));
  memset(&terr, 0, sizeof(terr));
  if(!path_or_dash)
    path_or_dash = "-";
  if(!blob_name)
    blob_name = is_stdin ? "stdin" : path_or_dash;
  opts.max_field_bytes = TRANSFORM_DEFAULT_MAX_FIELD;
  opts.last_modified = -1;
  opts.now = (int64_t)time(NULL);

  if(is_stdin) {
    rc = cli_spool_stdin(TRANSFORM_CLI_MAX_INPUT, &fd);
    if(rc == ERR_TOOBIG) {
      fprintf(err, "spectra-sentinel: %s: bad input: larger than %" PRIu64
              " bytes\n", blob_name, TRANSFORM_CLI_MAX_INPUT);
      status = CLI_EXIT_BADINPUT;
      goto out;
    }
    if(rc) {
      fprintf(err, "spectra-sentinel: %s: cannot read standard input: %s\n",
              blob_name, strerror(errno));
      goto out;
    }
    rc = source_open_fd(fd, 1, TRANSFORM_CLI_MAX_INPUT, &src);
  }
  else {
    rc = source_open_file(path_or_dash, TRANSFORM_CLI_MAX_INPUT, &src);
    /* The file's mtime plays the blob's Last-Modified. */
    if(!rc && stat(path_or_dash, &st) == 0)
      opts.last_modified = (int64_t)st.st_mtime;
  }
  if(rc) {
    fprintf(err, "spectra-sentinel: %s: cannot read: %s\n", blob_name,
            rc == ERR_NOTFOUND ? "no such file" : err_str(rc));
    goto out;
  }

  rc = transform_run(source_transform(src), &opts, cli_emit, out, NULL,
                     &terr);
  if(rc == 0 && fflush(out) != 0)
    rc = ERR_IO;
  if(rc == ERR_PARSE || rc == ERR_TOOBIG) {
    fprintf(err, "spectra-sentinel: %s: bad input at line %" PRIu64
            " column %" PRIu64 " (byte %" PRIu64 "): %s\n", blob_name,
            terr.line, terr.column, terr.offset, terr.text);
    status = CLI_EXIT_BADINPUT;
  }
  else if(rc) {
    fprintf(err, "spectra-sentinel: %s: %s\n", blob_name,
            terr.text[0] ? terr.text : err_str(rc));
  }
  else
    status = CLI_EXIT_OK;
out:
  source_destroy(src);
  return status;
}
