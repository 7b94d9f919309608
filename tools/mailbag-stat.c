/* mailbag-stat - who holds which mailbag on a mailbagfs mount.
 *
 * mailbag-stat MOUNTPOINT [--json] [--watch [SECONDS]] [--profile PATH]
 *
 * Everything shown comes from the daemon's read-only attributes
 * (user.mailbag.locks and .stats on the root, user.mailbag.records on each
 * queue's KEY file), so the tool needs no privileges beyond reading the
 * mount, and shows what the daemon itself believes. The queues listed are
 * the profile's, plus any mailbag the daemon reports a lease on.
 */
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "profile.h"

typedef struct {
        char *kind;
        char *name;
        bool held;
        GHashTable *fields; /* key -> value, for held leases */
} LeaseLine;

static void lease_line_free(gpointer data)
{
        LeaseLine *line = data;
        g_free(line->kind);
        g_free(line->name);
        if (line->fields)
                g_hash_table_unref(line->fields);
        g_free(line);
}

/* An attribute's value, or NULL with errno set. */
static char *read_attribute(const char *path, const char *name)
{
        for (int attempt = 0; attempt < 3; attempt++) {
                ssize_t size = getxattr(path, name, NULL, 0);
                if (size < 0)
                        return NULL;
                char *value = g_malloc((size_t)size + 1);
                ssize_t got = getxattr(path, name, value, (size_t)size);
                if (got >= 0) {
                        value[got] = '\0';
                        return value;
                }
                g_free(value);
                if (errno != ERANGE) /* ERANGE: it grew in between */
                        return NULL;
        }
        return NULL;
}

/* "KIND NAME free" or "KIND NAME held key=value ..." */
static LeaseLine *parse_lease_line(const char *text)
{
        g_auto(GStrv) words = g_strsplit(text, " ", -1);
        if (g_strv_length(words) < 3)
                return NULL;
        LeaseLine *line = g_new0(LeaseLine, 1);
        line->kind = g_strdup(words[0]);
        line->name = g_strdup(words[1]);
        line->held = g_str_equal(words[2], "held");
        line->fields = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        for (char **word = words + 3; *word; word++) {
                char *eq = strchr(*word, '=');
                if (eq)
                        g_hash_table_insert(line->fields, g_strndup(*word, (gsize)(eq - *word)),
                                            g_strdup(eq + 1));
        }
        return line;
}

static GPtrArray *parse_lease_lines(const char *text)
{
        GPtrArray *lines = g_ptr_array_new_with_free_func(lease_line_free);
        g_auto(GStrv) rows = g_strsplit(text, "\n", -1);
        for (char **row = rows; *row; row++) {
                LeaseLine *line = **row ? parse_lease_line(*row) : NULL;
                if (line)
                        g_ptr_array_add(lines, line);
        }
        return lines;
}

static const char *field(const LeaseLine *line, const char *key)
{
        const char *value = line->fields ? g_hash_table_lookup(line->fields, key) : NULL;
        return value ? value : "";
}

typedef struct {
        char *name;
        char *records; /* "live=.. free=.. total=.. limit=.. percent=.." or an error */
} MailbagRow;

static void mailbag_row_free(gpointer data)
{
        MailbagRow *row = data;
        g_free(row->name);
        g_free(row->records);
        g_free(row);
}

typedef struct {
        const char *mountpoint;
        const PoProfile *profile;
        char *stats;
        GPtrArray *leases;   /* of LeaseLine* */
        GPtrArray *mailbags; /* of MailbagRow* */
} Snapshot;

static void snapshot_clear(Snapshot *snap)
{
        g_clear_pointer(&snap->stats, g_free);
        g_clear_pointer(&snap->leases, g_ptr_array_unref);
        g_clear_pointer(&snap->mailbags, g_ptr_array_unref);
}

static bool name_listed(GPtrArray *rows, const char *name)
{
        for (guint i = 0; i < rows->len; i++)
                if (g_str_equal(((MailbagRow *)rows->pdata[i])->name, name))
                        return true;
        return false;
}

static void add_mailbag_row(Snapshot *snap, const char *name)
{
        if (strchr(name, '/') || name_listed(snap->mailbags, name))
                return;
        MailbagRow *row = g_new0(MailbagRow, 1);
        row->name = g_strdup(name);
        g_autofree char *key = g_strdup_printf("%s/KEY/%s.KEY", snap->mountpoint, name);
        g_autofree char *value = read_attribute(key, "user.mailbag.records");
        if (value) {
                g_strchomp(value);
                /* Drop the leading name: the row has it. */
                const char *space = strchr(value, ' ');
                row->records = g_strdup(space ? space + 1 : value);
        } else {
                row->records = g_strdup_printf("unreadable: %s", g_strerror(errno));
        }
        g_ptr_array_add(snap->mailbags, row);
}

static int snapshot_take(Snapshot *snap)
{
        snap->stats = read_attribute(snap->mountpoint, "user.mailbag.stats");
        if (!snap->stats)
                return -errno;
        g_autofree char *locks = read_attribute(snap->mountpoint, "user.mailbag.locks");
        if (!locks)
                return -errno;
        g_strchomp(snap->stats);
        snap->leases = parse_lease_lines(locks);
        snap->mailbags = g_ptr_array_new_with_free_func(mailbag_row_free);
        for (const char *const *queue = po_profile_queues(snap->profile); queue && *queue; queue++)
                add_mailbag_row(snap, *queue);
        for (guint i = 0; i < snap->leases->len; i++)
                add_mailbag_row(snap, ((LeaseLine *)snap->leases->pdata[i])->name);
        return 0;
}

