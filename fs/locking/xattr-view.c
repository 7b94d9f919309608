/* xattr-view.c - renders lease state and mailbag sizes as attributes. */
#include "xattr-view.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "caller.h"
#include "fd-util.h"
#include "freeze.h"
#include "log.h"
#include "mailbag.h"
#include "status-line.h"

#define ATTR_LOCK PO_STATUS_ATTR_LOCK
#define ATTR_RECORDS PO_STATUS_ATTR_RECORDS
#define ATTR_LOCKS PO_STATUS_ATTR_LOCKS
#define ATTR_STATS PO_STATUS_ATTR_STATS
#define ATTR_POSTOFFICES PO_STATUS_ATTR_POSTOFFICES
#define ATTR_BREAK PO_STATUS_ATTR_BREAK
#define ATTR_RANGES PO_STATUS_ATTR_RANGES
#define ATTR_FREEZE PO_STATUS_ATTR_FREEZE
#define ATTR_MODE PO_STATUS_ATTR_MODE

bool xattr_view_reserved(const char *name)
{
        return g_str_has_prefix(name, XATTR_VIEW_PREFIX);
}

/* The postoffice's path as status lines spell it: "." for the root. */
static const char *display_path(const char *path)
{
        return path[0] ? path : PO_STATUS_PATH_ROOT;
}

/* Whether @caller may see which process holds or waits: as ps shows every
 * process, unless /proc hides other users' processes (hidepid=), and then
 * only to root and to the process's own user. */
static bool caller_sees_process(const Mailbags *mailbags, const XattrViewCaller *caller,
                                pid_t pid)
{
        if (!mailbags->proc_hides_pids || caller->uid == 0)
                return true;
        uid_t owner;
        return caller_process_uid(pid, &owner) == 0 && owner == caller->uid;
}

static void append_waiting(PoStatusLine *line, const Mailbags *mailbags,
                           const XattrViewCaller *caller, const LeaseInfo *info)
{
        if (!info->n_waiters)
                return;
        g_autoptr(GString) pids = g_string_new(NULL);
        for (unsigned i = 0; i < info->n_waiters; i++) {
                pid_t waiter = info->waiter_pids[i];
                g_string_append_printf(pids, "%s%d", i ? "," : "",
                                       caller_sees_process(mailbags, caller, waiter) ? (int)waiter : 0);
        }
        po_status_line_add_field(line, PO_STATUS_FIELD_WAITING, pids->str);
}

static void append_lease_line(GString *out, Mailbags *mailbags, const XattrViewCaller *caller,
                              const char *po_path, const LeaseInfo *info)
{
        g_autoptr(PoStatusLine) line = po_status_line_new();
        po_status_line_add_word(line, lease_kind_to_string(info->kind));
        po_status_line_add_word(line, info->name);
        bool held = info->holder || info->held_elsewhere;
        po_status_line_add_word(line, held ? PO_STATUS_STATE_HELD : PO_STATUS_STATE_FREE);
        po_status_line_add_field(line, PO_STATUS_FIELD_POSTOFFICE, display_path(po_path));
        if (!info->holder && info->held_elsewhere) {
                /* Another daemon's hold: its OFD lock tells nothing of the
                 * process behind it. */
                po_status_line_add_field(line, "pid", "0");
                po_status_line_add_field(line, "program", "?");
                po_status_line_add_field_printf(line, "waiters", "%u", info->n_waiters);
                append_waiting(line, mailbags, caller, info);
                po_status_line_add_field(line, PO_STATUS_FIELD_HOLDER, "other-daemon");
        } else if (info->holder) {
                /* Lock files found on the share at start are held in the
                 * daemon's name for a holder nobody knows. */
                bool unknown = info->holder == mailbags->daemon_pid;
                bool visible = unknown || caller_sees_process(mailbags, caller, info->holder);
                po_status_line_add_field_printf(line, "pid", "%d",
                                                unknown || !visible ? 0 : (int)info->holder);
                po_status_line_add_field(line, "program",
                                         visible && info->program ? info->program : "?");
                po_status_line_add_field(line, "protocol", info->protocol ? info->protocol : "?");
                po_status_line_add_time(line, "since", info->since_us);
                po_status_line_add_field_printf(line, "refs", "%u", info->refs);
                po_status_line_add_field_printf(line, "waiters", "%u", info->n_waiters);
                append_waiting(line, mailbags, caller, info);
                if (unknown)
                        po_status_line_add_field(line, PO_STATUS_FIELD_HOLDER, PO_STATUS_HOLDER_UNKNOWN);
        }
        po_status_line_append_to(line, out);
}

