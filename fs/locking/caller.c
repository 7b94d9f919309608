/* caller.c - thread id to process id and program name, from /proc. */
#include "caller.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <glib.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Open /proc/TID/status descriptors of recent callers, so that asking
 * again costs one pread() instead of an open, a read and a close. Such a
 * descriptor stays bound to the thread it was opened for: once that thread
 * has gone its reads fail (ESRCH), even when the number names a new thread
 * by then, and the entry is dropped. Bounded: when full, one entry makes
 * room. Entries are counted, so one being read is closed only once its
 * reader is done with it. */
#define CALLER_CACHE_MAX 64

typedef struct {
        int fd;
        int refs;     /* caller_cache_lock */
        bool dropped; /* caller_cache_lock: out of the table */
} CallerStatus;

static GMutex caller_cache_lock;
static GHashTable *caller_cache; /* tid -> CallerStatus *; caller_cache_lock */

static void caller_status_unref_locked(CallerStatus *status)
{
        if (--status->refs > 0)
                return;
        close(status->fd);
        g_free(status);
}

static void caller_status_drop_locked(pid_t tid, CallerStatus *status)
{
        if (status->dropped)
                return;
        status->dropped = true;
        g_hash_table_remove(caller_cache, GINT_TO_POINTER(tid));
        caller_status_unref_locked(status);
}

/* The cached entry of @tid with a reference taken, or NULL. */
static CallerStatus *caller_status_get(pid_t tid)
{
        g_mutex_lock(&caller_cache_lock);
        CallerStatus *status =
                caller_cache ? g_hash_table_lookup(caller_cache, GINT_TO_POINTER(tid)) : NULL;
        if (status)
                status->refs++;
        g_mutex_unlock(&caller_cache_lock);
        return status;
}

static void caller_status_put(pid_t tid, CallerStatus *status, bool gone)
{
        g_mutex_lock(&caller_cache_lock);
        if (gone)
                caller_status_drop_locked(tid, status);
        caller_status_unref_locked(status);
        g_mutex_unlock(&caller_cache_lock);
}

/* Keeps @fd, a fresh descriptor of /proc/@tid/status, for next time, or
 * closes it when another thread cached one first. */
static void caller_status_keep(pid_t tid, int fd)
{
        g_mutex_lock(&caller_cache_lock);
        if (!caller_cache)
                caller_cache = g_hash_table_new(g_direct_hash, g_direct_equal);
        if (g_hash_table_contains(caller_cache, GINT_TO_POINTER(tid))) {
                g_mutex_unlock(&caller_cache_lock);
                close(fd);
                return;
        }
        if (g_hash_table_size(caller_cache) >= CALLER_CACHE_MAX) {
                GHashTableIter iter;
                gpointer key, value;
                g_hash_table_iter_init(&iter, caller_cache);
                if (g_hash_table_iter_next(&iter, &key, &value))
                        caller_status_drop_locked(GPOINTER_TO_INT(key), value);
        }
        CallerStatus *status = g_new0(CallerStatus, 1);
        status->fd = fd;
        status->refs = 1;
        g_hash_table_insert(caller_cache, GINT_TO_POINTER(tid), status);
        g_mutex_unlock(&caller_cache_lock);
}

static bool caller_status_read(int fd, char *buf, size_t size)
{
        ssize_t n = pread(fd, buf, size - 1, 0);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return true;
}

/* The start of /proc/@tid/status, NUL-terminated, in @buf: its first
 * lines (Name, Umask, State, Tgid) are all that is asked of it, and one
 * read() gives them. False when the thread is gone. */
