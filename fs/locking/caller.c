/* caller.c - thread id to process id and program name, from /proc. */
#include "caller.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The start of /proc/@tid/status, NUL-terminated, in @buf: its first
 * lines (Name, Umask, State, Tgid) are all that is asked of it, and one
 * read() gives them. False when the thread is gone. */
static bool caller_status_head(pid_t tid, char *buf, size_t size)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, size - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return true;
}

/* The thread group of @tid that @head (caller_status_head) names, or @tid
 * when it names none. */
static pid_t caller_tgid_in(const char *head, pid_t tid)
{
        const char *line = strstr(head, "\nTgid:");
        long tgid = line ? strtol(line + strlen("\nTgid:"), NULL, 10) : 0;
        return tgid > 0 ? (pid_t)tgid : tid;
}

pid_t caller_process_of_thread(pid_t tid)
{
        char head[512];
        return caller_status_head(tid, head, sizeof(head)) ? caller_tgid_in(head, tid) : tid;
}

void caller_identify(pid_t tid, pid_t *pid, char *program, size_t size)
{
        char head[512];
        if (!caller_status_head(tid, head, sizeof(head))) {
                *pid = tid;
                caller_program_name(tid, program, size);
                return;
        }
        *pid = caller_tgid_in(head, tid);

        /* The leader thread's Name is the process's comm, unless it needed
         * escaping (a backslash or newline in it): then comm itself. */
        if (*pid == tid && g_str_has_prefix(head, "Name:\t")) {
                const char *name = head + strlen("Name:\t");
                size_t len = strcspn(name, "\n");
                if (len > 0 && name[len] == '\n' && !memchr(name, '\\', len)) {
                        g_strlcpy(program, name, MIN(size, len + 1));
                        return;
                }
        }
        caller_program_name(*pid, program, size);
}

pid_t caller_session_of(pid_t pid)
{
        pid_t session = getsid(pid);
        return session > 0 ? session : 0;
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
