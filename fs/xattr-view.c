/* xattr-view.c - renders lease state and mailbag sizes as attributes. */
#include "xattr-view.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "mailbag.h"

#define ATTR_LOCK XATTR_VIEW_PREFIX "lock"
#define ATTR_RECORDS XATTR_VIEW_PREFIX "records"
#define ATTR_LOCKS XATTR_VIEW_PREFIX "locks"
#define ATTR_STATS XATTR_VIEW_PREFIX "stats"
#define ATTR_BREAK XATTR_VIEW_PREFIX "break"

bool xattr_view_reserved(const char *name)
{
        return g_str_has_prefix(name, XATTR_VIEW_PREFIX);
}

/* Program names may hold spaces; fields are space-separated. */
static void append_word(GString *out, const char *word)
{
        for (const char *p = word ? word : "?"; *p; p++)
                g_string_append_c(out, g_ascii_isspace(*p) || !g_ascii_isprint(*p) ? '_' : *p);
}

static void append_lease_line(GString *out, const LeaseInfo *info)
{
        g_string_append_printf(out, "%s %s", lease_kind_to_string(info->kind), info->name);
        if (!info->holder) {
                g_string_append(out, " free\n");
                return;
        }
        g_autoptr(GDateTime) since = g_date_time_new_from_unix_utc(info->since_us / G_USEC_PER_SEC);
        g_autofree char *since_text = since ? g_date_time_format_iso8601(since) : g_strdup("?");
        g_string_append_printf(out, " held pid=%d program=", (int)info->holder);
        append_word(out, info->program);
        g_string_append(out, " protocol=");
        append_word(out, info->protocol);
        g_string_append_printf(out, " since=%s refs=%u waiters=%u", since_text, info->refs,
                               info->n_waiters);
        for (unsigned i = 0; i < info->n_waiters; i++)
                g_string_append_printf(out, "%s%d", i ? "," : " waiting=", (int)info->waiter_pids[i]);
        g_string_append_c(out, '\n');
}

static void append_lookup(GString *out, Mailbags *mailbags, LeaseKind kind, const char *name)
{
        g_autoptr(LeaseInfo) info = lease_manager_lookup(mailbags->leases, kind, name);
        append_lease_line(out, info);
}

/* The leases that stand for the file @cls names, in the order shown. */
static int leases_of_class(const PoClass *cls, LeaseKind kinds[2])
{
        switch (cls->role) {
        case PO_ROLE_MAILBAG_KEY:
                if (cls->is_queue) {
                        kinds[0] = LEASE_SESSION;
                        kinds[1] = LEASE_KEY_WRITE;
                        return 2;
                }
                kinds[0] = LEASE_KEY_WRITE;
                return 1;
        case PO_ROLE_MAILBAG_MBG:
        case PO_ROLE_SESSION_LOCK:
                if (!cls->is_queue)
                        return 0;
                kinds[0] = LEASE_SESSION;
                return 1;
        case PO_ROLE_EXCLUSIVE:
                kinds[0] = LEASE_EXCLUSIVE;
                return 1;
        default:
                return 0;
        }
}

static bool class_has_records(const PoClass *cls)
{
        return cls->role == PO_ROLE_MAILBAG_KEY || cls->role == PO_ROLE_MAILBAG_MBG ||
               cls->role == PO_ROLE_SESSION_LOCK;
}

/* Reads the mailbag's KEY and MBG from the backing store. The view is a
 * snapshot taken without a lease: a status display must never wait. */
static int render_records(Mailbags *mailbags, const char *mailbag, char **value)
{
        g_autofree char *key_path = g_strdup_printf("KEY/%s.KEY", mailbag);
        g_autofree char *mbg_path = g_strdup_printf("MBG/%s.MBG", mailbag);
        autoclose_fd int key_fd = backing_openat(mailbags->backing, key_path, O_RDONLY, 0);
        autoclose_fd int mbg_fd = backing_openat(mailbags->backing, mbg_path, O_RDONLY, 0);
        if (key_fd < 0 || mbg_fd < 0)
                return -ENODATA;

        g_autoptr(GError) error = NULL;
        g_autoptr(PoMailbag) bag = po_mailbag_load_fds(key_fd, mbg_fd, key_path, mbg_path, &error);
        if (!bag) {
                *value = g_strdup_printf("%s corrupt: %s\n", mailbag, error->message);
                return 0;
        }
        PoMailbagStats stats;
        po_mailbag_stats(bag, &stats);
        *value = g_strdup_printf("%s live=%u free=%u total=%u limit=%u percent=%u\n", mailbag,
                                 stats.live, stats.free, stats.total, PO_MAILBAG_MAX_RECORDS,
                                 stats.percent);
        return 0;
}

