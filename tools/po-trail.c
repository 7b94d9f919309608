/* po-trail.c - who created, read and removed a postoffice's files: the
 * trail mailbagfs keeps on the share (fs/locking/trail.h), every node's
 * stream merged in time order.
 *
 *   po-trail PO MESSAGE            one message's life: its P1 and .MAI files
 *   po-trail PO --file KEY/INQUEUE3.KEY [--since 10m] [--follow]
 *   po-trail PO --duplicates       messages two consumers opened
 *   ... [--json]
 *
 * PO is the postoffice folder through the mount (the trail is read from
 * the backing directory the mount names as its source) or on the share
 * itself. Reading the trail needs the right to read the share's files
 * (root, as a rule). Exit status 0, 1 when the trail cannot be read, 2 on
 * bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mountinfo.h"
#include "status-line.h"
#include "tool-json.h"

#define TRAIL_FSTYPE "fuse.mailbagfs"
#define FOLLOW_POLL_MS 500

typedef struct {
        gint64 unix_us;
        PoStatusLine *line; /* borrowed from the parsed files */
} TrailEntry;

static const char *field(const TrailEntry *e, const char *key)
{
        const char *value = po_status_line_field(e->line, key);
        return value ? value : "";
}

/* --- finding the trail ------------------------------------------------- */

/* The trail folder of postoffice @po: on the share itself, or through the
 * mailbagfs mount @po is in, in the backing directory it serves. */
static char *trail_dir_of(const char *po, GError **error)
{
        g_autofree char *direct = g_build_filename(po, PO_STATUS_TRAIL_DIR, NULL);
        struct stat st;
        if (stat(direct, &st) == 0 && S_ISDIR(st.st_mode))
                return g_steal_pointer(&direct);

        g_autofree char *real = realpath(po, NULL);
        if (!real) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", po,
                            g_strerror(errno));
                return NULL;
        }
        g_autofree char *text = NULL;
        if (!g_file_get_contents("/proc/self/mountinfo", &text, NULL, error))
                return NULL;
        g_autoptr(GPtrArray) mounts = po_mounts_parse(text, error);
        if (!mounts)
                return NULL;
        const PoMount *top = po_mounts_of_path(mounts, real);
        if (!top || !g_str_equal(top->fstype, TRAIL_FSTYPE) || !g_path_is_absolute(top->source)) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                            "%s: no trail: neither a postoffice on a share with a trail nor one "
                            "served by mailbagfs",
                            po);
                return NULL;
        }
        const char *rest = g_str_equal(top->mount_point, "/") ? real
                                                              : real + strlen(top->mount_point);
        g_autofree char *dir = g_build_filename(top->source, rest, PO_STATUS_TRAIL_DIR, NULL);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno ? errno : ENOTDIR),
                            "%s: no trail at %s: %s (is it a postoffice the daemon protects, "
                            "with its trail on?)",
                            po, dir, g_strerror(errno ? errno : ENOTDIR));
                return NULL;
        }
        return g_steal_pointer(&dir);
}

/* --- reading it -------------------------------------------------------- */

static gint entry_order(gconstpointer a, gconstpointer b)
{
        const TrailEntry *x = a, *y = b;
        return x->unix_us < y->unix_us ? -1 : x->unix_us > y->unix_us;
}

/* Every stream of @dir parsed into @lines (owning them) and its events
 * into @entries, in time order. */
