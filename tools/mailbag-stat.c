/* mailbag-stat - who holds which mailbag on a mailbagfs mount.
 *
 * mailbag-stat PATH [--json | --prometheus] [--watch [SECONDS]] [--profile PATH]
 *
 * PATH is the root of a mount (it has user.mailbag.postoffices: every
 * postoffice the mount protects is shown) or one protected postoffice
 * folder in it (it has user.mailbag.locks but no user.mailbag.postoffices:
 * that postoffice is shown). Everything comes from the daemon's read-only
 * attributes (status-line.h): leases from user.mailbag.locks, grouped by
 * their postoffice= field, counters from user.mailbag.stats, sizes from
 * user.mailbag.records of each mailbag's KEY file. So the tool needs no
 * privileges beyond reading the mount, and shows what the daemon believes.
 * The mailbags listed are the postoffice's queues (from the postoffices
 * line, else the profile) plus any the daemon reports a lease on. For a
 * mount, a table of the byte-range and flock locks its clients hold or
 * await follows, from user.mailbag.ranges of the root (as smbstatus lists
 * a server's byte-range locks).
 *
 * The mount's mode comes from user.mailbag.mode of its root (none: a
 * daemon before observe mode, which enforces). Observing, the daemon
 * counts the opens enforcing would have stopped: the overlaps= counter of
 * each stats line, and the overlap lines after it, per mailbag and pair of
 * protocols, shown for each postoffice.
 *
 * A daemon that predates named postoffices serves only the mount root,
 * without postoffices: the root is then shown as the one postoffice ".".
 */
#include <errno.h>
#include <math.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "po-error.h"
#include "profile.h"
#include "prom-text.h"
#include "status-attr.h"
#include "status-line.h"
#include "tool-json.h"

typedef struct {
        char *name;
        GPtrArray *lines;  /* the parsed records attribute, or NULL */
        const PoStatusLine *records; /* in @lines; NULL when @error is set */
        char *error;
} MailbagRow;

static void mailbag_row_free(gpointer data)
{
        MailbagRow *row = data;
        g_free(row->name);
        if (row->lines)
                g_ptr_array_unref(row->lines);
        g_free(row->error);
        g_free(row);
}

typedef struct {
        char *path;                  /* relative to the mount root, "." for the root */
        GPtrArray *queues;           /* of char* */
        GPtrArray *leases;           /* of const PoStatusLine*, owned by the snapshot */
        const PoStatusLine *stats;   /* owned by the snapshot; may be NULL */
        GPtrArray *overlaps;         /* of const PoStatusLine* (observe mode), owned by the snapshot */
        GPtrArray *mailbags;         /* of MailbagRow* */
} PostofficeView;

static void postoffice_view_free(gpointer data)
{
        PostofficeView *view = data;
        g_free(view->path);
        g_ptr_array_unref(view->queues);
        g_ptr_array_unref(view->leases);
        g_ptr_array_unref(view->overlaps);
        g_ptr_array_unref(view->mailbags);
        g_free(view);
}

typedef struct {
        const char *target;
        const PoProfile *profile;
        bool is_mount;
        GPtrArray *owned;       /* of GPtrArray* of lines: keeps every parsed line alive */
        GPtrArray *postoffices; /* of PostofficeView* */
        const PoStatusLine *total_stats; /* "stats *" of a mount; may be NULL */
        bool observing; /* the mount is in observe mode (user.mailbag.mode) */
        GPtrArray *ranges; /* the mount's range lines; NULL when not a mount or not served */
} Snapshot;

static void snapshot_clear(Snapshot *snap)
{
        g_clear_pointer(&snap->postoffices, g_ptr_array_unref);
        g_clear_pointer(&snap->owned, g_ptr_array_unref);
}

static PostofficeView *snapshot_view(Snapshot *snap, const char *path, bool create)
{
        for (guint i = 0; i < snap->postoffices->len; i++) {
                PostofficeView *view = snap->postoffices->pdata[i];
                if (strcmp(view->path, path) == 0)
                        return view;
        }
        if (!create)
                return NULL;
        PostofficeView *view = g_new0(PostofficeView, 1);
        view->path = g_strdup(path);
        view->queues = g_ptr_array_new_with_free_func(g_free);
        view->leases = g_ptr_array_new();
        view->overlaps = g_ptr_array_new();
        view->mailbags = g_ptr_array_new_with_free_func(mailbag_row_free);
        g_ptr_array_add(snap->postoffices, view);
        return view;
}

static bool strv_has(GPtrArray *names, const char *name)
{
        for (guint i = 0; i < names->len; i++)
                if (strcmp(names->pdata[i], name) == 0)
                        return true;
        return false;
}

/* Reads and parses an attribute; the lines live as long as the snapshot.
 * NULL with errno set (EBADMSG and @error when it does not parse). */
static GPtrArray *snapshot_read(Snapshot *snap, const char *path, const char *name, GError **error)
{
        GPtrArray *lines = status_attr_read_lines(path, name, error);
        if (lines)
                g_ptr_array_add(snap->owned, lines);
        return lines;
}

/* The folder of postoffice @path under the snapshot's target. */
static char *snapshot_folder(const Snapshot *snap, const char *path)
{
        if (!snap->is_mount || strcmp(path, PO_STATUS_PATH_ROOT) == 0)
                return g_strdup(snap->target);
        return g_build_filename(snap->target, path, NULL);
}

/* "records NAME ..." (now) or "NAME live=..." / "NAME corrupt: ..." (older
 * daemons): the row's records line, or its error text. */
