/*
 * main.c: the spectra-sentinel command line (SPEC section 8).
 *
 *   run       [-c FILE]            the daemon, in the foreground
 *   check     [-c FILE] [--online] validate the configuration
 *   transform [--blob-name NAME] FILE|-   print one report's records
 *   state     [-c FILE]            summarize the checkpoint and dead-letter
 *
 * Exit status: 0 success; 1 runtime failure; 2 usage error; 3 invalid
 * configuration; 4 bad input (transform).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "config.h"
#include "daemon.h"
#include "deadletter.h"
#include "err.h"
#include "log.h"
#include "transform.h"
#include "transform_cli.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_CONFIG 3
#define EXIT_BADINPUT 4

static void
usage(FILE *f)
{
  fputs("usage: spectra-sentinel run       [-c FILE]\n"
        "       spectra-sentinel check     [-c FILE] [--online]\n"
        "       spectra-sentinel transform [--blob-name NAME] FILE|-\n"
        "       spectra-sentinel state     [-c FILE]\n"
        "       spectra-sentinel --version | --help\n"
        "\n"
        "  run        move reports from the storage container to Sentinel\n"
        "             (foreground; systemd Type=notify)\n"
        "  check      validate the configuration and print it, secrets\n"
        "             redacted; --online also gets a token and lists one page\n"
        "  transform  print the records of one report as NDJSON\n"
        "  state      summarize the checkpoint and the dead-letter files\n"
        "\n"
        "  -c FILE    configuration (default " CONFIG_DEFAULT_PATH ")\n"
        "\n"
        "exit status: 0 ok, 1 runtime failure, 2 usage, 3 invalid\n"
        "configuration, 4 bad input\n", f);
}

/* Loads the configuration, printing every error; returns an exit code. */
static int
load_config(const char *path, struct config **out)
{
  char *errors = NULL;
  int rc = config_load(path, out, &errors);

  if(rc) {
    if(errors)
      fprintf(stderr, "%s", errors);
    else
      fprintf(stderr, "spectra-sentinel: %s: %s\n", path, err_str(rc));
    if(errors && errors[0] && errors[strlen(errors) - 1] != '\n')
      fputc('\n', stderr);
    free(errors);
    return EXIT_CONFIG;
  }
  config_register_secrets(*out);
  log_set_level((*out)->log.level);
  log_set_format((*out)->log.format);
  return 0;
}

/*
 * Parses "[-c FILE]" and the given flag; returns 0, or EXIT_USAGE after
 * printing why. *path keeps the default when -c is absent.
 */