static bool trail_read(const char *dir, GPtrArray *lines, GArray *entries, GError **error)
{
        g_autoptr(GDir) folder = g_dir_open(dir, 0, error);
        if (!folder)
                return false;
        for (const char *name; (name = g_dir_read_name(folder));) {
                if (!g_str_has_suffix(name, ".log") && !g_str_has_suffix(name, ".log.1"))
                        continue;
                g_autofree char *path = g_build_filename(dir, name, NULL);
                g_autofree char *text = NULL;
                gsize len = 0;
                g_autoptr(GError) read_error = NULL;
                if (!g_file_get_contents(path, &text, &len, &read_error)) {
                        /* Rotated away between the listing and the read. */
                        if (g_error_matches(read_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                                continue;
                        g_propagate_error(error, g_steal_pointer(&read_error));
                        return false;
                }
                /* A line cut by a crash or a full disk is skipped, not fatal. */
                g_auto(GStrv) raw = g_strsplit(text, "\n", -1);
                for (char **one = raw; *one; one++) {
                        if (!**one)
                                continue;
                        g_autoptr(GPtrArray) parsed = po_status_parse(*one, strlen(*one), path,
                                                                      NULL);
                        if (!parsed || parsed->len != 1)
                                continue;
                        PoStatusLine *line = g_ptr_array_steal_index(parsed, 0);
                        const char *word = po_status_line_word(line, 0);
                        const char *when = po_status_line_word(line, 1);
                        guint64 us = 0;
                        if (!word || !g_str_equal(word, PO_STATUS_WORD_EVENT) || !when ||
                            !g_ascii_string_to_unsigned(when, 10, 0, G_MAXINT64, &us, NULL)) {
                                po_status_line_free(line);
                                continue;
                        }
                        g_ptr_array_add(lines, line);
                        TrailEntry entry = { .unix_us = (gint64)us, .line = line };
                        g_array_append_val(entries, entry);
                }
        }
        g_array_sort(entries, entry_order);
        return true;
}

/* --- choosing ---------------------------------------------------------- */

typedef struct {
        const char *message; /* 8 hex digits, or NULL */
        const char *file;    /* a path inside the postoffice, or NULL */
        gint64 since_us;     /* 0: all */
} TrailFilter;

/* The message number a message file's name holds ("0000002A" of
 * "MAI/MA2/0000002A.MAI" and of "P1/0000002A.P1"), or NULL. */
static char *message_of(const char *file)
{
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;
        const char *dot = strchr(base, '.');
        if (!dot || dot - base != 8)
                return NULL;
        g_autofree char *ext = g_ascii_strup(dot + 1, -1);
        if (!g_str_equal(ext, "P1") && !g_str_equal(ext, "MAI"))
                return NULL;
        for (const char *c = base; c < dot; c++)
                if (!g_ascii_isxdigit(*c))
                        return NULL;
        return g_ascii_strup(base, 8);
}

static bool same_path(const char *a, const char *b)
{
        g_autofree char *x = g_strdelimit(g_strdup(a), "\\", '/');
        g_autofree char *y = g_strdelimit(g_strdup(b), "\\", '/');
        return g_ascii_strcasecmp(x, y) == 0;
}

static bool entry_chosen(const TrailEntry *e, const TrailFilter *f)
{
        if (e->unix_us < f->since_us)
                return false;
        const char *file = field(e, "file");
        const char *to = po_status_line_field(e->line, "to");
        if (f->file && !same_path(file, f->file) && !(to && same_path(to, f->file)))
                return false;
        if (f->message) {
                g_autofree char *m = message_of(file);
                g_autofree char *m_to = to ? message_of(to) : NULL;
                if (!(m && g_ascii_strcasecmp(m, f->message) == 0) &&
                    !(m_to && g_ascii_strcasecmp(m_to, f->message) == 0))
                        return false;
        }
        return true;
}

/* --- printing ---------------------------------------------------------- */

static char *time_text(gint64 unix_us)
{
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(unix_us / G_USEC_PER_SEC);
        if (!t)
                return g_strdup("?");
        g_autofree char *base = g_date_time_format(t, "%Y-%m-%dT%H:%M:%S");
        return g_strdup_printf("%s.%03dZ", base, (int)((unix_us % G_USEC_PER_SEC) / 1000));
}

static void print_entry_text(const TrailEntry *e)
{
        g_autofree char *when = time_text(e->unix_us);
        const char *to = po_status_line_field(e->line, "to");
        const char *access = po_status_line_field(e->line, "access");
        const char *protocol = po_status_line_field(e->line, "protocol");
        const char *waited = po_status_line_field(e->line, "waited_ms");
        const char *client = po_status_line_field(e->line, "client");
        g_autofree char *program = po_status_escape_controls(field(e, "program"));
        printf("%s  %-6s %s%s%s%s%s  pid %s %s uid %s  %s%s%s%s%s%s  %s%s%s  node %s\n", when,
               field(e, "op"), field(e, "file"), to ? " -> " : "", to ? to : "", access ? " " : "",
               access ? access : "", field(e, "pid"), program, field(e, "uid"),
               protocol ? protocol : "", protocol ? " " : "", field(e, "outcome"),
               waited ? " after " : "", waited ? waited : "", waited ? " ms" : "",
               field(e, "result"), client ? "  client " : "", client ? client : "",
               field(e, "node"));
}

static void json_add_entry(JsonBuilder *b, const TrailEntry *e)
{
        json_builder_begin_object(b);
        g_autofree char *when = time_text(e->unix_us);
        json_builder_set_member_name(b, "time");
        json_builder_add_string_value(b, when);
        json_builder_set_member_name(b, "unix_us");
        json_builder_add_int_value(b, e->unix_us);
        static const char *const keys[] = { "op",      "file",   "to",       "access",  "pid",
                                            "program", "uid",    "protocol", "outcome", "waited_ms",
                                            "result",  "client", "node" };
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                const char *value = po_status_line_field(e->line, keys[i]);
                json_builder_set_member_name(b, keys[i]);
                if (!value)
                        json_builder_add_null_value(b);
                else if (g_str_equal(keys[i], "program") || g_str_equal(keys[i], "file") ||
                         g_str_equal(keys[i], "to") || g_str_equal(keys[i], "client"))
                        tool_json_add_string(b, value);
                else
                        tool_json_add_value(b, value);
        }
        json_builder_end_object(b);
}

/* One message's life, after its events: who queued it (created its
 * files), who opened them, who removed them. */
static void print_message_summary(const GArray *chosen)
{
        static const struct {
                const char *label;
                const char *op;
                bool reads;
        } roles[] = {
                { "queued by", "create", false },
                { "read by", "open", true },
                { "removed by", "unlink", false },
        };
        for (gsize r = 0; r < G_N_ELEMENTS(roles); r++) {
                g_autoptr(GString) who = g_string_new(NULL);
                g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                                   NULL);
                for (guint i = 0; i < chosen->len; i++) {
                        const TrailEntry *e = &g_array_index(chosen, TrailEntry, i);
                        const char *access = po_status_line_field(e->line, "access");
                        if (!g_str_equal(field(e, "op"), roles[r].op) ||
                            !g_str_equal(field(e, "result"), "ok") ||
                            (roles[r].reads && access && g_str_equal(access, "w")))
                                continue;
                        char *key = g_strdup_printf("%s %s on %s", field(e, "pid"),
                                                    field(e, "program"), field(e, "node"));
                        if (g_hash_table_contains(seen, key)) {
                                g_free(key);
                                continue;
                        }
                        g_string_append_printf(who, "%s%s", who->len ? ", " : "", key);
                        g_hash_table_add(seen, key);
                }
                printf("%-11s %s\n", roles[r].label, who->len ? who->str : "-");
        }
}

