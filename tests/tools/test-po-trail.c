/* test-po-trail.c - the trail through a real mount, read by po-trail as a
 * postmaster reads it: a message made by one program and read and removed
 * by others is named with each of them, also after the daemon restarted;
 * two consumers of one message are found as a duplicate; a file's events
 * and a time window are chosen; the trail keeps to its bound; it is hidden
 * through the mount and goes with its postoffice.
 *
 * Needs root and /dev/fuse. Programs from PO_TRAIL, PO_SIM, PO_CHECK, MKPO
 * and MAILBAGFS (set by meson).
 */
#include "mount-fixture.h"
#include "naming.h"
#include "po-sim-json.h"
#include "process-name.h"
#include "sample-postoffice.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static MountHarness harness;

static void setup(void)
{
        mount_fixture_setup(&harness);
        harness_make_postoffice(harness.backing);
}

static void teardown(void)
{
        mount_harness_teardown(&harness);
}

TestSuite(po_trail, .init = setup, .fini = teardown, .timeout = 600);

/* A message number and its subfolder as the postoffice spells them. */
#define MESSAGE "0000002A"

static char *message_mai(void)
{
        return g_strdup_printf("MAI/MA%c/" MESSAGE ".MAI", po_naming_subfolder_digit(0x2A));
}

/* In a child named @program: runs @step with the mount's path. */
static pid_t as_program(const char *program, void (*step)(const char *mnt))
{
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                harness_name_process(program);
                step(harness.mnt);
                _exit(0);
        }
        return pid;
}

static void wait_child(pid_t pid)
{
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: %d", pid, status);
}

static void write_at(const char *mnt, const char *relpath, const char *text)
{
        g_autofree char *path = g_build_filename(mnt, relpath, NULL);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) < 0)
                _exit(3);
}

static void read_at(const char *mnt, const char *relpath)
{
        g_autofree char *path = g_build_filename(mnt, relpath, NULL);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                _exit(4);
}

static void producer_step(const char *mnt)
{
        g_autofree char *mai = message_mai();
        g_autofree char *path = g_build_filename(mnt, mai, NULL);
        g_autofree char *folder = g_path_get_dirname(path);
        if (g_mkdir_with_parents(folder, 0755) < 0)
                _exit(6);
        write_at(mnt, mai, "the message\r\n");
        write_at(mnt, "P1/" MESSAGE ".P1", "envelope");
}

static void consumer_step(const char *mnt)
{
        g_autofree char *mai = message_mai();
        read_at(mnt, "P1/" MESSAGE ".P1");
        read_at(mnt, mai);
}

static void remover_step(const char *mnt)
{
        g_autofree char *mai = message_mai();
        g_autofree char *p1 = g_build_filename(mnt, "P1", MESSAGE ".P1", NULL);
        g_autofree char *body = g_build_filename(mnt, mai, NULL);
        if (unlink(p1) < 0 || unlink(body) < 0)
                _exit(5);
}

/* po-trail's --json array. */
static JsonArray *trail_json(JsonParser *parser, const char *const *args)
{
        g_auto(ToolRun) run = { 0 };
        tool_runv(&run, "PO_TRAIL", args);
        cr_assert_eq(run.status, 0, "po-trail: %s%s", run.out, run.err);
        g_autoptr(GError) error = NULL;
        cr_assert(json_parser_load_from_data(parser, run.out, -1, &error), "%s: %s", run.out,
                  error ? error->message : "");
        JsonNode *root = json_parser_get_root(parser);
        cr_assert(JSON_NODE_HOLDS_ARRAY(root), "%s", run.out);
        return json_node_get_array(root);
}

/* Whether @events holds one with @op on a file ending in @suffix by @pid
 * and @program. */
static bool has_event(JsonArray *events, const char *op, const char *suffix, pid_t pid,
                      const char *program)
{
        for (guint i = 0; i < json_array_get_length(events); i++) {
                JsonObject *e = json_array_get_object_element(events, i);
                const char *file = json_object_get_string_member(e, "file");
                if (g_str_equal(json_object_get_string_member(e, "op"), op) &&
                    g_str_has_suffix(file, suffix) && json_object_get_int_member(e, "pid") == pid &&
                    g_str_equal(json_object_get_string_member(e, "program"), program) &&
                    g_str_equal(json_object_get_string_member(e, "result"), "ok"))
                        return true;
        }
        return false;
}

