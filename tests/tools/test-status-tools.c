/* test-status-tools.c - mailbag-stat, po-check and po-sim read the daemon's
 * status attributes: through a real mount (as this tree's daemon writes
 * them), and from attributes set on plain folders in the documented line
 * shapes of status-line.h (a mount root with two postoffices, one
 * postoffice folder), so that the tools' reading of each shape is pinned
 * down.
 *
 * Each test works in a mount harness' private directory, removed with the
 * mount by the suite's fini, also when an assertion fails. Tool paths come
 * from MAILBAG_STAT, PO_CHECK, PO_SIM, MKPO and MAILBAGFS (set by meson).
 */
#include "mount-fixture.h"
#include "sample-postoffice.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static MountHarness harness;
static pid_t holder = -1;

static void status_setup(void)
{
        mount_fixture_setup(&harness);
}

static void status_teardown(void)
{
        if (holder > 0) {
                kill(holder, SIGKILL);
                waitpid(holder, NULL, 0);
                holder = -1;
        }
        mount_harness_teardown(&harness);
}

TestSuite(status_tools, .init = status_setup, .fini = status_teardown);

static void expect_in(const char *haystack, const char *needle)
{
        cr_expect(strstr(haystack, needle) != NULL, "no \"%s\" in:\n%s", needle, haystack);
}

/* Prometheus's own linter on @metrics, where it is installed (Debian's
 * prometheus package): HELP and TYPE of every metric, counter names,
 * label escaping. Written to a file in the harness' directory. */
static void expect_promtool_accepts(const char *metrics)
{
        g_autofree char *promtool = g_find_program_in_path("promtool");
        if (promtool == NULL)
                return;
        g_autofree char *file = g_build_filename(harness.dir, "metrics.prom", NULL);
        cr_assert(g_file_set_contents(file, metrics, -1, NULL));
        const char *argv[] = {"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"", promtool,
                              file, NULL};
        g_autofree char *out = NULL, *err = NULL;
        int wait_status = 0;
        g_autoptr(GError) error = NULL;
        cr_assert(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &wait_status, &error),
                  "%s", error ? error->message : "");
        cr_expect(g_spawn_check_wait_status(wait_status, NULL) && !*out && !*err,
                  "promtool check metrics:\n%s%s\n%s", out, err, metrics);
}

/* --- through a mount -------------------------------------------------- */

Test(status_tools, mailbag_stat_shows_a_held_session_of_the_mount)
{
        harness_mkpo(harness.backing, 2, 5);
        mount_fixture_mount(&harness, NULL);
        g_autofree char *lock = g_build_filename(harness.mnt, "P1", "INQUEUE3.0LK", NULL);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        cr_assert(fd >= 0, "open %s: %s", lock, g_strerror(errno));
        g_autofree char *pid = g_strdup_printf(" %d ", (int)getpid());

        g_auto(ToolRun) table = { 0 };
        tool_run(&table, "MAILBAG_STAT", harness.mnt, NULL);
        cr_expect_eq(table.status, 0, "%s%s", table.out, table.err);
        expect_in(table.out, "Postoffice . (the mount root)");
        expect_in(table.out, "session    INQUEUE3");
        expect_in(table.out, pid);
        expect_in(table.out, "INQUEUE3                   live=5 ");
        expect_in(table.out, "Counters: acquisitions=");
        cr_expect_str_empty(table.err);

        g_auto(ToolRun) json = { 0 };
        tool_run(&json, "MAILBAG_STAT", harness.mnt, "--json", NULL);
        cr_expect_eq(json.status, 0, "%s", json.err);
        expect_in(json.out, "\"postoffices\":[{\"postoffice\":\".\"");
        expect_in(json.out, "{\"kind\":\"session\",\"name\":\"INQUEUE3\",\"held\":true,"
                            "\"postoffice\":\".\"");
        g_autofree char *pid_member = g_strdup_printf("\"pid\":%d,", (int)getpid());
        expect_in(json.out, pid_member);
        expect_in(json.out, "{\"name\":\"INQUEUE3\",\"live\":5,");

        /* A folder of the mount that is not a postoffice. */
        g_autofree char *key_folder = g_build_filename(harness.mnt, "KEY", NULL);
        g_auto(ToolRun) folder = { 0 };
        tool_run(&folder, "MAILBAG_STAT", key_folder, NULL);
        cr_expect_eq(folder.status, 2);
        expect_in(folder.err, "not a mailbagfs mount or protected postoffice folder");
        cr_expect_str_empty(folder.out);
        close(fd);
        cr_expect_eq(mount_harness_unmount(&harness), 0);
}