static int
parse_common(int argc, char **argv, const char **path, const char *flag,
             int *flag_set)
{
  for(int i = 2; i < argc; i++) {
    if((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
       i + 1 < argc)
      *path = argv[++i];
    else if(!strncmp(argv[i], "--config=", 9))
      *path = argv[i] + 9;
    else if(flag && !strcmp(argv[i], flag))
      *flag_set = 1;
    else {
      fprintf(stderr, "spectra-sentinel %s: unexpected argument '%s'\n",
              argv[1], argv[i]);
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  return 0;
}

static int
cmd_check(int argc, char **argv)
{
  const char *path = CONFIG_DEFAULT_PATH;
  struct config *cfg = NULL;
  int online = 0, rc;

  if((rc = parse_common(argc, argv, &path, "--online", &online)) != 0)
    return rc;
  if((rc = load_config(path, &cfg)) != 0)
    return rc;
  if(config_print(cfg, stdout) != 0) {
    config_destroy(cfg);
    return EXIT_RUNTIME;
  }
  fprintf(stderr, "%s: configuration is valid\n", path);
  if(online) {
    rc = daemon_check_online(cfg) ? EXIT_RUNTIME : 0;
    config_destroy(cfg);
    return rc;
  }
  config_destroy(cfg);
  return 0;
}

static int
cmd_run(int argc, char **argv)
{
  const char *path = CONFIG_DEFAULT_PATH;
  struct config *cfg = NULL;
  int rc;

  if((rc = parse_common(argc, argv, &path, NULL, NULL)) != 0)
    return rc;
  if((rc = load_config(path, &cfg)) != 0)
    return rc;
  /* The daemon owns cfg from here (it swaps it on SIGHUP). */
  rc = daemon_run(path, cfg);
  log_secret_clear();
  return rc == 0 ? 0 : rc == ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
}

static int
print_failed(void *ud, const struct checkpoint_entry *e)
{
  unsigned *left = ud;

  if(e->state == CHECKPOINT_FAILED && *left) {
    printf("  failed   %s (ETag %s): %s\n", e->name, e->etag, e->reason);
    (*left)--;
  }
  else if(e->state == CHECKPOINT_NEW && *left) {
    printf("  pending  %s (ETag %s)\n", e->name, e->etag);
    (*left)--;
  }
  return 0;
}

static void
print_time(const char *label, int64_t t)
{
  char buf[32] = "never";
  struct tm tm;
  time_t tt = (time_t)t;

  if(t > 0 && gmtime_r(&tt, &tm))
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  printf("%-22s %s\n", label, buf);
}

static int
cmd_state(int argc, char **argv)
{
  const char *path = CONFIG_DEFAULT_PATH;
  struct config *cfg = NULL;
  struct checkpoint *ck = NULL;
  struct checkpoint_stats st;
  struct deadletter_counts dl;
  char err[1024] = "", dldir[4096];
  unsigned left = 50;
  int rc;

  if((rc = parse_common(argc, argv, &path, NULL, NULL)) != 0)
    return rc;
  if((rc = load_config(path, &cfg)) != 0)
    return rc;
  struct checkpoint_opts o = {
    .dir = cfg->state.directory,
    .grace = (int64_t)(cfg->state.grace_ms / 1000),
    .readonly = 1,
  };
  rc = checkpoint_open(&o, &ck, err, sizeof(err));
  if(rc == ERR_NOTFOUND) {
    printf("state directory        %s\n", cfg->state.directory);
    printf("checkpoint             none yet (the daemon has not run)\n");
    config_destroy(cfg);
    return 0;
  }
  if(rc) {
    fprintf(stderr, "spectra-sentinel: %s\n", err);
    config_destroy(cfg);
    return EXIT_RUNTIME;
  }
  checkpoint_get_stats(ck, &st);
  printf("state directory        %s\n", cfg->state.directory);
  printf("blobs done             %" PRIu64 " (since the state began)\n",
         st.total_done);
  printf("blobs failed           %" PRIu64 " (bad input, since the state "
         "began)\n", st.total_failed);
  printf("pending                %" PRIu64 " (started, not finished)\n",
         st.pending);
  printf("in the grace window    %" PRIu64 " done, %" PRIu64 " failed\n",
         st.done, st.failed);
  print_time("watermark", st.watermark);
  print_time("start_from floor", st.floor);
  snprintf(dldir, sizeof(dldir), "%s/dead-letter", cfg->state.directory);
  if(deadletter_count(dldir, &dl) == 0)
    printf("dead-lettered          %" PRIu64 " records, %" PRIu64
           " blobs, in %" PRIu64 " files\n", dl.records, dl.blobs, dl.files);
  else
    printf("dead-lettered          0 (no dead-letter directory)\n");
  checkpoint_foreach(ck, print_failed, &left);
  checkpoint_destroy(ck);
  config_destroy(cfg);
  return 0;
}

static int
cmd_transform(int argc, char **argv)
{
  const char *blob = NULL, *file = NULL;

  for(int i = 2; i < argc; i++) {
    if(!strcmp(argv[i], "--blob-name") && i + 1 < argc)
      blob = argv[++i];
    else if(!strncmp(argv[i], "--blob-name=", 12))
      blob = argv[i] + 12;
    else if(!file && (argv[i][0] != '-' || !strcmp(argv[i], "-")))
      file = argv[i];
    else {
      fprintf(stderr, "spectra-sentinel transform: unexpected argument "
              "'%s'\n", argv[i]);
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  if(!file) {
    fprintf(stderr, "spectra-sentinel transform: a FILE (or - for standard "
            "input) is required\n");
    usage(stderr);
    return EXIT_USAGE;
  }
  return transform_cli_run(file, blob, stdout, stderr);
}

int
main(int argc, char **argv)
{
  if(argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if(!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
    printf("spectra-sentinel %s\n", SS_VERSION);
    return 0;
  }
  if(!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    return 0;
  }
  if(!strcmp(argv[1], "run"))
    return cmd_run(argc, argv);
  if(!strcmp(argv[1], "check"))
    return cmd_check(argc, argv);
  if(!strcmp(argv[1], "transform"))
    return cmd_transform(argc, argv);
  if(!strcmp(argv[1], "state"))
    return cmd_state(argc, argv);
  fprintf(stderr, "spectra-sentinel: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return EXIT_USAGE;
}