static void mailbag_row_read(MailbagRow *row, const char *key_path)
{
        g_autoptr(GError) error = NULL;
        row->lines = status_attr_read_lines(key_path, PO_STATUS_ATTR_RECORDS, &error);
        if (row->lines == NULL) {
                row->error = error ? g_strdup(error->message)
                                   : g_strdup_printf("unreadable: %s", g_strerror(errno));
                return;
        }
        const PoStatusLine *line = row->lines->len ? row->lines->pdata[0] : NULL;
        if (line == NULL) {
                row->error = g_strdup("no records line");
                return;
        }
        bool current = g_strcmp0(po_status_line_word(line, 0), PO_STATUS_WORD_RECORDS) == 0;
        const char *state = po_status_line_word(line, current ? 2 : 1);
        if (state && g_str_has_prefix(state, PO_STATUS_STATE_CORRUPT)) {
                const char *message = po_status_line_field(line, PO_STATUS_FIELD_MESSAGE);
                g_autoptr(GString) text = g_string_new("corrupt");
                if (message)
                        g_string_append_printf(text, ": %s", message);
                for (guint i = current ? 3 : 2; !message && i < po_status_line_n_words(line); i++)
                        g_string_append_printf(text, "%s%s", i == 2 ? ": " : " ",
                                               po_status_line_word(line, i));
                row->error = g_string_free(g_steal_pointer(&text), FALSE);
                return;
        }
        row->records = line;
}

static void view_add_mailbag(const Snapshot *snap, PostofficeView *view, const char *name)
{
        /* Exclusive leases name files ("GLB/CONTROL.GLB"), not mailbags. */
        if (strchr(name, '/') || name[0] == '\0')
                return;
        for (guint i = 0; i < view->mailbags->len; i++)
                if (strcmp(((MailbagRow *)view->mailbags->pdata[i])->name, name) == 0)
                        return;
        MailbagRow *row = g_new0(MailbagRow, 1);
        row->name = g_strdup(name);
        g_autofree char *folder = snapshot_folder(snap, view->path);
        g_autofree char *key_rel = po_profile_key_path(snap->profile, name);
        g_autofree char *key = g_build_filename(folder, key_rel, NULL);
        mailbag_row_read(row, key);
        g_ptr_array_add(view->mailbags, row);
}

static void view_add_queues(PostofficeView *view, const char *list)
{
        g_auto(GStrv) names = g_strsplit(list, ",", -1);
        for (char **name = names; *name; name++)
                if (**name && !strv_has(view->queues, *name))
                        g_ptr_array_add(view->queues, g_strdup(*name));
}

/* Leases by their postoffice= (older daemons: none, the root). */
static void snapshot_add_leases(Snapshot *snap, GPtrArray *lines, const char *only)
{
        for (guint i = 0; i < lines->len; i++) {
                PoStatusLease lease;
                if (!po_status_line_as_lease(lines->pdata[i], &lease))
                        continue;
                PostofficeView *view = only ? snapshot_view(snap, only, true)
                                            : snapshot_view(snap, lease.postoffice, true);
                g_ptr_array_add(view->leases, lines->pdata[i]);
        }
}

/* "stats PATH ..." lines; a line of fields alone is an older daemon's. */
static void snapshot_add_stats(Snapshot *snap, GPtrArray *lines, const char *only)
{
        for (guint i = 0; i < lines->len; i++) {
                const PoStatusLine *line = lines->pdata[i];
                const char *word = po_status_line_word(line, 0);
                const char *path = po_status_line_word(line, 1);
                if (word == NULL && only) {
                        snapshot_view(snap, only, true)->stats = line;
                } else if (g_strcmp0(word, PO_STATUS_WORD_STATS) == 0 && path) {
                        if (strcmp(path, PO_STATUS_PATH_ALL) == 0)
                                snap->total_stats = line;
                        else if (!only || strcmp(path, only) == 0)
                                snapshot_view(snap, path, true)->stats = line;
                } else if (g_strcmp0(word, PO_STATUS_WORD_OVERLAP) == 0 && path &&
                           (!only || strcmp(path, only) == 0)) {
                        g_ptr_array_add(snapshot_view(snap, path, true)->overlaps, (gpointer)line);
                }
        }
}

static void snapshot_add_mailbags(Snapshot *snap)
{
        for (guint i = 0; i < snap->postoffices->len; i++) {
                PostofficeView *view = snap->postoffices->pdata[i];
                if (view->queues->len == 0)
                        for (const char *const *q = po_profile_queues(snap->profile); *q; q++)
                                g_ptr_array_add(view->queues, g_strdup(*q));
                for (guint q = 0; q < view->queues->len; q++)
                        view_add_mailbag(snap, view, view->queues->pdata[q]);
                for (guint l = 0; l < view->leases->len; l++)
                        view_add_mailbag(snap, view, po_status_line_word(view->leases->pdata[l], 1));
        }
}

/* The postoffice a folder's own attributes speak of: its stats line names
 * it, else its leases do; an older daemon's root names nothing ("."). */
static const char *folder_postoffice(GPtrArray *locks, GPtrArray *stats)
{
        for (guint i = 0; stats && i < stats->len; i++) {
                const PoStatusLine *line = stats->pdata[i];
                const char *path = po_status_line_word(line, 1);
                if (g_strcmp0(po_status_line_word(line, 0), PO_STATUS_WORD_STATS) == 0 && path &&
                    strcmp(path, PO_STATUS_PATH_ALL) != 0)
                        return path;
        }
        for (guint i = 0; i < locks->len; i++) {
                PoStatusLease lease;
                if (po_status_line_as_lease(locks->pdata[i], &lease))
                        return lease.postoffice;
        }
        return PO_STATUS_PATH_ROOT;
}