static gint range_order(gconstpointer a, gconstpointer b)
{
        const ByteLockInfo *x = *(ByteLockInfo *const *)a, *y = *(ByteLockInfo *const *)b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        if (x->waiting != y->waiting)
                return x->waiting ? 1 : -1;
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        return x->owner < y->owner ? -1 : x->owner > y->owner;
}

static void append_range_line(GString *out, Mailbags *mailbags, const XattrViewCaller *caller,
                              const ByteLockInfo *info, bool own_file)
{
        bool visible = info->pid > 0 && caller_sees_process(mailbags, caller, info->pid);
        /* The root's list names files anywhere in the tree: only root, and
         * the locking process's own user, learn names they may not see. */
        uid_t owner_uid;
        bool named = own_file || caller->uid == 0 ||
                     (info->pid > 0 && caller_process_uid(info->pid, &owner_uid) == 0 &&
                      owner_uid == caller->uid);
        g_autoptr(PoStatusLine) line = po_status_line_new();
        po_status_line_add_word(line, PO_STATUS_WORD_RANGE);
        g_autofree char *start = g_strdup_printf("%" G_GINT64_FORMAT, info->start);
        g_autofree char *len = g_strdup_printf("%" G_GINT64_FORMAT, info->len);
        po_status_line_add_word(line, start);
        po_status_line_add_word(line, len);
        po_status_line_add_field(line, PO_STATUS_FIELD_TYPE,
                                 info->type == F_WRLCK ? PO_STATUS_RANGE_WRITE : PO_STATUS_RANGE_READ);
        po_status_line_add_field(line, PO_STATUS_FIELD_KIND,
                                 info->flock ? PO_STATUS_RANGE_FLOCK : PO_STATUS_RANGE_POSIX);
        po_status_line_add_field(line, PO_STATUS_FIELD_STATE,
                                 info->waiting ? PO_STATUS_RANGE_WAITING : PO_STATUS_STATE_HELD);
        po_status_line_add_field_printf(line, PO_STATUS_FIELD_OWNER, "%" G_GUINT64_FORMAT,
                                        info->owner);
        po_status_line_add_field_printf(line, PO_STATUS_FIELD_PID, "%d",
                                        visible ? (int)info->pid : 0);
        po_status_line_add_field(line, PO_STATUS_FIELD_PROGRAM,
                                 visible && info->program ? info->program : "?");
        po_status_line_add_field(line, PO_STATUS_FIELD_PATH,
                                 named && info->path ? display_path(info->path) : "?");
        po_status_line_append_to(line, out);
}

/* The locks on the file at @relpath, or on every file for the root. */
static int render_ranges(Mailbags *mailbags, const char *relpath, const XattrViewCaller *caller,
                         char **value)
{
        bool all = relpath[0] == '\0';
        struct stat st;
        if (!all) {
                autoclose_fd int fd = backing_open_node(mailbags->backing, relpath);
                if (fd < 0)
                        return fd;
                if (fstat(fd, &st) < 0)
                        return -errno;
        }
        GString *out = g_string_new(NULL);
        ByteLocks *locks = mailbags->byte_locks;
        if (locks) {
                g_autoptr(GPtrArray) infos = byte_locks_snapshot(locks, all ? NULL : &st);
                g_ptr_array_sort(infos, range_order);
                for (guint i = 0; i < infos->len; i++)
                        append_range_line(out, mailbags, caller, infos->pdata[i], !all);
        }
        *value = g_string_free(out, FALSE);
        return 0;
}