/* --- duplicates -------------------------------------------------------- */

typedef struct {
        char *message;
        GPtrArray *consumers; /* const TrailEntry*: each one's first read */
        GHashTable *creators; /* "pid node" */
} MessageReads;

static void message_reads_free(gpointer data)
{
        MessageReads *m = data;
        g_free(m->message);
        g_ptr_array_unref(m->consumers);
        g_hash_table_unref(m->creators);
        g_free(m);
}

static char *process_key(const TrailEntry *e)
{
        return g_strdup_printf("%s %s", field(e, "pid"), field(e, "node"));
}

/* Messages whose files were opened for reading by two processes besides
 * the one that made them: each consumer that read it (a duplicate, or the
 * [021] of the one that came second). */
static GPtrArray *find_duplicates(const GArray *entries, const TrailFilter *filter)
{
        g_autoptr(GHashTable) by_message = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                                 message_reads_free);
        GPtrArray *order = g_ptr_array_new();
        for (guint i = 0; i < entries->len; i++) {
                const TrailEntry *e = &g_array_index(entries, TrailEntry, i);
                if (!entry_chosen(e, filter) || !g_str_equal(field(e, "result"), "ok"))
                        continue;
                g_autofree char *number = message_of(field(e, "file"));
                if (!number)
                        continue;
                MessageReads *m = g_hash_table_lookup(by_message, number);
                if (!m) {
                        m = g_new0(MessageReads, 1);
                        m->message = g_strdup(number);
                        m->consumers = g_ptr_array_new();
                        m->creators = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                        g_hash_table_insert(by_message, m->message, m);
                        g_ptr_array_add(order, m);
                }
                g_autofree char *who = process_key(e);
                const char *op = field(e, "op");
                const char *access = po_status_line_field(e->line, "access");
                if (g_str_equal(op, "create")) {
                        g_hash_table_add(m->creators, g_steal_pointer(&who));
                        continue;
                }
                if (!g_str_equal(op, "open") || (access && g_str_equal(access, "w")) ||
                    g_hash_table_contains(m->creators, who))
                        continue;
                bool known = false;
                for (guint c = 0; c < m->consumers->len && !known; c++) {
                        g_autofree char *other = process_key(m->consumers->pdata[c]);
                        known = g_str_equal(other, who);
                }
                if (!known)
                        g_ptr_array_add(m->consumers, (gpointer)e);
        }
        GPtrArray *found = g_ptr_array_new_with_free_func(message_reads_free);
        for (guint i = 0; i < order->len; i++) {
                MessageReads *m = order->pdata[i];
                if (m->consumers->len < 2)
                        continue;
                g_hash_table_steal(by_message, m->message);
                g_ptr_array_add(found, m);
        }
        g_ptr_array_unref(order);
        return found;
}