/* Observe mode: a gateway's session inside an External's is served and
 * is an overlap; mailbag-stat says the mode and shows the overlap with
 * both protocols in its table, its JSON and its metrics. Switched to
 * enforcing by root, the mode says so at once and the overlap stays. A
 * mount started enforcing says so and counts nothing. */
Test(status_tools, mailbag_stat_shows_observe_mode_and_its_overlaps)
{
        harness_mkpo(harness.backing, 2, 5);
        const char *observe[] = {"-omode=observe", NULL};
        mount_fixture_mount(&harness, observe);
        g_autofree char *lock = g_build_filename(harness.mnt, "P1", "INQUEUE3.0LK", NULL);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        cr_assert(fd >= 0, "open %s: %s", lock, g_strerror(errno));
        int ready[2];
        cr_assert_eq(pipe(ready), 0);
        holder = fork();
        cr_assert_geq(holder, 0);
        if (holder == 0) {
                /* Another process: the gateway, in at once. */
                g_autofree char *key = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
                int queue = open(key, O_RDONLY);
                char byte = queue >= 0 ? 'A' : 'E';
                if (write(ready[1], &byte, 1) != 1)
                        _exit(3);
                pause();
                _exit(0);
        }
        char byte = 0;
        cr_assert_eq(read(ready[0], &byte, 1), 1);
        cr_assert_eq(byte, 'A', "the gateway was refused in observe mode");

        g_auto(ToolRun) table = {0};
        tool_run(&table, "MAILBAG_STAT", harness.mnt, NULL);
        cr_expect_eq(table.status, 0, "%s%s", table.out, table.err);
        expect_in(table.out, "observe mode: nothing is enforced, overlaps are counted");
        expect_in(table.out, " overlaps=1");
        expect_in(table.out, "Kind       Mailbag or file            Opener       Holder       Count\n"
                             "session    INQUEUE3                   queue-read   0LK          1\n");

        g_auto(ToolRun) json = {0};
        tool_run(&json, "MAILBAG_STAT", harness.mnt, "--json", NULL);
        cr_expect_eq(json.status, 0, "%s", json.err);
        expect_in(json.out, "\"mode\":\"observe\"");
        expect_in(json.out, "\"overlaps\":1,");
        expect_in(json.out, "\"overlaps\":[{\"kind\":\"session\",\"name\":\"INQUEUE3\","
                            "\"protocol\":\"queue-read\",\"other\":\"0LK\",\"count\":1}]");

        g_auto(ToolRun) metrics = {0};
        tool_run(&metrics, "MAILBAG_STAT", harness.mnt, "--prometheus", NULL);
        cr_expect_eq(metrics.status, 0, "%s", metrics.err);
        expect_in(metrics.out, "# TYPE mailbagfs_overlaps_total counter\n"
                               "mailbagfs_overlaps_total{postoffice=\".\",mailbag=\"INQUEUE3\","
                               "kind=\"session\",protocol=\"queue-read\","
                               "other_protocol=\"0LK\"} 1\n");
        expect_in(metrics.out, "# TYPE mailbagfs_observe_mode gauge\nmailbagfs_observe_mode 1\n");
        expect_promtool_accepts(metrics.out);

        /* Root switches the mount to enforcing: the tools say so at once,
         * and the overlaps seen so far stay (counted since the start). */
        cr_assert_eq(setxattr(harness.mnt, "user.mailbag.mode", "enforce", 7, 0), 0, "%s",
                     g_strerror(errno));
        g_auto(ToolRun) switched = {0};
        tool_run(&switched, "MAILBAG_STAT", harness.mnt, "--json", NULL);
        cr_expect_eq(switched.status, 0, "%s", switched.err);
        expect_in(switched.out, "\"mode\":\"enforce\"");
        expect_in(switched.out, "\"other\":\"0LK\",\"count\":1}]");
        g_auto(ToolRun) switched_table = {0};
        tool_run(&switched_table, "MAILBAG_STAT", harness.mnt, NULL);
        cr_expect_null(strstr(switched_table.out, "observe mode"), "%s", switched_table.out);
        expect_in(switched_table.out, "session    INQUEUE3                   queue-read   0LK");

        kill(holder, SIGKILL);
        waitpid(holder, NULL, 0);
        holder = -1;
        close(fd);
        close(ready[0]);
        close(ready[1]);
        /* The start's "observe mode: ..." and the switch's "mode switched
         * from observe to enforce". */
        mount_fixture_stop(&harness, "observe");

        mount_fixture_setup(&harness);
        harness_mkpo(harness.backing, 2, 5);
        mount_fixture_mount(&harness, NULL);
        /* Enforcing, with the External's session held: nothing is
         * counted and there is no overlap section. */
        g_autofree char *enforced_lock = g_build_filename(harness.mnt, "P1", "INQUEUE3.0LK", NULL);
        fd = open(enforced_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        cr_assert(fd >= 0, "open %s: %s", enforced_lock, g_strerror(errno));
        g_auto(ToolRun) enforced_table = {0};
        tool_run(&enforced_table, "MAILBAG_STAT", harness.mnt, NULL);
        cr_expect_eq(enforced_table.status, 0, "%s%s", enforced_table.out, enforced_table.err);
        g_autofree char *first_line = g_strdup_printf("mailbagfs at %s\n", harness.mnt);
        cr_expect(g_str_has_prefix(enforced_table.out, first_line), "%s", enforced_table.out);
        expect_in(enforced_table.out, " overlaps=0");
        cr_expect_null(strstr(enforced_table.out, "Overlaps"), "%s", enforced_table.out);
        g_auto(ToolRun) enforced = {0};
        tool_run(&enforced, "MAILBAG_STAT", harness.mnt, "--json", NULL);
        cr_expect_eq(enforced.status, 0, "%s", enforced.err);
        expect_in(enforced.out, "\"mode\":\"enforce\"");
        expect_in(enforced.out, "\"overlaps\":0,");
        expect_in(enforced.out, "\"overlaps\":[]");
        g_auto(ToolRun) enforced_metrics = {0};
        tool_run(&enforced_metrics, "MAILBAG_STAT", harness.mnt, "--prometheus", NULL);
        cr_expect_eq(enforced_metrics.status, 0, "%s", enforced_metrics.err);
        expect_in(enforced_metrics.out, "mailbagfs_observe_mode 0\n");
        cr_expect_null(strstr(enforced_metrics.out, "mailbagfs_overlaps_total{"), "%s",
                       enforced_metrics.out);
        expect_promtool_accepts(enforced_metrics.out);
        close(fd);
        cr_expect_eq(mount_harness_unmount(&harness), 0);
}

/* Thousands of postoffices: the mount-wide attributes come in pages under
 * the kernel's 64 KiB limit for one attribute, and mailbag-stat shows
 * every postoffice (past about 1,300 it used to fail with E2BIG). */
Test(status_tools, mailbag_stat_shows_every_one_of_2000_postoffices, .timeout = 300)
{
        enum { COUNT = 2000 };
        for (int i = 1; i <= COUNT; i++) {
                g_autofree char *key = g_strdup_printf("%s/PO%04d/KEY", harness.backing, i);
                g_autofree char *p1 = g_strdup_printf("%s/PO%04d/P1", harness.backing, i);
                cr_assert_eq(g_mkdir_with_parents(key, 0755), 0);
                cr_assert_eq(g_mkdir_with_parents(p1, 0755), 0);
        }
        mount_fixture_mount(&harness, NULL);

        char first[65536];
        ssize_t len = getxattr(harness.mnt, "user.mailbag.postoffices", first, sizeof first);
        cr_assert(len > 0, "getxattr: %s", g_strerror(errno));
        cr_expect_leq(len, 60000);
        g_autofree char *page = g_strndup(first, (gsize)len);
        expect_in(page, "\nmore user.mailbag.postoffices.2\n");

        g_auto(ToolRun) table = { 0 };
        tool_run(&table, "MAILBAG_STAT", harness.mnt, NULL);
        cr_assert_eq(table.status, 0, "%s", table.err);
        for (int i = 1; i <= COUNT; i++) {
                g_autofree char *heading = g_strdup_printf("Postoffice PO%04d\n", i);
                cr_assert(strstr(table.out, heading), "PO%04d missing", i);
        }
        g_auto(ToolRun) json = { 0 };
        tool_run(&json, "MAILBAG_STAT", harness.mnt, "--json", NULL);
        cr_assert_eq(json.status, 0, "%s", json.err);
        expect_in(json.out, "\"postoffice\":\"PO2000\"");
        cr_expect_eq(mount_harness_unmount(&harness), 0);
}

Test(status_tools, mailbag_stat_refuses_a_plain_directory)
{
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "MAILBAG_STAT", harness.backing, NULL);
        cr_expect_eq(run.status, 2);
        expect_in(run.err, "not a mailbagfs mount or protected postoffice folder");
        g_auto(ToolRun) missing = { 0 };
        tool_run(&missing, "MAILBAG_STAT", "/nonexistent/mount", NULL);
        cr_expect_eq(missing.status, 2);
        expect_in(missing.err, "No such file or directory");
}