/* 0, or a negative errno with @error set where there is a message. */
static int snapshot_take(Snapshot *snap, GError **error)
{
        snap->owned = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
        snap->postoffices = g_ptr_array_new_with_free_func(postoffice_view_free);
        GPtrArray *postoffices = snapshot_read(snap, snap->target, PO_STATUS_ATTR_POSTOFFICES, error);
        if (postoffices == NULL && errno != ENODATA)
                return -errno;
        snap->is_mount = postoffices != NULL;
        GPtrArray *locks = snapshot_read(snap, snap->target, PO_STATUS_ATTR_LOCKS, error);
        if (locks == NULL)
                return -errno;
        GPtrArray *stats = snapshot_read(snap, snap->target, PO_STATUS_ATTR_STATS, error);
        if (stats == NULL && errno != ENODATA)
                return -errno;

        if (snap->is_mount) {
                for (guint i = 0; i < postoffices->len; i++) {
                        const PoStatusLine *line = postoffices->pdata[i];
                        const char *path = po_status_line_word(line, 1);
                        if (g_strcmp0(po_status_line_word(line, 0), PO_STATUS_WORD_POSTOFFICE) != 0 ||
                            path == NULL)
                                continue;
                        PostofficeView *view = snapshot_view(snap, path, true);
                        const char *queues = po_status_line_field(line, PO_STATUS_FIELD_QUEUES);
                        if (queues)
                                view_add_queues(view, queues);
                }
                snapshot_add_leases(snap, locks, NULL);
                if (stats)
                        snapshot_add_stats(snap, stats, NULL);
        } else {
                g_autofree char *path = g_strdup(folder_postoffice(locks, stats));
                snapshot_view(snap, path, true);
                snapshot_add_leases(snap, locks, path);
                if (stats)
                        snapshot_add_stats(snap, stats, path);
        }
        snapshot_add_mailbags(snap);
        snap->observing = status_attr_observing(snap->target);
        if (snap->is_mount) {
                /* A daemon before byte-range locks went to the backing
                 * store serves no such attribute: no table then. */
                g_autoptr(GError) ranges_error = NULL;
                snap->ranges = snapshot_read(snap, snap->target, PO_STATUS_ATTR_RANGES,
                                             &ranges_error);
                if (!snap->ranges && ranges_error) {
                        g_propagate_error(error, g_steal_pointer(&ranges_error));
                        return -EBADMSG;
                }
        }
        return 0;
}

/* Whether @line is a byte-range lock line: "range START LEN ...". */
static bool is_range_line(const PoStatusLine *line)
{
        return g_strcmp0(po_status_line_word(line, 0), PO_STATUS_WORD_RANGE) == 0 &&
               po_status_line_n_words(line) >= 3;
}

/* --- table ------------------------------------------------------------- */

/* A table cell: decoded values may hold anything, a terminal gets no
 * control characters. Returns @buf. */
static const char *cell(const char *text, GString *buf)
{
        g_string_truncate(buf, 0);
        for (const char *p = text ? text : ""; *p; p++)
                g_string_append_c(buf, g_ascii_iscntrl(*p) ? '?' : *p);
        return buf->str;
}

static const char *field_or(const PoStatusLine *line, const char *key, const char *fallback)
{
        const char *value = po_status_line_field(line, key);
        return value && *value ? value : fallback;
}

/* "waited, then granted: 3 (<=1 ms 1, <=1 s 2), 0.950 s in all": one wait
 * histogram of a stats line, its empty buckets left out. */
static void print_wait_times(const PoStatusLine *line, const char *key, const char *sum_key,
                             const char *what)
{
        g_autoptr(GArray) bounds = g_array_new(FALSE, FALSE, sizeof(guint64));
        g_autoptr(GArray) cumulative = g_array_new(FALSE, FALSE, sizeof(guint64));
        guint64 sum_ms;
        if (!po_status_line_histogram(line, key, sum_key, bounds, cumulative, &sum_ms))
                return;
        guint64 total = g_array_index(cumulative, guint64, cumulative->len - 1);
        printf("\n  %s: %" G_GUINT64_FORMAT, what, total);
        guint64 below = 0;
        bool first = true;
        for (guint i = 0; i < bounds->len; i++) {
                guint64 n = g_array_index(cumulative, guint64, i) - below;
                below = g_array_index(cumulative, guint64, i);
                if (n == 0)
                        continue;
                guint64 ms = g_array_index(bounds, guint64, i);
                g_autofree char *bound =
                        ms == G_MAXUINT64 ? g_strdup("longer")
                        : ms >= 1000      ? g_strdup_printf("<=%" G_GUINT64_FORMAT " s", ms / 1000)
                                          : g_strdup_printf("<=%" G_GUINT64_FORMAT " ms", ms);
                printf("%s%s %" G_GUINT64_FORMAT, first ? " (" : ", ", bound, n);
                first = false;
        }
        printf("%s, %.3f s in all", first ? "" : ")", (double)sum_ms / 1000.0);
}

/* "key=value ..." as the daemon wrote them, but the postoffice= the
 * heading already shows; wait histograms on lines of their own. */
