/*
 * log.h: leveled logging to stderr, as text or JSON lines, UTC timestamps.
 *
 * journald (or the container runtime) collects stderr, so this module does no
 * other I/O. It is safe to call from the loop thread and from worker threads:
 * each line is formatted in full and written with one write(2) under a lock.
 *
 * Secrets: modules that learn a secret (an account key, a SAS token, a client
 * secret, an access token) register it with log_secret_add(). Every line is
 * scrubbed of every registered secret before it is written, so a secret that
 * reaches a message by mistake (an echoed URL, a peer's error body) still
 * never reaches the log. Code must not rely on this: never format a secret.
 */
#ifndef SS_LOG_H
#define SS_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

/* Sets the most verbose level that is written (default LOG_INFO). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Sets the line format (default LOG_FORMAT_TEXT). */
void log_set_format(enum log_format format);

/* Parses "error", "warn", "info", "debug". Returns 0 or ERR_INVAL. */
int log_level_parse(const char *s, enum log_level *out);

/*
 * Redirects output to the file descriptor fd (default 2). The caller keeps
 * ownership of fd. Used by tests to capture lines.
 */
void log_set_fd(int fd);

/*
 * Registers a secret to be scrubbed from every line (replaced by "***"),
 * together with its percent-encoded form (the way a form body or a query
 * string carries it). The string is borrowed and copied; secrets shorter
 * than 6 bytes are ignored, since scrubbing them would mangle ordinary
 * words. Registrations are counted: registering a secret that is already
 * registered (by another module, or again after a reload) adds a
 * reference. When one registered secret contains another, the longer is
 * scrubbed first. At most 256 strings are kept (rotating secrets must be
 * removed, see log_secret_remove). Returns 0, ERR_TOOBIG when the table is
 * full, or ERR_NOMEM.
 */
int log_secret_add(const char *secret);

/*
 * Drops one registration of secret (borrowed), made by log_secret_add;
 * the last one forgets it and wipes the copy. For secrets that rotate (an
 * access token replaced by a fresher one), so that the list does not grow
 * for the life of the daemon. Only remove a secret that nothing still
 * uses: once forgotten it is no longer scrubbed. Returns 0 (also for a
 * secret too short to have been registered) or ERR_NOTFOUND when it is
 * not registered.
 */
int log_secret_remove(const char *secret);

/* The number of strings being scrubbed (each secret and its encoded form
   count once; references do not add). For tests and metrics. */
size_t log_secret_count(void);

/* Forgets every registered secret (at exit, and in tests). */
void log_secret_clear(void);

/*
 * Replaces, in place, every registered secret in the NUL-terminated text s
 * (at most cap bytes including the NUL) by "***". Exposed so that other
 * writers of operator-visible text (dead-letter files, error bodies) can
 * apply the same rule.
 */
void log_scrub(char *s, size_t cap);

/*
 * Writes one line at level, tagged with the module name (a short static
 * string such as "storage"). Nothing is written when level is more verbose
 * than the configured level.
 */
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *module, const char *fmt,
              va_list ap);

#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)

#endif