/* A Mail 2.x lock file is the lock itself, closed once made: only the
 * daemon knows that a live process holds it. Through the mount po-check
 * takes the holder from the lease line and reports nothing; on the raw
 * share the same file is a stale lock. */
Test(status_tools, po_check_takes_a_v20_holder_from_the_mount)
{
        harness_mkpo(harness.backing, 2, 5);
        mount_fixture_mount(&harness, NULL);
        int ready[2];
        cr_assert(pipe(ready) == 0);
        holder = fork();
        cr_assert(holder >= 0);
        if (holder == 0) {
                close(ready[0]);
                g_autofree char *lock = g_build_filename(harness.mnt, "P1", "INQUEUE3.001", NULL);
                int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                char status = fd >= 0 && close(fd) == 0 ? 'y' : 'n';
                if (write(ready[1], &status, 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        close(ready[1]);
        char status = 0;
        cr_assert_eq(read(ready[0], &status, 1), 1);
        close(ready[0]);
        cr_assert_eq(status, 'y', "the child could not create the lock file");

        g_auto(ToolRun) mounted = { 0 };
        tool_run(&mounted, "PO_CHECK", harness.mnt, NULL);
        cr_expect_eq(mounted.status, 0, "po-check through the mount:\n%s%s", mounted.out, mounted.err);
        cr_expect_str_empty(mounted.out);

        g_auto(ToolRun) raw = { 0 };
        tool_run(&raw, "PO_CHECK", harness.backing, NULL);
        cr_expect_eq(raw.status, 1, "%s", raw.out);
        expect_in(raw.out, "po-check: stale-lock: P1/INQUEUE3.001: v20-file lock of mailbag INQUEUE3");
}

/* A postoffice in a subfolder of a mount: po-sim goes by the folder's own
 * user.mailbag.stats. A daemon that protects the folder serves it, and the
 * run is through mailbagfs; one that does not leaves the folder without it,
 * and the run is raw, with a warning that the mount does not protect it. */
Test(status_tools, po_sim_goes_by_the_postoffice_folder_itself)
{
        g_autofree char *backing_po = g_build_filename(harness.backing, "PO1", NULL);
        harness_mkpo(backing_po, 2, 5);
        mount_fixture_mount(&harness, NULL);
        g_autofree char *po = g_build_filename(harness.mnt, "PO1", NULL);
        bool protected = getxattr(po, "user.mailbag.stats", NULL, 0) >= 0;
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_SIM", po, "--messages", "20", "--consumers", "external=1", "--producers",
                 "1", "--json", NULL);
        cr_assert_eq(run.status, 0, "po-sim failed: %s%s", run.out, run.err);
        if (protected) {
                expect_in(run.out, "\"mode\": \"mailbagfs\"");
                cr_expect_str_empty(run.err);
        } else {
                expect_in(run.out, "\"mode\": \"raw\"");
                g_autofree char *warning = g_strdup_printf(
                        "po-sim: warning: %s is inside the mailbagfs mount ", po);
                expect_in(run.err, warning);
        }
        cr_expect_eq(mount_harness_unmount(&harness), 0);
}

/* --- the documented line shapes on plain folders ---------------------- */

static bool set_attribute(const char *path, const char *name, const char *value)
{
        if (setxattr(path, name, value, strlen(value), 0) == 0)
                return true;
        if (errno == ENOTSUP)
                return false;
        cr_assert_fail("setxattr %s %s: %s", path, name, g_strerror(errno));
        return false;
}

static char *make_folder(const char *parent, const char *relpath)
{
        char *path = g_build_filename(parent, relpath, NULL);
        cr_assert_eq(g_mkdir_with_parents(path, 0755), 0);
        return path;
}

static void make_records(const char *po, const char *value)
{
        g_autofree char *key_dir = make_folder(po, "KEY");
        g_autofree char *key = g_build_filename(key_dir, "INQUEUE3.KEY", NULL);
        cr_assert(g_file_set_contents(key, "", 0, NULL));
        set_attribute(key, "user.mailbag.records", value);
}

/* A mount root with PO1 and HUB/PO 2 (a space: encoded), as the daemon
 * that names postoffices writes it; false when the filesystem has no user
 * attributes. */
static bool fake_mount(const char *root)
{
        if (!set_attribute(root, "user.mailbag.postoffices",
                           "postoffice PO1 queues=INQUEUE3,SYSTEM\n"
                           "postoffice HUB/PO%202 queues=INQUEUE3\n"))
                return false;
        set_attribute(root, "user.mailbag.locks",
                      "session INQUEUE3 held postoffice=HUB/PO%202 pid=18252 program=my%20prog "
                      "protocol=0LK since=2026-11-23T02:18:22Z refs=1 waiters=2 waiting=18255,18256 "
                      "later=1\n"
                      "exclusive GLB/CONTROL.GLB held postoffice=PO1 pid=0 program=%3F protocol=0LK "
                      "since=2026-11-23T02:18:22Z refs=1 waiters=0 holder=unknown\n");
        set_attribute(root, "user.mailbag.stats",
                      "stats PO1 acquisitions=1 waits=0 timeouts=0 deadlocks=0 stale_reclaimed=0 "
                      "breaks=0 cancellations=0 mixed_protocol=0\n"
                      "stats HUB/PO%202 acquisitions=2 waits=1 timeouts=0 deadlocks=0 "
                      "stale_reclaimed=0 breaks=0 cancellations=0 mixed_protocol=0\n"
                      "stats * acquisitions=3 waits=1 timeouts=0 deadlocks=0 stale_reclaimed=0 "
                      "breaks=0 cancellations=0 mixed_protocol=0\n");
        g_autofree char *po1 = make_folder(root, "PO1");
        g_autofree char *po2 = make_folder(root, "HUB/PO 2");
        make_records(po1, "records INQUEUE3 postoffice=PO1 live=3 free=1 total=4 limit=4096 percent=0\n");
        make_records(po2, "records INQUEUE3 corrupt postoffice=HUB/PO%202 "
                          "message=KEY/INQUEUE3.KEY:%20offset%200x22f\n");
        return true;
}

Test(status_tools, mailbag_stat_lists_every_postoffice_of_a_mount)
{
        const char *root = harness.backing;
        if (!fake_mount(root))
                cr_skip_test("the test directory has no user attributes");
        g_auto(ToolRun) table = { 0 };
        tool_run(&table, "MAILBAG_STAT", root, NULL);
        cr_assert_eq(table.status, 0, "%s%s", table.out, table.err);
        const char *po1 = strstr(table.out, "Postoffice PO1\n");
        const char *po2 = strstr(table.out, "Postoffice HUB/PO 2\n");
        cr_assert(po1 && po2 && po1 < po2, "%s", table.out);
        expect_in(po1, "exclusive  GLB/CONTROL.GLB            unknown ?");
        expect_in(po1, "INQUEUE3                   live=3 free=1 total=4 limit=4096 percent=0\n");
        expect_in(po1, "SYSTEM                     unreadable: No such file or directory\n");
        expect_in(po1, "Counters: acquisitions=1 waits=0 ");
        expect_in(po2, "session    INQUEUE3                   18252   my prog        0LK");
        expect_in(po2, "18255,18256\n");
        expect_in(po2, "INQUEUE3                   corrupt: KEY/INQUEUE3.KEY: offset 0x22f\n");
        expect_in(po2, "Counters: acquisitions=2 waits=1 ");
        expect_in(po2, "Counters, all postoffices: acquisitions=3 waits=1 ");
        /* The session of HUB/PO 2 is not shown under PO1. */
        cr_expect(strstr(po1, "18252") > po2, "%s", table.out);

        g_auto(ToolRun) json = { 0 };
        tool_run(&json, "MAILBAG_STAT", root, "--json", NULL);
        cr_assert_eq(json.status, 0, "%s", json.err);
        expect_in(json.out, "\"mount\":true,\"postoffices\":[{\"postoffice\":\"PO1\","
                            "\"queues\":[\"INQUEUE3\",\"SYSTEM\"],\"leases\":[{\"kind\":"
                            "\"exclusive\",\"name\":\"GLB/CONTROL.GLB\",\"held\":true,"
                            "\"postoffice\":\"PO1\",\"waiting\":[],\"pid\":0,");
        expect_in(json.out, "\"holder\":\"unknown\"");
        expect_in(json.out, "{\"postoffice\":\"HUB/PO 2\"");
        expect_in(json.out, "\"waiting\":[18255,18256],\"pid\":18252,\"program\":\"my prog\"");
        expect_in(json.out, "\"later\":1}");
        expect_in(json.out, "{\"name\":\"INQUEUE3\",\"error\":\"corrupt: KEY/INQUEUE3.KEY: offset 0x22f\"}");
        expect_in(json.out, "],\"stats\":{\"acquisitions\":3,\"waits\":1,");
        /* A daemon before observe mode: no user.mailbag.mode, it enforces. */
        expect_in(json.out, "\"mode\":\"enforce\"");
        cr_expect_null(strstr(table.out, "observe mode"), "%s", table.out);
        cr_expect_null(strstr(table.out, "Overlaps"), "%s", table.out);
        g_auto(ToolRun) metrics = { 0 };
        tool_run(&metrics, "MAILBAG_STAT", root, "--prometheus", NULL);
        cr_assert_eq(metrics.status, 0, "%s", metrics.err);
        expect_in(metrics.out, "mailbagfs_observe_mode 0\n");
        expect_promtool_accepts(metrics.out);
}

/* An observing daemon's root: the mode, PO1 with two overlaps (a hold of
 * another daemon among them), HUB/PO"2 with one (a '"' to escape in a
 * label), PO3 with none, and the sums. */
static bool fake_observing_mount(const char *root)
{
        if (!set_attribute(root, "user.mailbag.mode", "observe\n"))
                return false;
        set_attribute(root, "user.mailbag.postoffices",
                      "postoffice PO1 queues=INQUEUE3\n"
                      "postoffice HUB/PO\"2 queues=INQUEUE3\n"
                      "postoffice PO3 queues=INQUEUE3\n");
        set_attribute(root, "user.mailbag.locks", "session INQUEUE3 free postoffice=PO1\n");
        set_attribute(root, "user.mailbag.stats",
                      "stats PO1 acquisitions=4 waits=0 refused=0 mixed_protocol=0 overlaps=5\n"
                      "overlap PO1 kind=session name=INQUEUE3 protocol=queue-read other=0LK "
                      "count=3\n"
                      "overlap PO1 kind=exclusive name=GLB/CONTROL.GLB protocol=0LK other=? "
                      "count=2\n"
                      "stats HUB/PO\"2 acquisitions=1 waits=0 refused=0 mixed_protocol=0 "
                      "overlaps=1\n"
                      "overlap HUB/PO\"2 kind=key-write name=INQUEUE3 protocol=key-write "
                      "other=? count=1\n"
                      "stats PO3 acquisitions=0 waits=0 refused=0 mixed_protocol=0 overlaps=0\n"
                      "stats * acquisitions=5 waits=0 refused=0 mixed_protocol=0 overlaps=6\n");
        return true;
}

Test(status_tools, mailbag_stat_shows_the_overlaps_of_each_postoffice)
{
        const char *root = harness.backing;
        if (!fake_observing_mount(root))
                cr_skip_test("the test directory has no user attributes");
        g_auto(ToolRun) table = { 0 };
        tool_run(&table, "MAILBAG_STAT", root, NULL);
        cr_assert_eq(table.status, 0, "%s%s", table.out, table.err);
        g_autofree char *first_line = g_strdup_printf(
                "mailbagfs at %s - observe mode: nothing is enforced, overlaps are counted\n", root);
        cr_expect(g_str_has_prefix(table.out, first_line), "%s", table.out);
        const char *po1 = strstr(table.out, "Postoffice PO1\n");
        const char *po2 = strstr(table.out, "Postoffice HUB/PO\"2\n");
        const char *po3 = strstr(table.out, "Postoffice PO3\n");
        const char *sums = strstr(table.out, "Counters, all postoffices: ");
        cr_assert(po1 && po2 && po3 && sums && po1 < po2 && po2 < po3 && po3 < sums, "%s",
                  table.out);
        g_autofree char *po1_text = g_strndup(po1, (gsize)(po2 - po1));
        g_autofree char *po2_text = g_strndup(po2, (gsize)(po3 - po2));
        g_autofree char *po3_text = g_strndup(po3, (gsize)(sums - po3));
        expect_in(po1_text, "Counters: acquisitions=4 waits=0 refused=0 mixed_protocol=0 "
                            "overlaps=5\n");
        expect_in(po1_text, "Overlaps (opens that enforcing would have made wait or refused)\n\n"
                            "Kind       Mailbag or file            Opener       Holder       Count\n"
                            "session    INQUEUE3                   queue-read   0LK          3\n"
                            "exclusive  GLB/CONTROL.GLB            0LK          other daemon 2\n");
        expect_in(po2_text, "key-write  INQUEUE3                   key-write    other daemon 1\n");
        expect_in(po3_text, " overlaps=0\n\nOverlaps: none so far\n");
        expect_in(sums, "overlaps=6\n");

        g_auto(ToolRun) json = { 0 };
        tool_run(&json, "MAILBAG_STAT", root, "--json", NULL);
        cr_assert_eq(json.status, 0, "%s", json.err);
        expect_in(json.out, "\"stats\":{\"acquisitions\":4,\"waits\":0,\"refused\":0,"
                            "\"mixed_protocol\":0,\"overlaps\":5},\"overlaps\":["
                            "{\"kind\":\"session\",\"name\":\"INQUEUE3\",\"protocol\":"
                            "\"queue-read\",\"other\":\"0LK\",\"count\":3},"
                            "{\"kind\":\"exclusive\",\"name\":\"GLB/CONTROL.GLB\",\"protocol\":"
                            "\"0LK\",\"other\":\"?\",\"count\":2}]}");
        expect_in(json.out, "{\"postoffice\":\"HUB/PO\\\"2\"");
        expect_in(json.out, "\"overlaps\":1},\"overlaps\":[{\"kind\":\"key-write\","
                            "\"name\":\"INQUEUE3\",\"protocol\":\"key-write\",\"other\":\"?\","
                            "\"count\":1}]}");
        expect_in(json.out, "\"overlaps\":0},\"overlaps\":[]}");
        expect_in(json.out, "],\"stats\":{\"acquisitions\":5,\"waits\":0,\"refused\":0,"
                            "\"mixed_protocol\":0,\"overlaps\":6},\"mode\":\"observe\"");

        g_auto(ToolRun) metrics = { 0 };
        tool_run(&metrics, "MAILBAG_STAT", root, "--prometheus", NULL);
        cr_assert_eq(metrics.status, 0, "%s", metrics.err);
        expect_in(metrics.out, "# HELP mailbagfs_overlaps_total Observe mode: ");
        expect_in(metrics.out,
                  "# TYPE mailbagfs_overlaps_total counter\n"
                  "mailbagfs_overlaps_total{postoffice=\"PO1\",mailbag=\"INQUEUE3\","
                  "kind=\"session\",protocol=\"queue-read\",other_protocol=\"0LK\"} 3\n"
                  "mailbagfs_overlaps_total{postoffice=\"PO1\",mailbag=\"GLB/CONTROL.GLB\","
                  "kind=\"exclusive\",protocol=\"0LK\",other_protocol=\"?\"} 2\n"
                  "mailbagfs_overlaps_total{postoffice=\"HUB/PO\\\"2\",mailbag=\"INQUEUE3\","
                  "kind=\"key-write\",protocol=\"key-write\",other_protocol=\"?\"} 1\n"
                  "# HELP mailbagfs_observe_mode ");
        expect_in(metrics.out, "# TYPE mailbagfs_observe_mode gauge\nmailbagfs_observe_mode 1\n");
        /* The stats field is the sum of those series: not a series too. */
        cr_expect_null(strstr(metrics.out, "mailbagfs_overlaps_total{postoffice=\"PO3\""), "%s",
                       metrics.out);
        cr_expect_null(strstr(metrics.out, "_overlaps_total{postoffice=\"PO1\"}"), "%s",
                       metrics.out);
        expect_in(metrics.out, "mailbagfs_acquisitions_total{postoffice=\"PO3\"} 0\n");
        expect_promtool_accepts(metrics.out);
}

Test(status_tools, mailbag_stat_shows_one_postoffice_folder)
{
        g_autofree char *po = make_folder(harness.backing, "HUB/PO2");
        if (!set_attribute(po, "user.mailbag.locks",
                           "key-write 0000001A held postoffice=HUB/PO2 pid=77 program=admin "
                           "protocol=key-write since=2026-11-23T02:18:22Z refs=1 waiters=0\n"))
                cr_skip_test("the test directory has no user attributes");
        set_attribute(po, "user.mailbag.stats",
                      "stats HUB/PO2 acquisitions=9 waits=0 timeouts=0 deadlocks=0 "
                      "stale_reclaimed=0 breaks=0 cancellations=0 mixed_protocol=0\n");
        make_records(po, "records INQUEUE3 postoffice=HUB/PO2 live=0 free=0 total=0 limit=4096 percent=0\n");
        g_auto(ToolRun) table = { 0 };
        tool_run(&table, "MAILBAG_STAT", po, NULL);
        cr_assert_eq(table.status, 0, "%s%s", table.out, table.err);
        expect_in(table.out, "Postoffice HUB/PO2\n");
        expect_in(table.out, "key-write  0000001A                   77      admin");
        expect_in(table.out, "INQUEUE3                   live=0 free=0 total=0 limit=4096 percent=0\n");
        /* The lease's mailbag is listed, its KEY file is not there. */
        expect_in(table.out, "0000001A                   unreadable: No such file or directory\n");
        expect_in(table.out, "Counters: acquisitions=9 ");
        cr_expect_null(strstr(table.out, "all postoffices"), "%s", table.out);
        g_auto(ToolRun) json = { 0 };
        tool_run(&json, "MAILBAG_STAT", po, "--json", NULL);
        cr_assert_eq(json.status, 0, "%s", json.err);
        expect_in(json.out, "\"mount\":false,\"postoffices\":[{\"postoffice\":\"HUB/PO2\"");
        expect_in(json.out, "],\"stats\":{\"acquisitions\":9,");
}

Test(status_tools, mailbag_stat_names_a_bad_status_line)
{
        if (!set_attribute(harness.backing, "user.mailbag.locks", "session INQUEUE3 held pid=1 x\n"))
                cr_skip_test("the test directory has no user attributes");
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "MAILBAG_STAT", harness.backing, NULL);
        cr_expect_eq(run.status, 2);
        expect_in(run.err, ": user.mailbag.locks: line 1: a word after a field");
}
