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

/* Recent callers, so that asking again costs one pread() of a short file
 * instead of an open, a read of /proc/TID/status (long, and costly for the
 * kernel to write) and a close. An entry keeps the thread's
 * /proc/TID/comm open and the thread group it belongs to, read once: a
 * living thread never changes group (a thread that calls exec takes its
 * leader's number and leaves its own). The descriptor stays bound to the
 * thread it was opened for: once that thread has gone its reads fail
 * (ESRCH), even when the number names a new thread by then, and the entry
 * is dropped. Bounded: when full, one entry makes room. Entries are
 * counted, so one being read is closed only once its reader is done with
 * it.
 *
 * A name read less than CALLER_NAME_REUSE_US ago is answered again without
 * a read: a program asks in bursts (a message is a create, opens, a lock
 * and removals within a millisecond), and each would read the same name.
 * What that can make stale, for at most that long: the name of a process
 * that has just called exec or renamed itself (its first requests after
 * are named by its old name), and a thread that has gone. The thread
 * group cannot be: a thread number names another thread only after the
 * kernel has handed out every other free number (they go round up to
 * pid_max), which takes far more than a millisecond while pid_max is at
 * least CALLER_REUSE_PID_MAX_MIN; below that nothing is reused. */
#define CALLER_CACHE_MAX 64
#define CALLER_REUSE_PID_MAX_MIN 32768

typedef struct {
        int comm_fd;  /* /proc/TID/comm; immutable */
        pid_t tgid;   /* immutable */
        /* For a process's leader: where its client is (caller_client: an
         * smbd's SMB peer, a wineserver's prefix), NULL until found;
         * and the last user named for it. caller_cache_lock. */
        char *client;
        uid_t user_uid;
        char *user;
        int refs;     /* caller_cache_lock */
        bool dropped; /* caller_cache_lock: out of the table */
        /* The name last read and when (monotonic us); caller_cache_lock. */
        char name[64];
        gint64 name_read_at;
} CallerEntry;

/* How long a name read is answered again: CALLER_NAME_REUSE_US, or 0 when
 * pid_max is too low to rule out a number's reuse (read once). */
static gint64 caller_name_reuse_us(void)
{
        static gsize once;
        static gint64 reuse;
        if (g_once_init_enter(&once)) {
                g_autofree char *text = NULL;
                long pid_max = 0;
                if (g_file_get_contents("/proc/sys/kernel/pid_max", &text, NULL, NULL))
                        pid_max = strtol(text, NULL, 10);
                reuse = pid_max >= CALLER_REUSE_PID_MAX_MIN ? CALLER_NAME_REUSE_US : 0;
                g_once_init_leave(&once, 1);
        }
        return reuse;
}

static GMutex caller_cache_lock;
static GHashTable *caller_cache; /* tid -> CallerEntry *; caller_cache_lock */

static void caller_entry_unref_locked(CallerEntry *entry)
{
        if (--entry->refs > 0)
                return;
        close(entry->comm_fd);
        g_free(entry->client);
        g_free(entry->user);
        g_free(entry);
}

static void caller_entry_drop_locked(pid_t tid, CallerEntry *entry)
{
        if (entry->dropped)
                return;
        entry->dropped = true;
        g_hash_table_remove(caller_cache, GINT_TO_POINTER(tid));
        caller_entry_unref_locked(entry);
}

/* The cached entry of @tid, or NULL. Under caller_cache_lock. */
static CallerEntry *caller_entry_lookup_locked(pid_t tid)
{
        return caller_cache ? g_hash_table_lookup(caller_cache, GINT_TO_POINTER(tid)) : NULL;
}

/* The cached entry of @tid with a reference taken, or NULL. When its name
 * was read less than caller_name_reuse_us() before @now, *@recent is set and
 * the group and name are copied to *@tgid and @name, no reference taken. */
static CallerEntry *caller_entry_get(pid_t tid, gint64 now, bool *recent, pid_t *tgid,
                                     char *name, size_t size)
{
        *recent = false;
        /* Outside the lock: its first call reads pid_max. */
        gint64 reuse_us = caller_name_reuse_us();
        g_mutex_lock(&caller_cache_lock);
        CallerEntry *entry = caller_entry_lookup_locked(tid);
        if (entry && now - entry->name_read_at < reuse_us) {
                *recent = true;
                *tgid = entry->tgid;
                g_strlcpy(name, entry->name, size);
                entry = NULL;
        } else if (entry) {
                entry->refs++;
        }
        g_mutex_unlock(&caller_cache_lock);
        return entry;
}