static bool class_has_records(const PoClass *cls)
{
        return cls->role == PO_ROLE_MAILBAG_KEY || cls->role == PO_ROLE_MAILBAG_MBG ||
               cls->role == PO_ROLE_SESSION_LOCK;
}

static bool caller_in_group(const XattrViewCaller *caller, gid_t gid)
{
        if (caller->gid == gid)
                return true;
        for (int i = 0; i < caller->n_groups; i++)
                if (caller->groups[i] == gid)
                        return true;
        return false;
}

/* Whether the file of @fd carries an access ACL, whose entries the mode
 * bits do not tell. */
static bool has_access_acl(int fd)
{
        char path[BACKING_FD_PATH_MAX];
        backing_fd_path(fd, path);
        return getxattr(path, "system.posix_acl_access", NULL, 0) > 0;
}

/* Whether @caller may do @want (the r, w, x bits of "other") to the file
 * of @fd by its mode, as the kernel would. A file with an ACL is read for
 * its owner only: rather refuse than tell too much. */
static bool caller_may(const XattrViewCaller *caller, int fd, const struct stat *st, mode_t want)
{
        if (caller->uid == 0)
                return true;
        mode_t mode = st->st_mode;
        if (caller->uid != st->st_uid && has_access_acl(fd))
                return false;
        if (caller->uid == st->st_uid)
                return ((mode >> 6) & want) == want;
        if (caller_in_group(caller, st->st_gid))
                return ((mode >> 3) & want) == want;
        return (mode & want) == want;
}

/* Opens FOLDER/NAME of the postoffice for the daemon to read, after
 * checking that @caller could have searched FOLDER and read NAME. */
