/* log.c - stderr or syslog, filtered by level, with control characters
 * escaped (\xNN): every line is the daemon's own.
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
#include <string.h>
#include <unistd.h>

#include "status-line.h"

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

/* A message repeated with other numbers (pids, counts) is one "kind";
 * each kind prints at most LOG_BURST lines per second, and the next line
 * that passes says how many were dropped. A client can make the daemon
 * log per request (2,000 waiters giving up); the log must not drown. */
#define LOG_BURST 10
#define LOG_KINDS 64

typedef struct {
        guint hash;       /* the kind; 0: an empty slot */
        gint64 window_us; /* monotonic start of its second */
        unsigned printed; /* lines printed in that second */
        unsigned dropped; /* lines dropped since the last printed one */
} LogKind;

static GMutex log_kinds_mutex;
static LogKind log_kinds[LOG_KINDS]; /* guarded by log_kinds_mutex */

static guint log_kind_hash(const char *text)
{
        guint hash = 5381;
        bool in_number = false;
        for (const char *c = text; *c; c++) {
                bool digit = g_ascii_isdigit(*c);
                if (digit && in_number)
                        continue;
                in_number = digit;
                hash = hash * 33 + (guint)(digit ? '#' : (unsigned char)*c);
        }
        return hash ? hash : 1;
}

/* Whether a line of @text may print now; *@dropped is how many of its
 * kind were dropped before it. */
static bool log_pass(const char *text, unsigned *dropped)
{
        guint hash = log_kind_hash(text);
        gint64 now = g_get_monotonic_time();
        *dropped = 0;
        g_mutex_lock(&log_kinds_mutex);
        /* A kind lives in one slot; a new kind takes the slot over. */
        LogKind *kind = &log_kinds[hash % LOG_KINDS];
        if (kind->hash != hash)
                *kind = (LogKind){.hash = hash, .window_us = now};
        if (now - kind->window_us >= G_USEC_PER_SEC) {
                kind->window_us = now;
                kind->printed = 0;
        }
        bool pass = kind->printed < LOG_BURST;
        if (pass) {
                kind->printed++;
                *dropped = kind->dropped;
                kind->dropped = 0;
        } else {
                kind->dropped++;
        }
        g_mutex_unlock(&log_kinds_mutex);
        return pass;
}

void log_message(int priority, const char *format, ...)
{
        if (!log_enabled(priority))
                return;

        va_list args;
        va_start(args, format);
        g_autofree char *raw = g_strdup_vprintf(format, args);
        va_end(args);
        /* Process and file names are the clients' choice: a newline in one
         * must not start a line of their making. */
        g_autofree char *escaped = po_status_escape_controls(raw);
        unsigned dropped = 0;
        if (priority != LOG_DEBUG && !log_pass(escaped, &dropped))
                return;
        g_autofree char *text = dropped ? g_strdup_printf("%s (and %u more like it, not logged)",
                                                          escaped, dropped)
                                        : g_steal_pointer(&escaped);

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