static void print_fields(const PoStatusLine *line, GString *buf)
{
        bool first = true;
        for (guint i = 0; i < po_status_line_n_fields(line); i++) {
                const char *key = po_status_line_field_key(line, i);
                if (strcmp(key, PO_STATUS_FIELD_POSTOFFICE) == 0 || g_str_has_suffix(key, "_ms"))
                        continue;
                printf("%s%s=%s", first ? "" : " ", key, cell(po_status_line_field_value(line, i), buf));
                first = false;
        }
        print_wait_times(line, PO_STATUS_FIELD_WAIT_GRANTED_MS,
                         PO_STATUS_FIELD_WAIT_GRANTED_SUM_MS, "waited, then granted");
        print_wait_times(line, PO_STATUS_FIELD_WAIT_TIMEOUT_MS,
                         PO_STATUS_FIELD_WAIT_TIMEOUT_SUM_MS, "waited, then gave up");
}

/* An overlap's holder protocol: "?" is a hold of another daemon (on the
 * same share), said in words for the postmaster. */
static const char *overlap_holder(const PoStatusLine *line)
{
        const char *other = field_or(line, PO_STATUS_FIELD_OTHER, "?");
        return strcmp(other, "?") == 0 ? "other daemon" : other;
}

static void print_overlaps(const PostofficeView *view, bool observing)
{
        /* Counted since the daemon started, so a mount switched back to
         * enforcing still shows what it saw while observing. */
        if (view->overlaps->len == 0) {
                if (observing)
                        printf("\nOverlaps: none so far\n");
                return;
        }
        g_autoptr(GString) a = g_string_new(NULL), b = g_string_new(NULL), c = g_string_new(NULL),
                           d = g_string_new(NULL), e = g_string_new(NULL);
        printf("\nOverlaps (opens that enforcing would have made wait or refused)\n\n");
        printf("%-10s %-26s %-12s %-12s %s\n", "Kind", "Mailbag or file", "Opener", "Holder",
               "Count");
        for (guint i = 0; i < view->overlaps->len; i++) {
                const PoStatusLine *line = view->overlaps->pdata[i];
                printf("%-10s %-26s %-12s %-12s %s\n",
                       cell(field_or(line, PO_STATUS_FIELD_KIND, "?"), a),
                       cell(field_or(line, PO_STATUS_FIELD_NAME, "?"), b),
                       cell(field_or(line, PO_STATUS_FIELD_PROTOCOL, "?"), c),
                       cell(overlap_holder(line), d),
                       cell(field_or(line, PO_STATUS_FIELD_COUNT, "?"), e));
        }
}

static void print_view(const PostofficeView *view, bool observing)
{
        g_autoptr(GString) a = g_string_new(NULL), b = g_string_new(NULL), c = g_string_new(NULL);
        printf("Postoffice %s%s\n\n", cell(view->path, a),
               strcmp(view->path, PO_STATUS_PATH_ROOT) == 0 ? " (the mount root)" : "");
        printf("%-10s %-26s %-7s %-14s %-10s %-20s %s\n", "Kind", "Mailbag or file", "PID",
               "Program", "Protocol", "Since", "Waiting");
        bool waiters = false;
        if (view->leases->len == 0)
                printf("(no mailbag is held or awaited)\n");
        for (guint i = 0; i < view->leases->len; i++) {
                const PoStatusLine *line = view->leases->pdata[i];
                PoStatusLease lease;
                po_status_line_as_lease(line, &lease);
                const char *unknown = po_status_line_field(line, PO_STATUS_FIELD_HOLDER);
                printf("%-10s %-26s %-7s %-14s %-10s %-20s %s\n", cell(lease.kind, a),
                       cell(lease.name, b),
                       !lease.held ? "-" : g_strcmp0(unknown, PO_STATUS_HOLDER_UNKNOWN) == 0
                                                   ? "unknown" : field_or(line, PO_STATUS_FIELD_PID, "?"),
                       cell(field_or(line, PO_STATUS_FIELD_PROGRAM, ""), c),
                       field_or(line, PO_STATUS_FIELD_PROTOCOL, ""),
                       field_or(line, PO_STATUS_FIELD_SINCE, ""),
                       field_or(line, PO_STATUS_FIELD_WAITING, "-"));
                waiters |= *field_or(line, PO_STATUS_FIELD_WAITING, "") != '\0';
        }
        /* Observing, a newcomer is let in at once and only its lease
         * queues: the column would read as if it were kept out. */
        if (observing && waiters)
                printf("(observe mode: those listed as waiting were let in at once; their "
                       "leases follow in turn)\n");
        printf("\n%-26s %s\n", "Mailbag", "Records (of the 4096 limit)");
        for (guint i = 0; i < view->mailbags->len; i++) {
                const MailbagRow *row = view->mailbags->pdata[i];
                printf("%-26s ", cell(row->name, a));
                if (row->records)
                        print_fields(row->records, a);
                else
                        printf("%s", cell(row->error, a));
                printf("\n");
        }
        printf("\nCounters: ");
        if (view->stats)
                print_fields(view->stats, a);
        else
                printf("(none)");
        printf("\n");
        print_overlaps(view, observing);
}

static void print_ranges(const Snapshot *snap)
{
        g_autoptr(GString) a = g_string_new(NULL), b = g_string_new(NULL);
        printf("\nByte-range locks\n\n");
        printf("%-7s %-14s %-5s %-5s %-7s %-12s %-12s %-6s %s\n", "PID", "Program", "Type",
               "Kind", "State", "Start", "Length", "Owner", "File");
        guint shown = 0;
        for (guint i = 0; i < snap->ranges->len; i++) {
                const PoStatusLine *line = snap->ranges->pdata[i];
                if (!is_range_line(line))
                        continue;
                bool flock = g_strcmp0(po_status_line_field(line, PO_STATUS_FIELD_KIND),
                                       PO_STATUS_RANGE_FLOCK) == 0;
                const char *len = po_status_line_word(line, 2);
                printf("%-7s %-14s %-5s %-5s %-7s %-12s %-12s %-6s %s\n",
                       field_or(line, PO_STATUS_FIELD_PID, "?"),
                       cell(field_or(line, PO_STATUS_FIELD_PROGRAM, "?"), a),
                       field_or(line, PO_STATUS_FIELD_TYPE, "?"),
                       field_or(line, PO_STATUS_FIELD_KIND, "?"),
                       field_or(line, PO_STATUS_FIELD_STATE, "?"),
                       flock ? "whole file" : po_status_line_word(line, 1),
                       flock ? "-" : strcmp(len, "0") == 0 ? "to EOF" : len,
                       field_or(line, PO_STATUS_FIELD_OWNER, "?"),
                       cell(field_or(line, PO_STATUS_FIELD_PATH, "?"), b));
                shown++;
        }
        if (shown == 0)
                printf("(no byte-range lock is held or awaited through this mount)\n");
}