static bool caller_status_head(pid_t tid, char *buf, size_t size)
{
        CallerStatus *cached = caller_status_get(tid);
        if (cached) {
                bool read = caller_status_read(cached->fd, buf, size);
                caller_status_put(tid, cached, !read);
                if (read)
                        return true;
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        if (!caller_status_read(fd, buf, size)) {
                close(fd);
                return false;
        }
        caller_status_keep(tid, fd);
        return true;
}

void caller_cache_clear(void)
{
        g_mutex_lock(&caller_cache_lock);
        if (caller_cache) {
                GHashTableIter iter;
                gpointer key, value;
                g_hash_table_iter_init(&iter, caller_cache);
                while (g_hash_table_iter_next(&iter, &key, &value)) {
                        CallerStatus *status = value;
                        status->dropped = true;
                        g_hash_table_iter_remove(&iter);
                        caller_status_unref_locked(status);
                }
                g_clear_pointer(&caller_cache, g_hash_table_unref);
        }
        g_mutex_unlock(&caller_cache_lock);
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

/* The program name in @head (caller_status_head of a process's leader):
 * its Name is the process's comm, unless that needed escaping (a
 * backslash or newline in it). False then, or when @head has none. */
static bool caller_name_in(const char *head, char *program, size_t size)
{
        if (!g_str_has_prefix(head, "Name:\t"))
                return false;
        const char *name = head + strlen("Name:\t");
        size_t len = strcspn(name, "\n");
        if (len == 0 || name[len] != '\n' || memchr(name, '\\', len))
                return false;
        g_strlcpy(program, name, MIN(size, len + 1));
        return true;
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
        /* A thread other than the leader: the process's name is its
         * leader's (a thread may have named itself otherwise). */
        if (*pid != tid && !caller_status_head(*pid, head, sizeof(head)))
                head[0] = '\0';
        if (!caller_name_in(head, program, size))
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

/* The inodes of the sockets process @pid has open. */
static GArray *caller_socket_inodes(pid_t pid)
{
        GArray *inodes = g_array_new(FALSE, FALSE, sizeof(guint64));
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        GDir *dir = g_dir_open(path, 0, NULL);
        for (const char *name; dir && (name = g_dir_read_name(dir)) && inodes->len < 256;) {
                char link[64], target[64];
                snprintf(link, sizeof(link), "/proc/%d/fd/%s", (int)pid, name);
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                guint64 inode = 0;
                if (sscanf(target, "socket:[%" G_GUINT64_FORMAT "]", &inode) == 1)
                        g_array_append_val(inodes, inode);
        }
        if (dir)
                g_dir_close(dir);
        return inodes;
}

/* "ADDRESS:PORT" of the established connection of @pid listed in @table
 * (/proc/PID/net/tcp or tcp6), one on an SMB port (445, 139) first: an
 * smbd process serves one client (on whatever port it listens), or NULL. */
static char *caller_smb_peer(pid_t pid, const char *table, const GArray *inodes)
{
        g_autofree char *any = NULL;
        g_autofree char *path = g_strdup_printf("/proc/%d/net/%s", (int)pid, table);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return NULL;
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **line = lines + (lines[0] ? 1 : 0); *line; line++) {
                char local[64], remote[64];
                unsigned state = 0;
                guint64 inode = 0;
                /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
                if (sscanf(*line, " %*s %63s %63s %x %*s %*s %*s %*u %*u %" G_GUINT64_FORMAT, local,
                           remote, &state, &inode) != 4 ||
                    state != 1 /* ESTABLISHED */)
                        continue;
                bool ours = false;
                for (guint i = 0; i < inodes->len && !ours; i++)
                        ours = g_array_index(inodes, guint64, i) == inode;
                const char *local_port = strchr(local, ':');
                const char *remote_port = strchr(remote, ':');
                if (!ours || !local_port || !remote_port)
                        continue;
                unsigned port = (unsigned)strtoul(local_port + 1, NULL, 16);
                /* The kernel prints each 32-bit word of the address in
                 * host order (little-endian here): bytes reversed. */
                gsize hex_len = (gsize)(remote_port - remote);
                guint8 bytes[16];
                gsize n = hex_len / 2;
                if ((n != 4 && n != 16) || hex_len % 2)
                        continue;
                for (gsize word = 0; word < n / 4; word++)
                        for (gsize b = 0; b < 4; b++) {
                                char pair[3] = {remote[word * 8 + (3 - b) * 2],
                                                remote[word * 8 + (3 - b) * 2 + 1], 0};
                                bytes[word * 4 + b] = (guint8)strtoul(pair, NULL, 16);
                        }
                char shown[INET6_ADDRSTRLEN] = "?";
                inet_ntop(n == 4 ? AF_INET : AF_INET6, bytes, shown, sizeof(shown));
                unsigned rport = (unsigned)strtoul(remote_port + 1, NULL, 16);
                char *peer = g_strdup_printf(n == 4 ? "%s:%u" : "[%s]:%u", shown, rport);
                if (port == 445 || port == 139) {
                        g_free(any);
                        return peer;
                }
                if (any)
                        g_free(peer);
                else
                        any = peer;
        }
        return g_steal_pointer(&any);
}

/* The value of @name in process @pid's environment, or NULL. */
static char *caller_environ(pid_t pid, const char *name)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/environ", (int)pid);
        g_autofree char *text = NULL;
        gsize len = 0;
        if (!g_file_get_contents(path, &text, &len, NULL))
                return NULL;
        gsize name_len = strlen(name);
        for (gsize at = 0; at < len; at += strlen(text + at) + 1)
                if (strncmp(text + at, name, name_len) == 0 && text[at + name_len] == '=')
                        return g_strdup(text + at + name_len + 1);
        return NULL;
}

char *caller_client(pid_t pid, const char *program, uid_t uid)
{
        if (g_str_equal(program, "smbd")) {
                g_autoptr(GArray) inodes = caller_socket_inodes(pid);
                g_autofree char *peer = caller_smb_peer(pid, "tcp", inodes);
                if (!peer)
                        peer = caller_smb_peer(pid, "tcp6", inodes);
                char buf[1024];
                struct passwd pw, *found = NULL;
                getpwuid_r(uid, &pw, buf, sizeof(buf), &found);
                g_autofree char *user =
                        found ? g_strdup(found->pw_name) : g_strdup_printf("%u", (unsigned)uid);
                return g_strdup_printf("smb %s user=%s", peer ? peer : "?", user);
        }
        if (g_str_has_prefix(program, "wineserver")) {
                g_autofree char *prefix = caller_environ(pid, "WINEPREFIX");
                if (!prefix) {
                        g_autofree char *home = caller_environ(pid, "HOME");
                        if (home)
                                prefix = g_build_filename(home, ".wine", NULL);
                }
                return g_strdup_printf("wine %s", prefix ? prefix : "?");
        }
        return NULL;
}
