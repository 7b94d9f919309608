/* caller.c - thread id to process id and program name, from /proc. */
#include "caller.h"

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