static void print_table(const Snapshot *snap)
{
        g_autoptr(GString) buf = g_string_new(NULL);
        printf("mailbagfs at %s%s\n", cell(snap->target, buf),
               snap->observing ? " - observe mode: nothing is enforced, overlaps are counted" : "");
        if (snap->postoffices->len == 0)
                printf("\n(the mount protects no postoffice)\n");
        for (guint i = 0; i < snap->postoffices->len; i++) {
                printf("\n");
                print_view(snap->postoffices->pdata[i], snap->observing);
        }
        if (snap->is_mount && snap->total_stats) {
                printf("\nCounters, all postoffices: ");
                print_fields(snap->total_stats, buf);
                printf("\n");
        }
        if (snap->ranges)
                print_ranges(snap);
}

/* --- JSON -------------------------------------------------------------- */

/* The fields as members (numbers stay numbers), but @skip. */
static void add_json_fields(JsonBuilder *b, const PoStatusLine *line, const char *skip)
{
        for (guint i = 0; i < po_status_line_n_fields(line); i++) {
                const char *key = po_status_line_field_key(line, i);
                if (skip && strcmp(key, skip) == 0)
                        continue;
                json_builder_set_member_name(b, key);
                tool_json_add_value(b, po_status_line_field_value(line, i));
        }
}

static void add_json_lease(JsonBuilder *b, const PoStatusLine *line)
{
        PoStatusLease lease;
        po_status_line_as_lease(line, &lease);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "kind");
        tool_json_add_string(b, lease.kind);
        json_builder_set_member_name(b, "name");
        tool_json_add_string(b, lease.name);
        json_builder_set_member_name(b, "held");
        json_builder_add_boolean_value(b, lease.held);
        json_builder_set_member_name(b, "postoffice");
        tool_json_add_string(b, lease.postoffice);
        json_builder_set_member_name(b, "waiting");
        json_builder_begin_array(b);
        g_auto(GStrv) waiting = g_strsplit(field_or(line, PO_STATUS_FIELD_WAITING, ""), ",", -1);
        for (char **pid = waiting; *pid; pid++)
                if (**pid)
                        tool_json_add_value(b, *pid);
        json_builder_end_array(b);
        for (guint i = 0; i < po_status_line_n_fields(line); i++) {
                const char *key = po_status_line_field_key(line, i);
                if (strcmp(key, PO_STATUS_FIELD_WAITING) == 0 ||
                    strcmp(key, PO_STATUS_FIELD_POSTOFFICE) == 0)
                        continue;
                json_builder_set_member_name(b, key);
                tool_json_add_value(b, po_status_line_field_value(line, i));
        }
        json_builder_end_object(b);
}

static void add_json_view(JsonBuilder *b, const PostofficeView *view)
{
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "postoffice");
        tool_json_add_string(b, view->path);
        json_builder_set_member_name(b, "queues");
        json_builder_begin_array(b);
        for (guint i = 0; i < view->queues->len; i++)
                tool_json_add_string(b, view->queues->pdata[i]);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "leases");
        json_builder_begin_array(b);
        for (guint i = 0; i < view->leases->len; i++)
                add_json_lease(b, view->leases->pdata[i]);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "mailbags");
        json_builder_begin_array(b);
        for (guint i = 0; i < view->mailbags->len; i++) {
                const MailbagRow *row = view->mailbags->pdata[i];
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "name");
                tool_json_add_string(b, row->name);
                if (row->records) {
                        add_json_fields(b, row->records, PO_STATUS_FIELD_POSTOFFICE);
                } else {
                        json_builder_set_member_name(b, "error");
                        tool_json_add_string(b, row->error);
                }
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "stats");
        json_builder_begin_object(b);
        if (view->stats)
                add_json_fields(b, view->stats, NULL);
        json_builder_end_object(b);
        json_builder_set_member_name(b, "overlaps");
        json_builder_begin_array(b);
        for (guint i = 0; i < view->overlaps->len; i++) {
                json_builder_begin_object(b);
                add_json_fields(b, view->overlaps->pdata[i], NULL);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
}

