/* log.c - stderr or syslog, filtered by level.
 *
 * The settings are written once before the FUSE loop starts its threads and
 * only read afterwards, so they need no lock; each message is formatted into
 * one buffer and written with one call so lines from different threads do
 * not interleave.
 */
#include "log.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static bool log_to_syslog;
static int log_max_priority = LOG_INFO;
/* stderr is the journal (systemd sets JOURNAL_STREAM): each line starts
 * with its syslog priority, "<4>", which journald takes as the level. */
static bool log_to_journal;

void log_setup(bool use_syslog, int max_priority)
{
        log_max_priority = max_priority;
        log_to_journal = g_getenv("JOURNAL_STREAM") != NULL;
        log_set_syslog(use_syslog);
}

void log_set_syslog(bool use_syslog)
{
        if (use_syslog && !log_to_syslog)
                openlog("mailbagfs", LOG_PID, LOG_DAEMON);
        log_to_syslog = use_syslog;
}

bool log_enabled(int priority)
{
        return priority <= log_max_priority;
}

static const char *log_priority_label(int priority)
{
        switch (priority) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
        case LOG_ERR:
                return "error";
        case LOG_WARNING:
                return "warning";
        case LOG_NOTICE:
        case LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

void log_message(int priority, const char *format, ...)
{
        if (!log_enabled(priority))
                return;

        va_list args;
        va_start(args, format);
        g_autofree char *text = g_strdup_vprintf(format, args);
        va_end(args);

        if (log_to_syslog) {
                syslog(priority, "%s", text);
                return;
        }
        g_autofree char *line =
                log_to_journal ? g_strdup_printf("<%d>%s: %s\n", priority,
                                                 log_priority_label(priority), text)
                               : g_strdup_printf("mailbagfs: %s: %s\n",
                                                 log_priority_label(priority), text);
        /* One write per line: stdio buffering would split lines between
         * threads. A failed write to stderr has nowhere to be reported. */
        ssize_t ignored = write(STDERR_FILENO, line, strlen(line));
        (void)ignored;
}
