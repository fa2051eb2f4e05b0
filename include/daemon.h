/*
 * daemon.h: `spectra-sentinel run`, the polling pipeline (SPEC section 1).
 *
 * One libuv loop thread owns all network I/O, timers and signals; CPU work
 * (transform, batching, compression) and blocking file work (checkpoint
 * commits, dead-letter and file-destination writes) run on the libuv thread
 * pool. See docs/architecture.md for the flow of a blob and the ownership
 * of every object.
 */
#ifndef SS_DAEMON_H
#define SS_DAEMON_H

#include "config.h"

/*
 * Runs the daemon until SIGTERM or SIGINT, then drains within
 * shutdown_timeout and returns 0. config_path (borrowed) is re-read on
 * SIGHUP; cfg is stolen (freed by the daemon, on every path). Returns 0,
 * ERR_CONFIG when the configuration cannot be put to use (a state directory
 * that cannot be created, a listener that cannot bind), or another negative
 * code for a runtime failure (a corrupt checkpoint: ERR_PARSE).
 */
int daemon_run(const char *config_path, struct config *cfg);

/*
 * `check --online`: gets a token for each credential in use, lists one page
 * of the container, and prints what works and what does not to stdout.
 * cfg is borrowed. Returns 0 when everything works, else a negative code.
 */
int daemon_check_online(const struct config *cfg);

#endif