/* The cached entry of @tid with a reference taken, or NULL. */
static CallerEntry *caller_entry_ref(pid_t tid)
{
        g_mutex_lock(&caller_cache_lock);
        CallerEntry *entry = caller_entry_lookup_locked(tid);
        if (entry)
                entry->refs++;
        g_mutex_unlock(&caller_cache_lock);
        return entry;
}

static void caller_entry_unref(CallerEntry *entry)
{
        g_mutex_lock(&caller_cache_lock);
        caller_entry_unref_locked(entry);
        g_mutex_unlock(&caller_cache_lock);
}

/* Done with @entry: its name @name was read at @now, or (@name NULL) its
 * thread is gone. */
static void caller_entry_put(pid_t tid, CallerEntry *entry, const char *name, gint64 now)
{
        g_mutex_lock(&caller_cache_lock);
        if (!name) {
                caller_entry_drop_locked(tid, entry);
        } else {
                g_strlcpy(entry->name, name, sizeof(entry->name));
                entry->name_read_at = now;
        }
        caller_entry_unref_locked(entry);
        g_mutex_unlock(&caller_cache_lock);
}

/* Keeps @comm_fd (taken over), @tgid and the @name read from it at @now
 * for @tid, or closes the descriptor when another thread cached one
 * first. */
static void caller_entry_keep(pid_t tid, int comm_fd, pid_t tgid, const char *name, gint64 now)
{
        g_mutex_lock(&caller_cache_lock);
        if (!caller_cache)
                caller_cache = g_hash_table_new(g_direct_hash, g_direct_equal);
        if (g_hash_table_contains(caller_cache, GINT_TO_POINTER(tid))) {
                g_mutex_unlock(&caller_cache_lock);
                close(comm_fd);
                return;
        }
        if (g_hash_table_size(caller_cache) >= CALLER_CACHE_MAX) {
                GHashTableIter iter;
                gpointer key, value;
                g_hash_table_iter_init(&iter, caller_cache);
                if (g_hash_table_iter_next(&iter, &key, &value))
                        caller_entry_drop_locked(GPOINTER_TO_INT(key), value);
        }
        CallerEntry *entry = g_new0(CallerEntry, 1);
        entry->comm_fd = comm_fd;
        entry->tgid = tgid;
        entry->refs = 1;
        g_strlcpy(entry->name, name, sizeof(entry->name));
        entry->name_read_at = now;
        g_hash_table_insert(caller_cache, GINT_TO_POINTER(tid), entry);
        g_mutex_unlock(&caller_cache_lock);
}

/* The name in @fd, a /proc/TID/comm descriptor, into @name ("?" if
 * empty); false when the thread is gone. */
static bool caller_comm_read(int fd, char *name, size_t size)
{
        char buf[64];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        g_strchomp(buf);
        g_strlcpy(name, buf[0] ? buf : "?", size);
        return true;
}