static void print_duplicates(const GPtrArray *found, bool json)
{
        if (!json) {
                for (guint i = 0; i < found->len; i++) {
                        const MessageReads *m = found->pdata[i];
                        printf("message %s read by %u consumers:\n", m->message, m->consumers->len);
                        for (guint c = 0; c < m->consumers->len; c++)
                                print_entry_text(m->consumers->pdata[c]);
                }
                printf("%u message%s read by more than one consumer\n", found->len,
                       found->len == 1 ? "" : "s");
                return;
        }
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_array(b);
        for (guint i = 0; i < found->len; i++) {
                const MessageReads *m = found->pdata[i];
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "message");
                json_builder_add_string_value(b, m->message);
                json_builder_set_member_name(b, "consumers");
                json_builder_begin_array(b);
                for (guint c = 0; c < m->consumers->len; c++)
                        json_add_entry(b, m->consumers->pdata[c]);
                json_builder_end_array(b);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        tool_json_print(b);
}

/* --- main -------------------------------------------------------------- */

/* "10m", "2h", "30s", "1d" (a bare number is seconds): microseconds. */
static bool parse_duration(const char *text, gint64 *us)
{
        char *end = NULL;
        guint64 n = g_ascii_strtoull(text, &end, 10);
        if (end == text || n > 100000000)
                return false;
        gint64 unit = *end == '\0' || g_str_equal(end, "s") ? 1
                      : g_str_equal(end, "m")               ? 60
                      : g_str_equal(end, "h")               ? 3600
                      : g_str_equal(end, "d")               ? 86400
                                                            : 0;
        if (!unit)
                return false;
        *us = (gint64)n * unit * G_USEC_PER_SEC;
        return true;
}

static volatile sig_atomic_t stop_following;

static void on_signal(int sig)
{
        stop_following = 1;
}

#define USAGE                                                                       \
        "usage: po-trail PO [MESSAGE] [--file PATH] [--since DURATION] [--follow] " \
        "[--duplicates] [--json]\n"