static void print_json(const Snapshot *snap)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "path");
        tool_json_add_string(b, snap->target);
        json_builder_set_member_name(b, "mount");
        json_builder_add_boolean_value(b, snap->is_mount);
        json_builder_set_member_name(b, "postoffices");
        json_builder_begin_array(b);
        for (guint i = 0; i < snap->postoffices->len; i++)
                add_json_view(b, snap->postoffices->pdata[i]);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "stats");
        json_builder_begin_object(b);
        /* The sums of a mount, or the one postoffice's own counters. */
        const PoStatusLine *total = snap->total_stats;
        if (!snap->is_mount && snap->postoffices->len == 1)
                total = ((PostofficeView *)snap->postoffices->pdata[0])->stats;
        if (total)
                add_json_fields(b, total, NULL);
        json_builder_end_object(b);
        json_builder_set_member_name(b, "mode");
        json_builder_add_string_value(b, snap->observing ? PO_STATUS_MODE_OBSERVE
                                                         : PO_STATUS_MODE_ENFORCE);
        if (snap->ranges) {
                json_builder_set_member_name(b, "ranges");
                json_builder_begin_array(b);
                for (guint i = 0; i < snap->ranges->len; i++) {
                        const PoStatusLine *line = snap->ranges->pdata[i];
                        if (!is_range_line(line))
                                continue;
                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "start");
                        tool_json_add_value(b, po_status_line_word(line, 1));
                        json_builder_set_member_name(b, "len");
                        tool_json_add_value(b, po_status_line_word(line, 2));
                        add_json_fields(b, line, NULL);
                        json_builder_end_object(b);
                }
                json_builder_end_array(b);
        }
        json_builder_end_object(b);
        tool_json_print(b);
}

/* --- Prometheus --------------------------------------------------------- */

/* The daemon's counters as mailbagfs_FIELD_total, so a counter the daemon
 * adds later is exported too; known ones get their own help text. */
static const char *const prom_counter_help[][2] = {
        {PO_STATUS_FIELD_ACQUISITIONS, "Leases granted"},
        {PO_STATUS_FIELD_WAITS, "Requests that waited in line for a lease"},
        {PO_STATUS_FIELD_REFUSED, "Requests answered busy at once (they may not wait: smbd, Wine, "
                                  "lock_timeout=0) or banned after a break"},
        {PO_STATUS_FIELD_WAITED_GRANTED, "Requests granted after waiting in line"},
        {PO_STATUS_FIELD_TIMEOUTS, "Waits that ended in a sharing violation after lock_timeout"},
        {PO_STATUS_FIELD_DEADLOCKS, "Waits refused because they would close a waits-for cycle"},
        {PO_STATUS_FIELD_STALE_RECLAIMED, "Holds of dead processes and stale lock files reclaimed"},
        {PO_STATUS_FIELD_BREAKS, "Holds ended by root through user.mailbag.break"},
        {PO_STATUS_FIELD_CANCELLATIONS, "Waits ended because the client was interrupted or died"},
        {PO_STATUS_FIELD_MIXED_PROTOCOL, "Lock protocols used against the v20= setting"},
};

/* A wait-time histogram of the stats line (PO_STATUS_FIELD_WAIT_*_MS) as
 * mailbagfs_lease_wait_seconds{outcome=...}. */
static void prom_add_wait_histogram(PromText *prom, const PostofficeView *view, const char *key,
                                    const char *sum_key, const char *outcome)
{
        g_autoptr(GArray) bounds = g_array_new(FALSE, FALSE, sizeof(guint64));
        g_autoptr(GArray) cumulative = g_array_new(FALSE, FALSE, sizeof(guint64));
        guint64 sum_ms;
        if (!po_status_line_histogram(view->stats, key, sum_key, bounds, cumulative, &sum_ms))
                return;
        g_autoptr(GArray) seconds = g_array_new(FALSE, FALSE, sizeof(double));
        for (guint i = 0; i < bounds->len; i++) {
                guint64 ms = g_array_index(bounds, guint64, i);
                double s = ms == G_MAXUINT64 ? INFINITY : (double)ms / 1000.0;
                g_array_append_val(seconds, s);
        }
        const char *labels[] = {"postoffice", view->path, "outcome", outcome, NULL};
        prom_text_add_histogram(prom, "mailbagfs_lease_wait_seconds", labels,
                                (const double *)seconds->data, (const guint64 *)cumulative->data,
                                cumulative->len, (double)sum_ms / 1000.0);
}

static void prom_add_counters(PromText *prom, const PostofficeView *view)
{
        if (view->stats) {
                prom_add_wait_histogram(prom, view, PO_STATUS_FIELD_WAIT_GRANTED_MS,
                                        PO_STATUS_FIELD_WAIT_GRANTED_SUM_MS, "granted");
                prom_add_wait_histogram(prom, view, PO_STATUS_FIELD_WAIT_TIMEOUT_MS,
                                        PO_STATUS_FIELD_WAIT_TIMEOUT_SUM_MS, "timeout");
        }
        for (guint i = 0; view->stats && i < po_status_line_n_fields(view->stats); i++) {
                const char *key = po_status_line_field_key(view->stats, i);
                guint64 value;
                /* Wait times are the histogram's, not counters; overlaps
                 * are counted per mailbag and protocols (prom_add_overlaps). */
                if (g_str_has_suffix(key, "_ms") || strcmp(key, PO_STATUS_FIELD_OVERLAPS) == 0 ||
                    !po_status_line_field_uint64(view->stats, key, &value))
                        continue;
                const char *help = "A counter of the mailbagfs daemon";
                for (gsize k = 0; k < G_N_ELEMENTS(prom_counter_help); k++)
                        if (strcmp(prom_counter_help[k][0], key) == 0)
                                help = prom_counter_help[k][1];
                g_autofree char *name = g_strdup_printf("mailbagfs_%s_total", key);
                prom_text_declare(prom, name, PROM_COUNTER, help);
                const char *labels[] = {"postoffice", view->path, NULL};
                prom_text_add(prom, name, labels, (double)value);
        }
}

/* Observe mode's overlaps: one series per mailbag (or file) and pair of
 * protocols, the opener's and the holder's. */
