/* trail.c - the postoffices' trails (trail.h). */
#include "trail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h> /* renameat */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "status-line.h"

struct Trail {
        GMutex mutex;
        int dir_fd;         /* the trail folder; guarded by mutex (-1 once closed) */
        char *shown;        /* immutable */
        char *node;         /* this node's name, written in each line; immutable */
        char *name;         /* NODE.log; immutable */
        char *older;        /* NODE.log.1; immutable */
        guint64 half_bytes; /* rotate past this; immutable */
        int fd;             /* guarded by mutex; -1 after a failure */
        guint64 size;       /* guarded by mutex */
        bool failed;        /* guarded by mutex; a failure was logged */
};

/* The daemon's own, private, and what the name says (a folder or a
 * regular file with one link): anything else was planted on the share. */
static bool trail_is_own(int fd, mode_t type)
{
        struct stat st;
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type && st.st_uid == geteuid() &&
               (type == S_IFDIR || st.st_nlink == 1) && (st.st_mode & 077) == 0;
}

static int trail_open_stream(Trail *trail, guint64 *size)
{
        int fd = openat(trail->dir_fd, trail->name,
                        O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (!trail_is_own(fd, S_IFREG) || fstat(fd, &st) < 0) {
                close(fd);
                return -EPERM;
        }
        *size = (guint64)st.st_size;
        return fd;
}

Trail *trail_open(int dir_fd, const char *shown, const TrailConfig *config)
{
        if (!config || config->max_bytes == 0 || !config->node)
                return NULL;
        if (mkdirat(dir_fd, PO_STATUS_TRAIL_DIR, 0700) < 0 && errno != EEXIST) {
                log_warning("%s: no trail kept: cannot make %s: %s", shown, PO_STATUS_TRAIL_DIR,
                            g_strerror(errno));
                return NULL;
        }
        autoclose_fd int folder = openat(dir_fd, PO_STATUS_TRAIL_DIR,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (folder < 0 || !trail_is_own(folder, S_IFDIR)) {
                log_warning("%s: no trail kept: %s is not the daemon's own private folder; "
                            "remove it",
                            shown, PO_STATUS_TRAIL_DIR);
                return NULL;
        }
        Trail *trail = g_new0(Trail, 1);
        g_mutex_init(&trail->mutex);
        trail->dir_fd = fd_steal(&folder);
        trail->shown = g_strdup(shown);
        trail->node = g_strdup(config->node);
        trail->name = g_strconcat(config->node, ".log", NULL);
        trail->older = g_strconcat(config->node, ".log.1", NULL);
        trail->half_bytes = MAX(config->max_bytes / 2, 4096);
        trail->fd = trail_open_stream(trail, &trail->size);
        if (trail->fd < 0) {
                log_warning("%s: no trail kept: %s/%s: %s", shown, PO_STATUS_TRAIL_DIR, trail->name,
                            trail->fd == -EPERM ? "not the daemon's own private file; remove it"
                                                : g_strerror(-trail->fd));
                trail_free(trail);
                return NULL;
        }
        return trail;
}

void trail_close(Trail *trail)
{
        if (!trail)
                return;
        g_mutex_lock(&trail->mutex);
        if (trail->fd >= 0)
                close(trail->fd);
        trail->fd = -1;
        if (trail->dir_fd >= 0)
                close(trail->dir_fd);
        trail->dir_fd = -1;
        trail->failed = true; /* nothing more to say about it */
        g_mutex_unlock(&trail->mutex);
}

void trail_free(Trail *trail)
{
        if (!trail)
                return;
        if (trail->fd >= 0)
                close(trail->fd);
        if (trail->dir_fd >= 0)
                close(trail->dir_fd);
        g_mutex_clear(&trail->mutex);
        g_free(trail->shown);
        g_free(trail->node);
        g_free(trail->name);
        g_free(trail->older);
        g_free(trail);
}

/* Under the mutex: the stream is full; it becomes the older file. */
static void trail_rotate_locked(Trail *trail)
{
        if (trail->dir_fd < 0)
                return;
        if (renameat(trail->dir_fd, trail->name, trail->dir_fd, trail->older) < 0) {
                if (!trail->failed)
                        log_warning("%s: trail not rotated: %s", trail->shown, g_strerror(errno));
                trail->failed = true;
                return;
        }
        close(trail->fd);
        trail->fd = trail_open_stream(trail, &trail->size);
}

static const char *trail_access(int flags)
{
        switch (flags & O_ACCMODE) {
        case O_RDONLY:
                return "r";
        case O_WRONLY:
                return "w";
        default:
                return "rw";
        }
}

/* The event's line, written straight into @out (one line per request
 * that the trail follows: no line object is built and freed). */
static void trail_event_line(GString *out, const TrailEvent *event, const char *node)
{
        po_status_write_word(out, PO_STATUS_WORD_EVENT);
        /* Microseconds since 1970 (a clock set before then writes 0). */
        gint64 now = g_get_real_time();
        po_status_write_word_uint64(out, (guint64)MAX(now, 0));
        po_status_write_field(out, "op", event->op);
        po_status_write_field(out, "file", event->file);
        if (event->to)
                po_status_write_field(out, "to", event->to);
        if (g_str_equal(event->op, "open") || g_str_equal(event->op, "create"))
                po_status_write_field(out, "access", trail_access(event->flags));
        po_status_write_field_uint64(out, "pid", (guint64)MAX(event->pid, 0));
        po_status_write_field(out, "program", event->program ? event->program : "?");
        po_status_write_field_uint64(out, "uid", event->uid);
        if (event->protocol)
                po_status_write_field(out, "protocol", event->protocol);
        po_status_write_field(out, "outcome", event->outcome ? event->outcome : "none");
        if (event->waited_ms >= 0)
                po_status_write_field_uint64(out, "waited_ms", (guint64)event->waited_ms);
        const char *error = event->result < 0 ? strerrorname_np(-event->result) : NULL;
        po_status_write_field(out, "result", event->result == 0 ? "ok" : error ? error : "?");
        if (event->client)
                po_status_write_field(out, "client", event->client);
        po_status_write_field(out, "node", node);
        g_string_append_c(out, '\n');
}

static void trail_line_free(gpointer line)
{
        g_string_free(line, TRUE);
}

/* Each thread builds its lines in one buffer of its own, kept for its next
 * line: a line is written on every open a trail follows. */
static GPrivate trail_line = G_PRIVATE_INIT(trail_line_free);

void trail_append(Trail *trail, const TrailEvent *event)
{
        if (!trail)
                return;
        GString *line = g_private_get(&trail_line);
        if (!line) {
                line = g_string_sized_new(256);
                g_private_set(&trail_line, line);
        }
        g_string_truncate(line, 0);
        trail_event_line(line, event, trail->node);
        g_mutex_lock(&trail->mutex);
        if (trail->fd >= 0 && trail->size + line->len > trail->half_bytes)
                trail_rotate_locked(trail);
        /* One write per line with O_APPEND: lines never interleave. */
        ssize_t n = trail->fd >= 0 ? write(trail->fd, line->str, line->len) : -1;
        if (n == (ssize_t)line->len) {
                trail->size += line->len;
        } else if (!trail->failed) {
                log_warning("%s: trail write failed: %s; events are not kept until it works again",
                            trail->shown, n < 0 ? g_strerror(errno) : "short write");
                trail->failed = true;
        }
        g_mutex_unlock(&trail->mutex);
}

char *trail_node_name(void)
{
        char host[HOST_NAME_MAX + 1] = "";
        if (gethostname(host, sizeof(host)) < 0 || !host[0])
                g_strlcpy(host, "node", sizeof(host));
        host[HOST_NAME_MAX] = '\0';
        for (char *c = host; *c; c++)
                if (!g_ascii_isalnum(*c) && *c != '.' && *c != '-' && *c != '_')
                        *c = '_';
        return g_strdup(host[0] == '.' ? "node" : host);
}

int trail_remove(int dir_fd)
{
        autoclose_fd int folder = openat(dir_fd, PO_STATUS_TRAIL_DIR,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (folder < 0)
                return errno == ENOENT ? 0 : -errno;
        DIR *dir = fdopendir(fd_dup(folder));
        if (!dir)
                return -errno;
        int r = 0;
        for (struct dirent *entry; r == 0 && (entry = readdir(dir));) {
                if (g_str_equal(entry->d_name, ".") || g_str_equal(entry->d_name, ".."))
                        continue;
                if (unlinkat(folder, entry->d_name, 0) < 0)
                        r = errno == EISDIR ? -ENOTEMPTY : -errno;
        }
        closedir(dir);
        if (r == 0 && unlinkat(dir_fd, PO_STATUS_TRAIL_DIR, AT_REMOVEDIR) < 0)
                r = -errno;
        return r;
}