static int open_for_caller(int po_fd, const char *folder, const char *name,
                           const XattrViewCaller *caller)
{
        autoclose_fd int dir_fd =
                openat(po_fd, folder, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return -ENODATA;
        /* O_NONBLOCK: a FIFO put there must not hold a daemon thread. */
        autoclose_fd int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -ENODATA;
        struct stat dir_st, st;
        if (fstat(dir_fd, &dir_st) < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return -ENODATA;
        if (!caller_may(caller, dir_fd, &dir_st, S_IXOTH) || !caller_may(caller, fd, &st, S_IROTH))
                return -EACCES;
        return fd_steal(&fd);
}

/* Reads the mailbag's KEY and MBG from the backing store. The view is a
 * snapshot taken without a lease: a status display must never wait. */
static int render_records(Mailbags *mailbags, const char *po_path, const char *mailbag,
                          const XattrViewCaller *caller, char **value)
{
        autoclose_fd int po_fd = backing_open_dir(mailbags->backing, po_path);
        if (po_fd < 0)
                return -ENODATA;
        g_autofree char *key_name = g_strdup_printf("%s.KEY", mailbag);
        g_autofree char *mbg_name = g_strdup_printf("%s.MBG", mailbag);
        autoclose_fd int key_fd = open_for_caller(po_fd, "KEY", key_name, caller);
        if (key_fd < 0)
                return key_fd;
        autoclose_fd int mbg_fd = open_for_caller(po_fd, "MBG", mbg_name, caller);
        if (mbg_fd < 0)
                return mbg_fd;

        g_autofree char *key_path = g_strdup_printf("KEY/%s", key_name);
        g_autofree char *mbg_path = g_strdup_printf("MBG/%s", mbg_name);
        g_autoptr(GError) error = NULL;
        g_autoptr(PoMailbag) bag = po_mailbag_load_fds(key_fd, mbg_fd, key_path, mbg_path, &error);
        g_autoptr(PoStatusLine) line = po_status_line_new();
        po_status_line_add_word(line, "records");
        po_status_line_add_word(line, mailbag);
        if (!bag) {
                po_status_line_add_word(line, "corrupt");
                po_status_line_add_field(line, PO_STATUS_FIELD_POSTOFFICE, display_path(po_path));
                po_status_line_add_field(line, "message", error->message);
        } else {
                PoMailbagStats stats;
                po_mailbag_stats(bag, &stats);
                po_status_line_add_field(line, PO_STATUS_FIELD_POSTOFFICE, display_path(po_path));
                po_status_line_add_field_printf(line, "live", "%u", stats.live);
                po_status_line_add_field_printf(line, "free", "%u", stats.free);
                po_status_line_add_field_printf(line, "total", "%u", stats.total);
                po_status_line_add_field_printf(line, "limit", "%u", PO_MAILBAG_MAX_RECORDS);
                po_status_line_add_field_printf(line, "percent", "%u", stats.percent);
        }
        GString *out = g_string_new(NULL);
        po_status_line_append_to(line, out);
        *value = g_string_free(out, FALSE);
        return 0;
}

static void append_locks(GString *out, Mailbags *mailbags, const XattrViewCaller *caller,
                         const PostofficeEntry *entry)
{
        g_autoptr(GPtrArray) infos = lease_manager_snapshot(entry->po->leases);
        for (guint i = 0; i < infos->len; i++)
                append_lease_line(out, mailbags, caller, entry->path, infos->pdata[i]);
}

static void append_wait_times(PoStatusLine *line, const char *key, const char *sum_key,
                              const LeaseWaitTimes *times)
{
        static const guint64 bounds[] = LEASE_WAIT_BUCKET_BOUNDS_MS;
        G_STATIC_ASSERT(G_N_ELEMENTS(bounds) + 1 == LEASE_WAIT_BUCKETS);
        po_status_line_add_histogram(line, key, sum_key, bounds, times->count, LEASE_WAIT_BUCKETS,
                                     times->sum_ms);
}

static void append_stats_line(GString *out, const char *scope, const LeaseStats *stats)
{
        g_autoptr(PoStatusLine) line = po_status_line_new();
        po_status_line_add_word(line, "stats");
        po_status_line_add_word(line, scope);
#define STATS_FIELD(name) \
        po_status_line_add_field_printf(line, #name, "%" G_GUINT64_FORMAT, stats->name)
        STATS_FIELD(acquisitions);
        STATS_FIELD(waits);
        STATS_FIELD(refused);
        STATS_FIELD(waited_granted);
        STATS_FIELD(timeouts);
        STATS_FIELD(deadlocks);
        STATS_FIELD(stale_reclaimed);
        STATS_FIELD(breaks);
        STATS_FIELD(cancellations);
        STATS_FIELD(mixed_protocol);
        STATS_FIELD(overlaps);
#undef STATS_FIELD
        append_wait_times(line, PO_STATUS_FIELD_WAIT_GRANTED_MS,
                          PO_STATUS_FIELD_WAIT_GRANTED_SUM_MS, &stats->granted_wait);
        append_wait_times(line, PO_STATUS_FIELD_WAIT_TIMEOUT_MS,
                          PO_STATUS_FIELD_WAIT_TIMEOUT_SUM_MS, &stats->timeout_wait);
        po_status_line_append_to(line, out);
}

static void stats_add(LeaseStats *sum, const LeaseStats *one)
{
        sum->acquisitions += one->acquisitions;
        sum->waits += one->waits;
        sum->refused += one->refused;
        sum->waited_granted += one->waited_granted;
        sum->timeouts += one->timeouts;
        sum->deadlocks += one->deadlocks;
        sum->stale_reclaimed += one->stale_reclaimed;
        sum->breaks += one->breaks;
        sum->cancellations += one->cancellations;
        sum->mixed_protocol += one->mixed_protocol;
        sum->overlaps += one->overlaps;
        for (int i = 0; i < LEASE_WAIT_BUCKETS; i++) {
                sum->granted_wait.count[i] += one->granted_wait.count[i];
                sum->timeout_wait.count[i] += one->timeout_wait.count[i];
        }
        sum->granted_wait.sum_ms += one->granted_wait.sum_ms;
        sum->timeout_wait.sum_ms += one->timeout_wait.sum_ms;
}

/* A postoffice's stats line, then a line per mailbag and pair of
 * protocols that overlapped in observe mode. */
static void append_postoffice_stats(GString *out, const char *path, LeaseManager *leases,
                                    LeaseStats *stats)
{
        lease_manager_get_stats(leases, stats);
        append_stats_line(out, display_path(path), stats);
        g_autoptr(GPtrArray) overlaps = lease_manager_overlaps(leases);
        for (guint i = 0; i < overlaps->len; i++) {
                const LeaseOverlapCount *one = overlaps->pdata[i];
                g_autoptr(PoStatusLine) line = po_status_line_new();
                po_status_line_add_word(line, PO_STATUS_WORD_OVERLAP);
                po_status_line_add_word(line, display_path(path));
                po_status_line_add_field(line, PO_STATUS_FIELD_KIND, lease_kind_to_string(one->kind));
                po_status_line_add_field(line, PO_STATUS_FIELD_NAME, one->name);
                po_status_line_add_field(line, PO_STATUS_FIELD_PROTOCOL, one->protocol);
                po_status_line_add_field(line, PO_STATUS_FIELD_OTHER, one->other_protocol);
                po_status_line_add_field_printf(line, PO_STATUS_FIELD_COUNT, "%" G_GUINT64_FORMAT,
                                                one->count);
                po_status_line_append_to(line, out);
        }
}

/* The root's values: every postoffice. */
static int render_root(Mailbags *mailbags, const char *name, const XattrViewCaller *caller,
                       char **value)
{
        bool locks = g_str_equal(name, ATTR_LOCKS);
        bool stats = g_str_equal(name, ATTR_STATS);
        bool list = g_str_equal(name, ATTR_POSTOFFICES);
        if (g_str_equal(name, ATTR_MODE)) {
                *value = g_strconcat(atomic_load(&mailbags->observe) ? PO_STATUS_MODE_OBSERVE
                                                                     : PO_STATUS_MODE_ENFORCE,
                                     "\n", NULL);
                return 0;
        }
        if (!locks && !stats && !list)
                return -ENODATA;

        GString *out = g_string_new(NULL);
        LeaseStats sum = {0};
        GArray *entries = mailbags->postoffices ? postoffices_list(mailbags->postoffices)
                                                : g_array_new(FALSE, FALSE, sizeof(PostofficeEntry));
        for (guint i = 0; i < entries->len; i++) {
                const PostofficeEntry *entry = &g_array_index(entries, PostofficeEntry, i);
                if (locks) {
                        append_locks(out, mailbags, caller, entry);
                } else if (stats) {
                        LeaseStats one;
                        append_postoffice_stats(out, entry->path, entry->po->leases, &one);
                        stats_add(&sum, &one);
                } else {
                        g_autoptr(PoStatusLine) line = po_status_line_new();
                        g_autofree char *queues =
                                g_strjoinv(",", (char **)po_profile_queues(mailbags->profile));
                        po_status_line_add_word(line, "postoffice");
                        po_status_line_add_word(line, display_path(entry->path));
                        po_status_line_add_field(line, "queues", queues);
                        po_status_line_append_to(line, out);
                }
        }
        postoffices_entries_free(entries);
        if (stats)
                append_stats_line(out, PO_STATUS_PATH_ALL, &sum);
        *value = g_string_free(out, FALSE);
        return 0;
}

/* Who reads the freeze lines, for freeze_describe()'s FreezeSeesFn. */
typedef struct {
        const Mailbags *mailbags;
        const XattrViewCaller *caller;
} FreezeReader;

static bool freeze_reader_sees(pid_t pid, const void *data)
{
        const FreezeReader *reader = data;
        return caller_sees_process(reader->mailbags, reader->caller, pid);
}

/* A postoffice folder's own values. */
static int render_postoffice(Mailbags *mailbags, Postoffice *po, const char *path,
                             const char *name, const XattrViewCaller *caller, char **value)
{
        PostofficeEntry entry = {.po = po, .path = (char *)path};
        GString *out = g_string_new(NULL);
        if (g_str_equal(name, ATTR_LOCKS)) {
                append_locks(out, mailbags, caller, &entry);
        } else if (g_str_equal(name, ATTR_STATS)) {
                LeaseStats stats;
                append_postoffice_stats(out, path, po->leases, &stats);
        } else if (g_str_equal(name, ATTR_FREEZE)) {
                FreezeReader reader = {.mailbags = mailbags, .caller = caller};
                g_autofree char *lines = freeze_describe(mailbags, po, path, freeze_reader_sees,
                                                         &reader);
                g_string_append(out, lines);
        } else {
                g_string_free(out, TRUE);
                return -ENODATA;
        }
        *value = g_string_free(out, FALSE);
        return 0;
}

static Postoffice *postoffice_folder(Mailbags *mailbags, const char *relpath)
{
        Postoffice *po = NULL;
        if (!mailbags->postoffices || postoffices_find(mailbags->postoffices, relpath, &po) < 0)
                return NULL;
        return po;
}

/* The postoffice of a mailbag or GLB file at @relpath, its class in @cls;
 * NULL for any other file. The folder is looked at only for a file whose
 * name makes it one of those: most files cost a classification alone. */
static Postoffice *guarded_file(Mailbags *mailbags, const char *relpath, PoClass *cls)
{
        g_autofree char *dir = NULL;
        const char *inner;
        if (!postoffices_split(relpath, &dir, &inner))
                return NULL;
        po_classify(mailbags->profile, inner, cls);
        LeaseKind kinds[LEASE_KIND_COUNT];
        if (policy_leases_of(cls, kinds) == 0 && !class_has_records(cls))
                return NULL;
        return mailbags_postoffice_of(mailbags, relpath, true, &inner);
}

static int xattr_view_render(Mailbags *mailbags, const char *relpath, bool is_folder,
                             const char *name, const XattrViewCaller *caller, char **value)
{
        if (g_str_equal(name, ATTR_RANGES))
                return render_ranges(mailbags, relpath, caller, value);
        if (relpath[0] == '\0') {
                int r = render_root(mailbags, name, caller, value);
                if (r != -ENODATA)
                        return r;
        }
        if (is_folder) {
                Postoffice *folder_po = postoffice_folder(mailbags, relpath);
                return folder_po ? render_postoffice(mailbags, folder_po, relpath, name, caller, value)
                                 : -ENODATA;
        }

        PoClass cls;
        Postoffice *po = guarded_file(mailbags, relpath, &cls);
        if (!po)
                return -ENODATA;
        g_autofree char *po_path = postoffices_path_of(mailbags->postoffices, po);
        if (g_str_equal(name, ATTR_LOCK)) {
                LeaseKind kinds[LEASE_KIND_COUNT];
                int n = policy_leases_of(&cls, kinds);
                if (n == 0)
                        return -ENODATA;
                GString *out = g_string_new(NULL);
                for (int i = 0; i < n; i++) {
                        g_autoptr(LeaseInfo) info = lease_manager_lookup(po->leases, kinds[i], cls.name);
                        if (!info->holder)
                                info->held_elsewhere = info->held_elsewhere ||
                                        cluster_held_elsewhere(po->cluster, kinds[i], cls.name);
                        append_lease_line(out, mailbags, caller, po_path, info);
                }
                *value = g_string_free(out, FALSE);
                return 0;
        }
        if (g_str_equal(name, ATTR_RECORDS) && class_has_records(&cls))
                return render_records(mailbags, po_path, cls.name, caller, value);
        return -ENODATA;
}

/* "user.mailbag.locks.3" -> "user.mailbag.locks" and 3; a name without
 * a page number is page 1. False for ".0", ".1" or a number with junk. */
static bool page_of(const char *name, char **base, guint *page)
{
        const char *dot = strrchr(name, '.');
        const char *digits = dot ? dot + 1 : "";
        *page = 1;
        if (!g_ascii_isdigit(digits[0])) {
                *base = g_strdup(name);
                return true;
        }
        char *end = NULL;
        guint64 number = g_ascii_strtoull(digits, &end, 10);
        if (*end || digits[0] == '0' || number < 2 || number > G_MAXUINT)
                return false;
        *base = g_strndup(name, (gsize)(dot - name));
        *page = (guint)number;
        return true;
}

/* Page @page of @text (whole lines, PO_STATUS_PAGE_MAX bytes at most,
 * and a "more" line when another follows), or NULL past the end. */
static char *page_cut(const char *text, const char *base, guint page)
{
        const char *start = text;
        gsize len = strlen(text);
        const char *end_of_text = text + len;
        for (guint n = 1;; n++) {
                gsize left = (gsize)(end_of_text - start);
                if (left <= PO_STATUS_PAGE_MAX) {
                        /* The last page; an empty one only as page 1. */
                        return n == page && (left > 0 || n == 1) ? g_strndup(start, left) : NULL;
                }
                /* Room for the "more" line, then cut after a whole line. */
                gsize room = PO_STATUS_PAGE_MAX - strlen(PO_STATUS_MORE_WORD) -
                             strlen(base) - 16;
                const char *cut = start + room;
                while (cut > start && cut[-1] != '\n')
                        cut--;
                if (cut == start)
                        cut = start + room; /* one line longer than a page */
                if (n == page) {
                        GString *out = g_string_new_len(start, cut - start);
                        g_string_append_printf(out, "%s %s.%u\n", PO_STATUS_MORE_WORD, base,
                                               n + 1);
                        return g_string_free(out, FALSE);
                }
                start = cut;
        }
}

int xattr_view_get(Mailbags *mailbags, const char *relpath, bool is_folder, const char *name,
                   const XattrViewCaller *caller, char **value)
{
        g_autofree char *base = NULL;
        guint page;
        if (!page_of(name, &base, &page))
                return -ENODATA;
        g_autofree char *whole = NULL;
        int r = xattr_view_render(mailbags, relpath, is_folder, base, caller, &whole);
        if (r < 0)
                return r;
        /* The common case, one page: no copy. */
        if (page == 1 && strlen(whole) <= PO_STATUS_PAGE_MAX) {
                *value = g_steal_pointer(&whole);
                return 0;
        }
        *value = page_cut(whole, base, page);
        return *value ? 0 : -ENODATA;
}

static void list_add(GString *list, const char *name)
{
        g_string_append_len(list, name, (gssize)strlen(name) + 1);
}

void xattr_view_list(Mailbags *mailbags, const char *relpath, bool is_folder, GString *list)
{
        if (relpath[0] == '\0') {
                list_add(list, ATTR_POSTOFFICES);
                list_add(list, ATTR_RANGES);
                list_add(list, ATTR_MODE);
        }
        if (is_folder) {
                if (relpath[0] == '\0' || postoffice_folder(mailbags, relpath)) {
                        list_add(list, ATTR_LOCKS);
                        list_add(list, ATTR_STATS);
                        list_add(list, ATTR_FREEZE);
                }
                return;
        }
        PoClass cls;
        if (!guarded_file(mailbags, relpath, &cls))
                return;
        LeaseKind kinds[LEASE_KIND_COUNT];
        if (policy_leases_of(&cls, kinds) > 0)
                list_add(list, ATTR_LOCK);
        if (class_has_records(&cls))
                list_add(list, ATTR_RECORDS);
}

/* The longest ban a break may set: a day. */
#define BREAK_BAN_MAX_S 86400

/* "1" (as setfattr -v 1 sends it; "1\n" from a shell): a break; or
 * "ban=SECONDS": a break, and its holder refused that long. 0 with
 * *@ban_ms set, or -EINVAL. */
static int break_value_parse(const char *value, size_t size, int *ban_ms)
{
        if (size > 0 && value[size - 1] == '\n')
                size--;
        g_autofree char *text = g_strndup(value, size);
        *ban_ms = 0;
        if (strlen(text) != size)
                return -EINVAL;
        if (g_str_equal(text, "1"))
                return 0;
        if (!g_str_has_prefix(text, "ban="))
                return -EINVAL;
        const char *number = text + strlen("ban=");
        char *end = NULL;
        guint64 seconds = g_ascii_strtoull(number, &end, 10);
        if (!g_ascii_isdigit(number[0]) || *end || seconds == 0 || seconds > BREAK_BAN_MAX_S)
                return -EINVAL;
        *ban_ms = (int)seconds * 1000;
        return 0;
}

/* Root switches between enforcing and observing: "enforce" or "observe"
 * (a trailing newline allowed). Claims made from now on follow the new
 * mode; those observed before stay queued for their turn, so after a
 * switch to enforcing a newcomer waits for every program still inside. */
static int mode_set(Mailbags *mailbags, const char *value, size_t size, pid_t caller_pid)
{
        if (size > 0 && value[size - 1] == '\n')
                size--;
        g_autofree char *text = g_strndup(value, size);
        bool observe;
        if (strlen(text) == size && g_str_equal(text, PO_STATUS_MODE_OBSERVE))
                observe = true;
        else if (strlen(text) == size && g_str_equal(text, PO_STATUS_MODE_ENFORCE))
                observe = false;
        else
                return -EINVAL;
        bool was = atomic_exchange(&mailbags->observe, observe);
        if (was != observe)
                log_warning("mode switched from %s to %s by pid %d",
                            was ? PO_STATUS_MODE_OBSERVE : PO_STATUS_MODE_ENFORCE, text,
                            (int)caller_pid);
        return 0;
}

int xattr_view_set(Mailbags *mailbags, const char *relpath, const char *name, const char *value,
                   size_t size, uid_t caller_uid, pid_t caller_pid)
{
        if (caller_uid != 0)
                return -EPERM;
        if (g_str_equal(name, ATTR_MODE))
                return relpath[0] == '\0' ? mode_set(mailbags, value, size, caller_pid) : -EPERM;
        if (!g_str_equal(name, ATTR_BREAK))
                return -EPERM;
        int ban_ms;
        if (break_value_parse(value, size, &ban_ms) < 0)
                return -EINVAL;

        const char *inner;
        Postoffice *po = mailbags_postoffice_of(mailbags, relpath, true, &inner);
        if (!po)
                return -ENODATA;
        PoClass cls;
        po_classify(mailbags->profile, inner, &cls);
        LeaseKind kinds[LEASE_KIND_COUNT];
        int n = policy_leases_of(&cls, kinds);
        int broken = 0;
        int remote = 0;
        /* The lease manager logs each break with its holder. */
        for (int i = 0; i < n; i++) {
                if (lease_break_banning(po->leases, kinds[i], cls.name, ban_ms) == 0)
                        broken++;
                else if (cluster_held_elsewhere(po->cluster, kinds[i], cls.name))
                        remote++;
        }
        if (broken == 0 && remote > 0) {
                /* Only the daemon that holds it knows its holder and its
                 * lock files: a break there is the only one that frees it. */
                log_warning("break of %s refused: its hold is through another mailbagfs daemon "
                            "on this share; break it through that daemon's mount", relpath);
                return -EREMOTE;
        }
        return broken > 0 ? 0 : -ENODATA;
}