static void expect_life(pid_t producer, pid_t consumer, pid_t remover)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        const char *const args[] = { harness.mnt, MESSAGE, "--json", NULL };
        JsonArray *events = trail_json(parser, args);
        g_autofree char *shown = json_to_string(json_parser_get_root(parser), TRUE);
        cr_expect(has_event(events, "create", ".P1", producer, "PRODUCER"), "no create of P1: %s",
                  shown);
        cr_expect(has_event(events, "create", ".MAI", producer, "PRODUCER"), "no create of MAI");
        cr_expect(has_event(events, "open", ".P1", consumer, "CONSUMER"), "no read of P1");
        cr_expect(has_event(events, "open", ".MAI", consumer, "CONSUMER"), "no read of MAI");
        cr_expect(has_event(events, "unlink", ".P1", remover, "REMOVER"), "no unlink of P1");
        cr_expect(has_event(events, "unlink", ".MAI", remover, "REMOVER"), "no unlink of MAI");
        /* In time order. */
        gint64 last = 0;
        for (guint i = 0; i < json_array_get_length(events); i++) {
                gint64 us = json_object_get_int_member(json_array_get_object_element(events, i),
                                                       "unix_us");
                cr_expect_geq(us, last, "event %u out of order", i);
                last = us;
        }
}

/* A message made by one program, read by a second, removed by a third:
 * po-trail names each, by pid and program, also after the daemon has
 * been restarted; the text report says who did what. */
Test(po_trail, a_messages_life_names_every_program_also_after_a_restart)
{
        mount_fixture_mount(&harness, NULL);
        pid_t producer = as_program("PRODUCER", producer_step);
        wait_child(producer);
        pid_t consumer = as_program("CONSUMER", consumer_step);
        wait_child(consumer);
        pid_t remover = as_program("REMOVER", remover_step);
        wait_child(remover);
        expect_life(producer, consumer, remover);

        g_auto(ToolRun) text = { 0 };
        tool_run(&text, "PO_TRAIL", harness.mnt, MESSAGE, NULL);
        cr_assert_eq(text.status, 0, "%s", text.err);
        g_autofree char *queued = g_strdup_printf("queued by   %d PRODUCER", (int)producer);
        g_autofree char *read = g_strdup_printf("read by     %d CONSUMER", (int)consumer);
        g_autofree char *removed = g_strdup_printf("removed by  %d REMOVER", (int)remover);
        cr_expect(strstr(text.out, queued), "%s", text.out);
        cr_expect(strstr(text.out, read), "%s", text.out);
        cr_expect(strstr(text.out, removed), "%s", text.out);

        /* Hidden through the mount; kept on the share across a restart. */
        g_autofree char *hidden = g_build_filename(harness.mnt, ".mailbagfs-trail", NULL);
        struct stat st;
        cr_expect_neq(stat(hidden, &st), 0, "the trail folder shows through the mount");
        cr_expect_eq(mount_harness_unmount(&harness), 0);
        g_auto(ToolRun) offline = { 0 };
        tool_run(&offline, "PO_TRAIL", harness.backing, MESSAGE, NULL);
        cr_expect_eq(offline.status, 0, "read from the share itself: %s", offline.err);
        cr_expect(strstr(offline.out, queued), "%s", offline.out);
        mount_fixture_mount(&harness, NULL);
        expect_life(producer, consumer, remover);
        mount_fixture_stop(&harness, NULL);
}

/* Two consumers read one message (what a duplicate or an [021] leaves):
 * --duplicates names that message with both; the producer is no
 * consumer. */
Test(po_trail, two_consumers_of_one_message_are_found)
{
        mount_fixture_mount(&harness, NULL);
        pid_t producer = as_program("PRODUCER", producer_step);
        wait_child(producer);
        pid_t first = as_program("CONSUMER", consumer_step);
        wait_child(first);
        pid_t second = as_program("GATEWAY", consumer_step);
        wait_child(second);

        g_autoptr(JsonParser) parser = json_parser_new();
        const char *const args[] = { harness.mnt, "--duplicates", "--json", NULL };
        JsonArray *found = trail_json(parser, args);
        cr_assert_eq(json_array_get_length(found), 1);
        JsonObject *m = json_array_get_object_element(found, 0);
        cr_expect_str_eq(json_object_get_string_member(m, "message"), MESSAGE);
        JsonArray *consumers = json_object_get_array_member(m, "consumers");
        cr_assert_eq(json_array_get_length(consumers), 2);
        cr_expect_eq(json_object_get_int_member(json_array_get_object_element(consumers, 0), "pid"),
                     first);
        cr_expect_eq(json_object_get_int_member(json_array_get_object_element(consumers, 1), "pid"),
                     second);
        mount_fixture_stop(&harness, NULL);
}

/* --file chooses one file's events, with the lease's outcome; --since a
 * window; bad arguments are refused with status 2. */