static void print_table(const Snapshot *snap)
{
        printf("mailbagfs at %s\n\n", snap->mountpoint);
        printf("%-10s %-26s %-7s %-14s %-10s %-20s %s\n", "Kind", "Mailbag or file", "PID",
               "Program", "Protocol", "Since", "Waiting");
        if (snap->leases->len == 0)
                printf("(no mailbag is held or awaited)\n");
        for (guint i = 0; i < snap->leases->len; i++) {
                const LeaseLine *line = snap->leases->pdata[i];
                printf("%-10s %-26s %-7s %-14s %-10s %-20s %s\n", line->kind, line->name,
                       line->held ? field(line, "pid") : "-", field(line, "program"),
                       field(line, "protocol"), field(line, "since"),
                       *field(line, "waiting") ? field(line, "waiting") : "-");
        }
        printf("\n%-26s %s\n", "Mailbag", "Records (of the 4096 limit)");
        for (guint i = 0; i < snap->mailbags->len; i++) {
                const MailbagRow *row = snap->mailbags->pdata[i];
                printf("%-26s %s\n", row->name, row->records);
        }
        printf("\nCounters: %s\n", snap->stats);
}

static void print_json_string(const char *text)
{
        putchar('"');
        for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

/* "a=1 b=2" as JSON members: numbers stay numbers. */
static void print_json_fields(const char *text)
{
        g_auto(GStrv) words = g_strsplit(text, " ", -1);
        bool first = true;
        for (char **word = words; *word; word++) {
                char *eq = strchr(*word, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                printf("%s", first ? "" : ", ");
                first = false;
                print_json_string(*word);
                printf(": ");
                char *end = NULL;
                g_ascii_strtoull(eq + 1, &end, 10);
                if (eq[1] && end && !*end)
                        printf("%s", eq + 1);
                else
                        print_json_string(eq + 1);
        }
}

static void print_json(const Snapshot *snap)
{
        printf("{\"mountpoint\": ");
        print_json_string(snap->mountpoint);
        printf(", \"leases\": [");
        for (guint i = 0; i < snap->leases->len; i++) {
                const LeaseLine *line = snap->leases->pdata[i];
                printf("%s{\"kind\": ", i ? ", " : "");
                print_json_string(line->kind);
                printf(", \"name\": ");
                print_json_string(line->name);
                printf(", \"held\": %s", line->held ? "true" : "false");
                GHashTableIter iter;
                gpointer key, value;
                g_hash_table_iter_init(&iter, line->fields);
                printf(", \"waiting\": [");
                g_auto(GStrv) waiting = g_strsplit(field(line, "waiting"), ",", -1);
                for (char **pid = waiting; *pid && **pid; pid++)
                        printf("%s%s", pid == waiting ? "" : ", ", *pid);
                printf("]");
                while (g_hash_table_iter_next(&iter, &key, &value)) {
                        if (g_str_equal(key, "waiting"))
                                continue;
                        g_autofree char *member = g_strdup_printf("%s=%s", (char *)key, (char *)value);
                        printf(", ");
                        print_json_fields(member);
                }
                printf("}");
        }
        printf("], \"mailbags\": [");
        for (guint i = 0; i < snap->mailbags->len; i++) {
                const MailbagRow *row = snap->mailbags->pdata[i];
                printf("%s{\"name\": ", i ? ", " : "");
                print_json_string(row->name);
                if (strchr(row->records, '=')) {
                        printf(", ");
                        print_json_fields(row->records);
                } else {
                        printf(", \"error\": ");
                        print_json_string(row->records);
                }
                printf("}");
        }
        printf("], \"stats\": {");
        print_json_fields(snap->stats);
        printf("}}\n");
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signum)
{
        stop_requested = 1;
}

int main(int argc, char *argv[])
{
        gboolean json = FALSE;
        double watch = -1;
        g_autofree char *profile_path = NULL;
        GOptionEntry entries[] = {
                {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object", NULL},
                {"watch", 0, 0, G_OPTION_ARG_DOUBLE, &watch, "Refresh every SECONDS", "SECONDS"},
                {"profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_path,
                 "The postoffice profile the mount uses", "PATH"},
                {NULL},
        };
        g_autoptr(GOptionContext) context = g_option_context_new("MOUNTPOINT");
        g_option_context_set_summary(context,
                                     "Shows mailbag sessions, holders, waiters and counters of a mailbagfs mount.");
        g_option_context_add_main_entries(context, entries, NULL);
        g_autoptr(GError) error = NULL;
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                fprintf(stderr, "mailbag-stat: %s\n", error->message);
                return 2;
        }
        if (argc != 2) {
                fprintf(stderr, "mailbag-stat: give one MOUNTPOINT (see --help)\n");
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
                Snapshot snap = {.mountpoint = argv[1], .profile = profile};
                int r = snapshot_take(&snap);
                if (r < 0) {
                        if (r == -ENODATA || r == -ENOTSUP)
                                fprintf(stderr, "mailbag-stat: %s is not a mailbagfs mount "
                                                "(it has no user.mailbag.stats attribute)\n",
                                        argv[1]);
                        else
                                fprintf(stderr, "mailbag-stat: %s: %s\n", argv[1], g_strerror(-r));
                        snapshot_clear(&snap);
                        return 2;
                }
                if (clear_screen)
                        printf("\033[H\033[2J");
                if (json)
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