/* The thread group of @tid from /proc/@tid/status, 0 if it is gone. */
static pid_t caller_tgid_read(pid_t tid)
{
        char path[64], head[512];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        /* Name, Umask, State, Tgid: the first lines, one read. */
        ssize_t n = read(fd, head, sizeof(head) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        head[n] = '\0';
        const char *line = strstr(head, "\nTgid:");
        long tgid = line ? strtol(line + strlen("\nTgid:"), NULL, 10) : 0;
        return tgid > 0 ? (pid_t)tgid : tid;
}

/* Thread @tid's group (*@tgid) and its own name (@name); false when the
 * thread is gone. */
static bool caller_thread(pid_t tid, pid_t *tgid, char *name, size_t size)
{
        gint64 now = g_get_monotonic_time();
        bool recent;
        CallerEntry *cached = caller_entry_get(tid, now, &recent, tgid, name, size);
        if (recent)
                return true;
        if (cached) {
                bool alive = caller_comm_read(cached->comm_fd, name, size);
                *tgid = cached->tgid;
                caller_entry_put(tid, cached, alive ? name : NULL, now);
                if (alive)
                        return true;
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        /* The group read after the descriptor was opened: were the thread
         * gone and its number taken since, the descriptor fails next
         * time, whatever this read says. */
        *tgid = caller_tgid_read(tid);
        if (*tgid == 0 || !caller_comm_read(fd, name, size)) {
                close(fd);
                return false;
        }
        caller_entry_keep(tid, fd, *tgid, name, now);
        return true;
}

void caller_cache_clear(void)
{
        g_mutex_lock(&caller_cache_lock);
        if (caller_cache) {
                GHashTableIter iter;
                gpointer value;
                g_hash_table_iter_init(&iter, caller_cache);
                while (g_hash_table_iter_next(&iter, NULL, &value)) {
                        CallerEntry *entry = value;
                        entry->dropped = true;
                        g_hash_table_iter_remove(&iter);
                        caller_entry_unref_locked(entry);
                }
                g_clear_pointer(&caller_cache, g_hash_table_unref);
        }
        g_mutex_unlock(&caller_cache_lock);
}

pid_t caller_process_of_thread(pid_t tid)
{
        pid_t tgid = 0;
        char name[64];
        return caller_thread(tid, &tgid, name, sizeof(name)) ? tgid : tid;
}

void caller_identify(pid_t tid, pid_t *pid, char *program, size_t size)
{
        if (!caller_thread(tid, pid, program, size)) {
                *pid = tid;
                g_strlcpy(program, "?", size);
                return;
        }
        /* A thread other than the leader: the process's name is its
         * leader's (a thread may have named itself otherwise). */
        if (*pid != tid)
                caller_program_name(*pid, program, size);
}

pid_t caller_session_of(pid_t pid)
{
        pid_t session = getsid(pid);
        return session > 0 ? session : 0;
}

void caller_program_name(pid_t pid, char *buf, size_t size)
{
        pid_t tgid = 0;
        if (!caller_thread(pid, &tgid, buf, size))
                g_strlcpy(buf, "?", size);
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

/* Where the client of process @pid is: what caller_client names after
 * "smb " or "wine ". NULL when not found. */
static char *caller_client_find(pid_t pid, bool smb)
{
        if (smb) {
                g_autoptr(GArray) inodes = caller_socket_inodes(pid);
                char *peer = caller_smb_peer(pid, "tcp", inodes);
                return peer ? peer : caller_smb_peer(pid, "tcp6", inodes);
        }
        char *prefix = caller_environ(pid, "WINEPREFIX");
        if (!prefix) {
                g_autofree char *home = caller_environ(pid, "HOME");
                if (home)
                        prefix = g_build_filename(home, ".wine", NULL);
        }
        return prefix;
}

/* The name of user @uid, or the number. */
static char *caller_user_name(uid_t uid)
{
        char buf[1024];
        struct passwd pw, *found = NULL;
        getpwuid_r(uid, &pw, buf, sizeof(buf), &found);
        return found ? g_strdup(found->pw_name) : g_strdup_printf("%u", (unsigned)uid);
}

char *caller_client(pid_t pid, const char *program, uid_t uid)
{
        bool smb = g_str_equal(program, "smbd");
        if (!smb && !g_str_has_prefix(program, "wineserver"))
                return NULL;
        /* An smbd process serves one client connection all its life, a
         * wineserver one prefix: found once per process (its entry,
         * checked alive here, goes with it), not in /proc at every event. */
        char name[64];
        pid_t tgid = 0;
        g_autofree char *where = NULL, *user = NULL;
        bool known = caller_thread(pid, &tgid, name, sizeof(name));
        CallerEntry *entry = known ? caller_entry_ref(pid) : NULL;
        if (entry) {
                g_mutex_lock(&caller_cache_lock);
                where = g_strdup(entry->client);
                if (entry->user && entry->user_uid == uid)
                        user = g_strdup(entry->user);
                g_mutex_unlock(&caller_cache_lock);
        }
        if (!where)
                where = caller_client_find(pid, smb);
        if (smb && !user)
                user = caller_user_name(uid);
        if (entry) {
                g_mutex_lock(&caller_cache_lock);
                if (!entry->client && where)
                        entry->client = g_strdup(where);
                if (smb && !(entry->user && entry->user_uid == uid)) {
                        g_free(entry->user);
                        entry->user = g_strdup(user);
                        entry->user_uid = uid;
                }
                g_mutex_unlock(&caller_cache_lock);
                caller_entry_unref(entry);
        }
        if (smb)
                return g_strdup_printf("smb %s user=%s", where ? where : "?", user);
        return g_strdup_printf("wine %s", where ? where : "?");
}