static void prom_add_overlaps(PromText *prom, const PostofficeView *view)
{
        for (guint i = 0; i < view->overlaps->len; i++) {
                const PoStatusLine *line = view->overlaps->pdata[i];
                guint64 count;
                if (!po_status_line_field_uint64(line, PO_STATUS_FIELD_COUNT, &count))
                        continue;
                const char *labels[] = {"postoffice", view->path,
                                        "mailbag", field_or(line, PO_STATUS_FIELD_NAME, "?"),
                                        "kind", field_or(line, PO_STATUS_FIELD_KIND, "?"),
                                        "protocol", field_or(line, PO_STATUS_FIELD_PROTOCOL, "?"),
                                        "other_protocol", field_or(line, PO_STATUS_FIELD_OTHER, "?"),
                                        NULL};
                prom_text_add(prom, "mailbagfs_overlaps_total", labels, (double)count);
        }
}

static void prom_add_lease(PromText *prom, const char *postoffice, const char *kind,
                           const char *name, const PoStatusLine *line)
{
        const char *labels[] = {"postoffice", postoffice, "mailbag", name, "kind", kind, NULL};
        PoStatusLease lease = {.held = false};
        if (line)
                po_status_line_as_lease(line, &lease);
        guint64 waiters = 0;
        if (line && !po_status_line_field_uint64(line, PO_STATUS_FIELD_WAITERS, &waiters)) {
                g_auto(GStrv) pids = g_strsplit(field_or(line, PO_STATUS_FIELD_WAITING, ""), ",", -1);
                for (char **pid = pids; *pid; pid++)
                        waiters += **pid != '\0';
        }
        prom_text_add(prom, "mailbagfs_lease_held", labels, lease.held);
        prom_text_add(prom, "mailbagfs_lease_waiters", labels, (double)waiters);
        const char *since = line ? po_status_line_field(line, PO_STATUS_FIELD_SINCE) : NULL;
        g_autoptr(GDateTime) when = since ? g_date_time_new_from_iso8601(since, NULL) : NULL;
        if (lease.held && when)
                prom_text_add(prom, "mailbagfs_lease_held_since_seconds", labels,
                              (double)g_date_time_to_unix(when));
        /* Who holds it, as an info series: a freeze shows as po-freeze. */
        const char *program = line ? po_status_line_field(line, "program") : NULL;
        const char *protocol = line ? po_status_line_field(line, "protocol") : NULL;
        if (lease.held && program) {
                const char *holder[] = {"postoffice", postoffice, "mailbag", name, "kind", kind,
                                        "program", program, "protocol", protocol ? protocol : "?",
                                        NULL};
                prom_text_add(prom, "mailbagfs_lease_holder_info", holder, 1);
        }
}

/* Every lease the daemon lists, and the session and key-write leases of
 * each queue also when free, so a series does not vanish between holds. */
static void prom_add_leases(PromText *prom, const PostofficeView *view)
{
        for (guint i = 0; i < view->leases->len; i++) {
                PoStatusLease lease;
                po_status_line_as_lease(view->leases->pdata[i], &lease);
                prom_add_lease(prom, view->path, lease.kind, lease.name, view->leases->pdata[i]);
        }
        const char *kinds[] = {PO_STATUS_KIND_SESSION, PO_STATUS_KIND_KEY_WRITE};
        for (guint q = 0; q < view->queues->len; q++) {
                for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
                        const char *labels[] = {"postoffice", view->path, "mailbag",
                                                view->queues->pdata[q], "kind", kinds[k], NULL};
                        if (!prom_text_has(prom, "mailbagfs_lease_held", labels))
                                prom_add_lease(prom, view->path, kinds[k], view->queues->pdata[q],
                                               NULL);
                }
        }
}

static void prom_add_mailbags(PromText *prom, const PostofficeView *view)
{
        for (guint i = 0; i < view->mailbags->len; i++) {
                const MailbagRow *row = view->mailbags->pdata[i];
                const char *labels[] = {"postoffice", view->path, "mailbag", row->name, NULL};
                guint64 live, total, free_slots, limit;
                bool corrupt = row->error && g_str_has_prefix(row->error, PO_STATUS_STATE_CORRUPT);
                if (row->error && !corrupt)
                        continue; /* no KEY file to read: nothing to say */
                prom_text_add(prom, "mailbagfs_mailbag_corrupt", labels, corrupt);
                if (!row->records)
                        continue;
                if (po_status_line_field_uint64(row->records, PO_STATUS_FIELD_LIVE, &live))
                        prom_text_add(prom, "mailbagfs_mailbag_records", labels, (double)live);
                if (po_status_line_field_uint64(row->records, PO_STATUS_FIELD_TOTAL, &total))
                        prom_text_add(prom, "mailbagfs_mailbag_slots", labels, (double)total);
                if (po_status_line_field_uint64(row->records, PO_STATUS_FIELD_FREE, &free_slots))
                        prom_text_add(prom, "mailbagfs_mailbag_free_slots", labels,
                                      (double)free_slots);
                if (po_status_line_field_uint64(row->records, PO_STATUS_FIELD_LIMIT, &limit))
                        prom_text_add(prom, "mailbagfs_mailbag_records_limit", labels,
                                      (double)limit);
        }
}

/* For node_exporter's textfile collector: counters per postoffice (their
 * sums are Prometheus's to make), leases, and mailbag records. */