int main(int argc, char **argv)
{
        g_autofree char *file = NULL, *since = NULL;
        gboolean follow = FALSE, duplicates = FALSE, json = FALSE;
        GOptionEntry options[] = {
                { "file", 0, 0, G_OPTION_ARG_STRING, &file,
                  "Events of this file only (a path inside the postoffice)", "PATH" },
                { "since", 0, 0, G_OPTION_ARG_STRING, &since,
                  "Events of the last DURATION only (30s, 10m, 2h, 1d)", "DURATION" },
                { "follow", 0, 0, G_OPTION_ARG_NONE, &follow,
                  "Keep printing events as they come, until interrupted", NULL },
                { "duplicates", 0, 0, G_OPTION_ARG_NONE, &duplicates,
                  "Messages whose files two consumers opened, with both", NULL },
                { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
                { NULL },
        };
        g_autoptr(GOptionContext) context = g_option_context_new("PO [MESSAGE]");
        g_option_context_set_summary(context,
                                     "Who created, read and removed a postoffice's files, from "
                                     "the trail mailbagfs keeps.");
        g_option_context_add_main_entries(context, options, NULL);
        g_autoptr(GError) error = NULL;
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                fprintf(stderr, "po-trail: %s\n" USAGE, error->message);
                return 2;
        }
        if (argc < 2 || argc > 3 || (follow && (json || duplicates))) {
                fprintf(stderr, USAGE "(--follow prints text, and not with --duplicates)\n");
                return 2;
        }
        TrailFilter filter = { .file = file };
        if (argc == 3) {
                g_autofree char *probe = g_strdup_printf("P1/%s.P1", argv[2]);
                g_autofree char *number = message_of(probe);
                if (!number) {
                        fprintf(stderr,
                                "po-trail: %s: a message is its eight hex digits "
                                "(0000002A)\n",
                                argv[2]);
                        return 2;
                }
                filter.message = argv[2];
        }
        if (since) {
                gint64 span;
                if (!parse_duration(since, &span)) {
                        fprintf(stderr,
                                "po-trail: --since %s: expected a duration such as 30s, "
                                "10m, 2h or 1d\n",
                                since);
                        return 2;
                }
                filter.since_us = g_get_real_time() - span;
        }

        g_autofree char *dir = trail_dir_of(argv[1], &error);
        if (!dir) {
                fprintf(stderr, "po-trail: %s\n", error->message);
                return 1;
        }
        g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(
                (GDestroyNotify)po_status_line_free);
        g_autoptr(GArray) entries = g_array_new(FALSE, FALSE, sizeof(TrailEntry));
        if (!trail_read(dir, lines, entries, &error)) {
                fprintf(stderr, "po-trail: %s: %s\n", dir, error->message);
                return 1;
        }

        if (duplicates) {
                g_autoptr(GPtrArray) found = find_duplicates(entries, &filter);
                print_duplicates(found, json);
                return 0;
        }
        g_autoptr(GArray) chosen = g_array_new(FALSE, FALSE, sizeof(TrailEntry));
        for (guint i = 0; i < entries->len; i++) {
                const TrailEntry *e = &g_array_index(entries, TrailEntry, i);
                if (entry_chosen(e, &filter))
                        g_array_append_val(chosen, *e);
        }
        if (json) {
                g_autoptr(JsonBuilder) b = json_builder_new();
                json_builder_begin_array(b);
                for (guint i = 0; i < chosen->len; i++)
                        json_add_entry(b, &g_array_index(chosen, TrailEntry, i));
                json_builder_end_array(b);
                tool_json_print(b);
                return 0;
        }
        for (guint i = 0; i < chosen->len; i++)
                print_entry_text(&g_array_index(chosen, TrailEntry, i));
        if (filter.message)
                print_message_summary(chosen);
        if (!follow)
                return 0;

        /* Following: read the streams again and print what is newer. */
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        setvbuf(stdout, NULL, _IOLBF, 0);
        gint64 last_us = entries->len ? g_array_index(entries, TrailEntry, entries->len - 1).unix_us
                                      : 0;
        while (!stop_following) {
                g_usleep(FOLLOW_POLL_MS * 1000);
                g_autoptr(GPtrArray) more_lines = g_ptr_array_new_with_free_func(
                        (GDestroyNotify)po_status_line_free);
                g_autoptr(GArray) more = g_array_new(FALSE, FALSE, sizeof(TrailEntry));
                if (!trail_read(dir, more_lines, more, NULL))
                        continue;
                for (guint i = 0; i < more->len; i++) {
                        const TrailEntry *e = &g_array_index(more, TrailEntry, i);
                        if (e->unix_us > last_us && entry_chosen(e, &filter)) {
                                print_entry_text(e);
                                last_us = e->unix_us;
                        }
                }
        }
        return 0;
}
