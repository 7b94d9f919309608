/* caller.c - thread id to process id and program name, from /proc. */
#include "caller.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pid_t caller_process_of_thread(pid_t tid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);

        g_autofree char *status = NULL;
        if (!g_file_get_contents(path, &status, NULL, NULL))
                return tid;

        const char *line = strstr(status, "\nTgid:");
        if (!line)
                return tid;
        long tgid = strtol(line + strlen("\nTgid:"), NULL, 10);
        return tgid > 0 ? (pid_t)tgid : tid;
}

void caller_program_name(pid_t pid, char *buf, size_t size)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);

        g_autofree char *comm = NULL;
        if (!g_file_get_contents(path, &comm, NULL, NULL)) {
                g_strlcpy(buf, "?", size);
                return;
        }
        g_strchomp(comm);
        g_strlcpy(buf, comm[0] ? comm : "?", size);
}

int caller_process_uid(pid_t pid, uid_t *uid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);

        g_autofree char *status = NULL;
        if (!g_file_get_contents(path, &status, NULL, NULL))
                return -ESRCH;
        const char *line = strstr(status, "\nUid:");
        if (!line)
                return -ESRCH;
        *uid = (uid_t)strtoul(line + strlen("\nUid:"), NULL, 10);
        return 0;
}

bool caller_proc_hides_pids(void)
{
        g_autofree char *mounts = NULL;
        if (!g_file_get_contents("/proc/self/mounts", &mounts, NULL, NULL))
                return false;
        g_auto(GStrv) lines = g_strsplit(mounts, "\n", -1);
        for (char **line = lines; *line; line++) {
                g_auto(GStrv) fields = g_strsplit(*line, " ", -1);
                if (g_strv_length(fields) < 4 || !g_str_equal(fields[1], "/proc") ||
                    !g_str_equal(fields[2], "proc"))
                        continue;
                /* hidepid=0 and hidepid=off hide nothing. */
                const char *hidepid = strstr(fields[3], "hidepid=");
                return hidepid && !g_str_has_prefix(hidepid, "hidepid=0") &&
                       !g_str_has_prefix(hidepid, "hidepid=off");
        }
        return false;
}