static void print_prometheus(const Snapshot *snap)
{
        g_autoptr(PromText) prom = prom_text_new();
        /* Declared first so the file reads in this order. */
        prom_text_declare(prom, "mailbagfs_lease_held", PROM_GAUGE,
                          "1 while a process holds the lease, else 0");
        prom_text_declare(prom, "mailbagfs_lease_waiters", PROM_GAUGE,
                          "Processes waiting in line for the lease");
        prom_text_declare(prom, "mailbagfs_lease_held_since_seconds", PROM_GAUGE,
                          "When the current hold began, as a Unix time");
        prom_text_declare(prom, "mailbagfs_lease_wait_seconds", PROM_HISTOGRAM,
                          "How long requests waited in line for a lease, by how the wait "
                          "ended (granted, timeout)");
        prom_text_declare(prom, "mailbagfs_lease_holder_info", PROM_GAUGE,
                          "1 for the program holding the lease (po-freeze for a backup)");
        prom_text_declare(prom, "mailbagfs_mailbag_records", PROM_GAUGE,
                          "Records in use in the mailbag (deliveries fail at the limit)");
        prom_text_declare(prom, "mailbagfs_mailbag_records_limit", PROM_GAUGE,
                          "The most records a mailbag can hold");
        prom_text_declare(prom, "mailbagfs_mailbag_slots", PROM_GAUGE,
                          "Record slots in the mailbag's .MBG file, used or free");
        prom_text_declare(prom, "mailbagfs_mailbag_free_slots", PROM_GAUGE,
                          "Freed record slots a delivery reuses");
        prom_text_declare(prom, "mailbagfs_overlaps_total", PROM_COUNTER,
                          "Observe mode: opens that enforcing would have made wait or refused, "
                          "by mailbag and the opener's and holder's protocols");
        prom_text_declare(prom, "mailbagfs_observe_mode", PROM_GAUGE,
                          "1 while the daemon only observes (-o mode=observe), 0 enforcing");
        prom_text_declare(prom, "mailbagfs_mailbag_corrupt", PROM_GAUGE,
                          "1 when the mailbag's KEY file does not parse, else 0");
        for (guint i = 0; i < snap->postoffices->len; i++) {
                const PostofficeView *view = snap->postoffices->pdata[i];
                prom_add_leases(prom, view);
                prom_add_mailbags(prom, view);
                prom_add_counters(prom, view);
                prom_add_overlaps(prom, view);
        }
        const char *no_labels[] = {NULL};
        prom_text_add(prom, "mailbagfs_observe_mode", no_labels, snap->observing ? 1 : 0);
        g_autofree char *text = prom_text_render(prom);
        fputs(text, stdout);
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signum)
{
        (void)signum;
        stop_requested = 1;
}

int main(int argc, char *argv[])
{
        gboolean json = FALSE, prometheus = FALSE;
        double watch = -1;
        g_autofree char *profile_path = NULL;
        GOptionEntry entries[] = {
                {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object", NULL},
                {"prometheus", 0, 0, G_OPTION_ARG_NONE, &prometheus,
                 "Print the metrics in the Prometheus text format", NULL},
                {"watch", 0, 0, G_OPTION_ARG_DOUBLE, &watch, "Refresh every SECONDS", "SECONDS"},
                {"profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_path,
                 "The postoffice profile the mount uses", "PATH"},
                G_OPTION_ENTRY_NULL,
        };
        g_autoptr(GOptionContext) context = g_option_context_new("PATH");
        g_option_context_set_summary(context,
                                     "Shows mailbag sessions, holders, waiters and counters of a "
                                     "mailbagfs mount (PATH its root: every postoffice) or of one "
                                     "postoffice it protects (PATH its folder).");
        g_option_context_add_main_entries(context, entries, NULL);
        g_autoptr(GError) error = NULL;
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                fprintf(stderr, "mailbag-stat: %s\n", error->message);
                return 2;
        }
        if (argc != 2) {
                fprintf(stderr, "mailbag-stat: give one PATH (see --help)\n");
                return 2;
        }
        if (prometheus && (json || watch > 0)) {
                fprintf(stderr, "mailbag-stat: --prometheus prints once, alone: not with --json "
                                "or --watch\n");
                return 2;
        }
        g_autoptr(PoProfile) profile = profile_path ? po_profile_load(profile_path, &error)
                                                    : po_profile_new_default();
        if (!profile) {
                fprintf(stderr, "mailbag-stat: %s\n", error->message);
                return 2;
        }

        signal(SIGINT, on_stop_signal);
        signal(SIGTERM, on_stop_signal);
        bool clear_screen = watch > 0 && !json && isatty(STDOUT_FILENO);
        do {
                Snapshot snap = {.target = argv[1], .profile = profile};
                g_autoptr(GError) read_error = NULL;
                int r = snapshot_take(&snap, &read_error);
                if (r < 0) {
                        if (read_error)
                                fprintf(stderr, "mailbag-stat: %s\n", read_error->message);
                        else if (r == -ENODATA || r == -ENOTSUP)
                                fprintf(stderr, "mailbag-stat: %s: not a mailbagfs mount or "
                                                "protected postoffice folder (it has neither %s nor "
                                                "%s)\n",
                                        argv[1], PO_STATUS_ATTR_POSTOFFICES, PO_STATUS_ATTR_LOCKS);
                        else
                                fprintf(stderr, "mailbag-stat: %s: %s\n", argv[1], g_strerror(-r));
                        snapshot_clear(&snap);
                        return 2;
                }
                if (clear_screen)
                        printf("\033[H\033[2J");
                if (prometheus)
                        print_prometheus(&snap);
                else if (json)
                        print_json(&snap);
                else
                        print_table(&snap);
                fflush(stdout);
                snapshot_clear(&snap);
                if (watch > 0 && !stop_requested)
                        g_usleep((gulong)(watch * G_USEC_PER_SEC));
        } while (watch > 0 && !stop_requested);
        return 0;
}