Test(po_trail, a_files_events_and_a_window_are_chosen)
{
        mount_fixture_mount(&harness, NULL);
        g_autofree char *key = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
        int fd = open(key, O_RDONLY);
        cr_assert_geq(fd, 0, "%s", g_strerror(errno));
        close(fd);
        pid_t producer = as_program("PRODUCER", producer_step);
        wait_child(producer);

        g_autoptr(JsonParser) parser = json_parser_new();
        const char *const args[] = { harness.mnt, "--file", "key/inqueue3.key", "--since", "10m",
                                     "--json",    NULL };
        JsonArray *events = trail_json(parser, args);
        cr_assert_eq(json_array_get_length(events), 1);
        JsonObject *e = json_array_get_object_element(events, 0);
        cr_expect_str_eq(json_object_get_string_member(e, "file"), "KEY/INQUEUE3.KEY");
        cr_expect_str_eq(json_object_get_string_member(e, "protocol"), "queue-read");
        cr_expect_str_eq(json_object_get_string_member(e, "outcome"), "granted");
        cr_expect_str_eq(json_object_get_string_member(e, "access"), "r");
        cr_expect_eq(json_object_get_int_member(e, "pid"), getpid());

        /* Nothing in the future. */
        g_usleep(1100 * 1000);
        g_autoptr(JsonParser) none_parser = json_parser_new();
        const char *const none_args[] = { harness.mnt, "--since", "1s", "--json", NULL };
        cr_expect_eq(json_array_get_length(trail_json(none_parser, none_args)), 0);

        static const char *const bad[][4] = {
                { "NOTAHEX1", NULL },
                { "--since", "ten", NULL },
                { "--follow", "--json", NULL },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                const char *argv[6] = { harness.mnt };
                for (int j = 0; bad[i][j]; j++)
                        argv[j + 1] = bad[i][j];
                g_auto(ToolRun) run = { 0 };
                tool_runv(&run, "PO_TRAIL", argv);
                cr_expect_eq(run.status, 2, "%s: %d %s", bad[i][0], run.status, run.err);
        }
        g_auto(ToolRun) nowhere = { 0 };
        tool_run(&nowhere, "PO_TRAIL", harness.dir, NULL);
        cr_expect_eq(nowhere.status, 1, "no trail there: %s", nowhere.out);
        mount_fixture_stop(&harness, NULL);
}

static guint64 trail_bytes(void)
{
        g_autofree char *dir = g_build_filename(harness.backing, ".mailbagfs-trail", NULL);
        g_autoptr(GDir) folder = g_dir_open(dir, 0, NULL);
        cr_assert_not_null(folder);
        guint64 total = 0;
        for (const char *name; (name = g_dir_read_name(folder));) {
                g_autofree char *path = g_build_filename(dir, name, NULL);
                struct stat st;
                cr_assert_eq(stat(path, &st), 0);
                cr_expect_eq(st.st_mode & 0777, 0600, "%s is not private", name);
                total += (guint64)st.st_size;
        }
        return total;
}

/* po-sim's 1,000 messages through a mount whose trail may keep 1 MiB: the
 * trail rotates and stays within it, and the newest events are there. */
Test(po_trail, the_trail_keeps_to_its_bound)
{
        const char *args[] = { "-otrail=1", NULL };
        harness_remove_tree(harness.backing);
        harness_mkpo(harness.backing, 8, 0);
        mount_fixture_mount(&harness, args);
        g_auto(ToolRun) sim = { 0 };
        tool_run(&sim, "PO_SIM", harness.mnt, "--messages", "1000", "--timeout", "300", "--json",
                 NULL);
        cr_assert_eq(sim.status, 0, "po-sim: %s%s", sim.out, sim.err);
        po_sim_expect_clean(sim.out, po_sim_json_count(sim.out, "queued"));
        guint64 bytes = trail_bytes();
        cr_log_info("trail after 1,000 messages with trail=1: %" G_GUINT64_FORMAT " bytes", bytes);
        cr_expect_leq(bytes, 1024 * 1024, "the trail outgrew its bound");
        cr_expect_gt(bytes, 256 * 1024, "the trail kept too little: %" G_GUINT64_FORMAT, bytes);
        g_autoptr(JsonParser) parser = json_parser_new();
        const char *const recent[] = { harness.mnt, "--since", "5m", "--json", NULL };
        cr_expect_gt(json_array_get_length(trail_json(parser, recent)), 1000);
        /* On the share, the trail is the daemon's: po-check lets it be. */
        g_auto(ToolRun) check = {0};
        tool_run(&check, "PO_CHECK", harness.backing, NULL);
        cr_expect_eq(check.status, 0, "po-check of the share: %s%s", check.out, check.err);
        mount_fixture_stop(&harness, NULL);
}
