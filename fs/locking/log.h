/* log.h - the daemon's one logging path.
 *
 * Messages go to stderr while the daemon runs in the foreground and to
 * syslog (facility daemon) once it has detached. Levels are syslog's; debug
 * messages are dropped unless debug logging was asked for.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

void log_setup(bool use_syslog, int max_priority);
void log_set_syslog(bool use_syslog);
bool log_enabled(int priority);
/* Writes one line. Control characters in it (a newline in a process or
 * file name) are written as \xNN. Lines that differ only in their numbers
 * print at most 10 a second each (debug lines: all); the next one printed
 * says how many were dropped. */
void log_message(int priority, const char *format, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_message(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_message(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_message(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                  \
        do {                                            \
                if (log_enabled(LOG_DEBUG))             \
                        log_message(LOG_DEBUG, __VA_ARGS__); \
        } while (0)
