/*
 * sdnotify.h: the systemd service notification protocol (Type=notify).
 *
 * READY=1, STOPPING=1, STATUS=..., WATCHDOG=1 are sent as one datagram to
 * the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract socket
 * when it starts with '@'). Without $NOTIFY_SOCKET every call is a no-op
 * that succeeds, so the daemon runs the same under systemd, in a container
 * and in tests. This is the whole protocol; libsystemd is not needed for it.
 */
#ifndef SS_SDNOTIFY_H
#define SS_SDNOTIFY_H

#include <stdint.h>

/*
 * Sends state (e.g. "READY=1\nSTATUS=polling") to the service manager.
 * state is borrowed. Returns 0 (also when not under systemd), ERR_INVAL for
 * a malformed $NOTIFY_SOCKET, or ERR_IO when the send fails.
 */
int sdnotify_send(const char *state);

/*
 * Returns, in *usec, the watchdog interval systemd expects pings within
 * ($WATCHDOG_USEC, honoured only when $WATCHDOG_PID is unset or names this
 * process), or 0 when the watchdog is off.
 */
void sdnotify_watchdog_usec(uint64_t *usec);

#endif