static char *render_locks(Mailbags *mailbags)
{
        g_autoptr(GPtrArray) infos = lease_manager_snapshot(mailbags->leases);
        GString *out = g_string_new(NULL);
        for (guint i = 0; i < infos->len; i++)
                append_lease_line(out, infos->pdata[i]);
        return g_string_free(out, FALSE);
}

static char *render_stats(Mailbags *mailbags)
{
        LeaseStats stats;
        lease_manager_get_stats(mailbags->leases, &stats);
        return g_strdup_printf("acquisitions=%" G_GUINT64_FORMAT " waits=%" G_GUINT64_FORMAT
                               " timeouts=%" G_GUINT64_FORMAT " deadlocks=%" G_GUINT64_FORMAT
                               " stale_reclaimed=%" G_GUINT64_FORMAT " breaks=%" G_GUINT64_FORMAT
                               " cancellations=%" G_GUINT64_FORMAT
                               " mixed_protocol=%" G_GUINT64_FORMAT "\n",
                               stats.acquisitions, stats.waits, stats.timeouts, stats.deadlocks,
                               stats.stale_reclaimed, stats.breaks, stats.cancellations,
                               stats.mixed_protocol);
}

int xattr_view_get(Mailbags *mailbags, const char *relpath, const char *name, char **value)
{
        if (relpath[0] == '\0') {
                if (g_str_equal(name, ATTR_LOCKS)) {
                        *value = render_locks(mailbags);
                        return 0;
                }
                if (g_str_equal(name, ATTR_STATS)) {
                        *value = render_stats(mailbags);
                        return 0;
                }
                return -ENODATA;
        }

        PoClass cls;
        po_classify(mailbags->profile, relpath, &cls);
        if (g_str_equal(name, ATTR_LOCK)) {
                LeaseKind kinds[2];
                int n = leases_of_class(&cls, kinds);
                if (n == 0)
                        return -ENODATA;
                GString *out = g_string_new(NULL);
                for (int i = 0; i < n; i++)
                        append_lookup(out, mailbags, kinds[i], cls.name);
                *value = g_string_free(out, FALSE);
                return 0;
        }
        if (g_str_equal(name, ATTR_RECORDS) && class_has_records(&cls))
                return render_records(mailbags, cls.name, value);
        return -ENODATA;
}

void xattr_view_list(Mailbags *mailbags, const char *relpath, GString *list)
{
        if (relpath[0] == '\0') {
                g_string_append_len(list, ATTR_LOCKS, sizeof(ATTR_LOCKS));
                g_string_append_len(list, ATTR_STATS, sizeof(ATTR_STATS));
                return;
        }
        PoClass cls;
        po_classify(mailbags->profile, relpath, &cls);
        LeaseKind kinds[2];
        if (leases_of_class(&cls, kinds) > 0)
                g_string_append_len(list, ATTR_LOCK, sizeof(ATTR_LOCK));
        if (class_has_records(&cls))
                g_string_append_len(list, ATTR_RECORDS, sizeof(ATTR_RECORDS));
}

static bool break_value_valid(const char *value, size_t size)
{
        /* "1", as setfattr -v 1 sends it, or "1\n" from a shell. */
        return (size == 1 && value[0] == '1') ||
               (size == 2 && value[0] == '1' && value[1] == '\n');
}

int xattr_view_set(Mailbags *mailbags, const char *relpath, const char *name, const char *value,
                   size_t size, uid_t caller_uid)
{
        if (!g_str_equal(name, ATTR_BREAK) || caller_uid != 0)
                return -EPERM;
        if (!break_value_valid(value, size))
                return -EINVAL;

        PoClass cls;
        po_classify(mailbags->profile, relpath, &cls);
        LeaseKind kinds[2];
        int n = leases_of_class(&cls, kinds);
        int broken = 0;
        /* The lease manager logs each break with its holder. */
        for (int i = 0; i < n; i++)
                broken += lease_break(mailbags->leases, kinds[i], cls.name) == 0;
        return broken > 0 ? 0 : -ENODATA;
}
