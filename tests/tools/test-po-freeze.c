/* test-po-freeze.c - po-freeze through a real mount, as a postmaster backs
 * a live postoffice up: a copy made under it while po-sim's programs work
 * is whole (po-check passes it) and po-sim loses nothing; a killed
 * po-freeze frees the postoffice at once; one that cannot take everything
 * in time names the holder and leaves nothing held.
 *
 * Needs root and /dev/fuse. Programs from PO_FREEZE, PO_SIM, PO_CHECK,
 * MAILBAG_STAT, MKPO and MAILBAGFS (set by meson).
 */
#include "mount-fixture.h"
#include "po-sim-json.h"
#include "sample-postoffice.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static MountHarness harness;
static MountHarness second; /* another daemon on the same backing */

static void setup(void)
{
        mount_fixture_setup(&harness);
        memset(&second, 0, sizeof(second));
}

static void teardown(void)
{
        if (second.dir)
                mount_harness_teardown(&second);
        mount_harness_teardown(&harness);
}

TestSuite(po_freeze, .init = setup, .fini = teardown, .timeout = 600);

static char *mnt_path(const char *relpath)
{
        return g_build_filename(harness.mnt, relpath, NULL);
}

/* po-sim on @dir (and @also), started in the background; its --json line
 * goes to @out_file. */
static pid_t po_sim_start(const char *dir, const char *also, unsigned messages,
                          const char *out_file)
{
        g_autofree char *count = g_strdup_printf("%u", messages);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                        _exit(127);
                const char *sim = tool_path("PO_SIM");
                if (also)
                        execl(sim, sim, dir, "--also", also, "--messages", count, "--consumers",
                              "external=1,v20=1,gateway=1", "--timeout", "300", "--json", NULL);
                else
                        execl(sim, sim, dir, "--messages", count, "--consumers",
                              "external=1,v20=1,gateway=1", "--timeout", "300", "--json", NULL);
                _exit(127);
        }
        return pid;
}

static char *po_sim_finish(pid_t pid, const char *out_file)
{
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "po-sim ended with %d", status);
        char *json = NULL;
        cr_assert(g_file_get_contents(out_file, &json, NULL, NULL));
        return json;
}

/* Waits until po-sim has queued some mail: the copy is then made in the
 * middle of the run. */
static void wait_for_traffic(const char *po)
{
        g_autofree char *p1 = g_build_filename(po, "P1", NULL);
        for (int tries = 0; tries < 200; tries++) {
                g_autoptr(GDir) dir = g_dir_open(p1, 0, NULL);
                const char *name;
                guint files = 0;
                while (dir && (name = g_dir_read_name(dir)))
                        files++;
                if (files > 3)
                        return;
                g_usleep(20 * 1000);
        }
}

/* Backs the postoffice at @po up with @argv's tool under po-freeze in the
 * middle of a po-sim run over @sim_dir (and @also): the copy passes
 * po-check, po-sim's mail is all accounted for and clean. */
static void backup_during_po_sim(const char *po, const char *sim_dir, bool two_daemons,
                                 const char *const *copy)
{
        harness_mkpo(harness.backing, 8, 0);
        mount_fixture_mount(&harness, NULL);
        if (two_daemons) {
                cr_assert_eq(mount_harness_setup(&second), 0);
                mount_harness_set_backing(&second, harness.backing);
                mount_fixture_mount(&second, NULL);
        }
        g_autofree char *out = g_build_filename(harness.dir, "po-sim.json", NULL);
        pid_t sim = po_sim_start(sim_dir, two_daemons ? second.mnt : NULL, 600, out);
        wait_for_traffic(po);

        g_autoptr(GPtrArray) args = g_ptr_array_new();
        g_ptr_array_add(args, (gpointer)"--timeout");
        g_ptr_array_add(args, (gpointer)"120");
        g_ptr_array_add(args, (gpointer)po);
        g_ptr_array_add(args, (gpointer)"--");
        for (const char *const *arg = copy; *arg; arg++)
                g_ptr_array_add(args, (gpointer)*arg);
        g_ptr_array_add(args, NULL);
        g_auto(ToolRun) freeze = {0};
        gint64 start = g_get_monotonic_time();
        tool_runv(&freeze, "PO_FREEZE", (const char *const *)args->pdata);
        cr_log_info("po-freeze and the copy took %lld ms: %s",
                    (long long)((g_get_monotonic_time() - start) / 1000), freeze.err);
        cr_assert_eq(freeze.status, 0, "po-freeze: %d: %s%s", freeze.status, freeze.out,
                     freeze.err);

        g_autofree char *json = po_sim_finish(sim, out);
        po_sim_expect_queue_accounted(json, 600);
        cr_expect(strstr(json, "\"ok\": true"), "%s", json);
        cr_expect_eq(po_sim_json_count(json, "duplicates"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "lost"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "missing_routing"), 0, "%s", json);
        cr_log_info("po-sim: %s", json);
}

static void expect_copy_checks(const char *copy)
{
        g_auto(ToolRun) check = {0};
        tool_run(&check, "PO_CHECK", copy, NULL);
        cr_expect_eq(check.status, 0, "po-check of the copy: %d: %s%s", check.status, check.out,
                     check.err);
}

Test(po_freeze, a_copy_under_po_freeze_in_the_middle_of_po_sim_is_whole)
{
        g_autofree char *copy = g_build_filename(harness.dir, "copy", NULL);
        const char *const cp[] = {"cp", "-a", harness.mnt, copy, NULL};
        backup_during_po_sim(harness.mnt, harness.mnt, false, cp);
        expect_copy_checks(copy);
}

Test(po_freeze, a_tar_under_po_freeze_over_two_daemons_is_whole)
{
        g_autofree char *tarball = g_build_filename(harness.dir, "po.tar", NULL);
        /* Producers still make the envelope of the message they are about
         * to queue (no lock guards a new P1 or MAI file) before they wait
         * for the KEY section: GNU tar then says "file changed as we read
         * it" of P1 and exits 1, its "some files differ". The copy is
         * whole all the same (po-check below); 2 is a failure. */
        g_autofree char *script = g_strdup_printf(
                "tar --warning=no-file-changed -C '%s' -cf '%s' . ; test $? -le 1", harness.mnt,
                tarball);
        const char *const tar[] = {"sh", "-c", script, NULL};
        backup_during_po_sim(harness.mnt, harness.mnt, true, tar);
        g_autofree char *copy = g_build_filename(harness.dir, "untarred", NULL);
        cr_assert_eq(mkdir(copy, 0755), 0);
        g_autofree char *untar = g_strdup_printf("tar -C '%s' -xf '%s'", copy, tarball);
        cr_assert_eq(system(untar), 0);
        expect_copy_checks(copy);
}

/* A gateway's open of the queue through mount @mnt, as another program:
 * 0 or its errno. */
static int gateway_open_through(const char *mnt)
{
        g_autofree char *key = g_build_filename(mnt, "KEY", "INQUEUE3.KEY", NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(key, O_RDONLY);
                _exit(fd < 0 ? errno : 0);
        }
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static int gateway_open(void)
{
        return gateway_open_through(harness.mnt);
}

static bool freeze_shown(void)
{
        g_autofree char *locks = harness_attribute(harness.mnt, "user.mailbag.locks");
        return locks && strstr(locks, "program=po-freeze");
}

Test(po_freeze, a_killed_po_freeze_frees_the_postoffice_at_once_on_every_node)
{
        harness_make_postoffice(harness.backing);
        const char *const quick[] = {"-olock_timeout=0.5", NULL};
        mount_fixture_mount(&harness, quick);
        /* Another node: a second daemon on the same share. */
        cr_assert_eq(mount_harness_setup(&second), 0);
        mount_harness_set_backing(&second, harness.backing);
        mount_fixture_mount(&second, quick);
        pid_t freezer = fork();
        cr_assert_geq(freezer, 0);
        if (freezer == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                const char *tool = tool_path("PO_FREEZE");
                execl(tool, tool, harness.mnt, "--", "sleep", "613", NULL);
                _exit(127);
        }
        for (int tries = 0; !freeze_shown() && tries < 500; tries++)
                g_usleep(10 * 1000);
        cr_assert(freeze_shown(), "the freeze never showed in user.mailbag.locks");
        g_autofree char *freezes = harness_attribute(harness.mnt, "user.mailbag.freeze");
        cr_expect(freezes && g_str_has_prefix(freezes, "frozen pid="), "%s", freezes);
        cr_expect_eq(gateway_open(), EBUSY, "a gateway got in while frozen");
        cr_expect_eq(gateway_open_through(second.mnt), EBUSY,
                     "a gateway on the other node got in while frozen");
        g_auto(ToolRun) metrics = {0};
        tool_run(&metrics, "MAILBAG_STAT", "--prometheus", harness.mnt, NULL);
        cr_expect(strstr(metrics.out, "mailbagfs_lease_holder_info{postoffice=\".\",mailbag=\"INQUEUE3\","
                                      "kind=\"session\",program=\"po-freeze\",protocol=\"freeze\"} 1"),
                  "the metrics do not show the freeze: %s", metrics.out);

        cr_assert_eq(kill(freezer, SIGKILL), 0);
        cr_assert_eq(waitpid(freezer, NULL, 0), freezer);
        gint64 killed = g_get_monotonic_time();
        int answer = EBUSY;
        while (answer == EBUSY && g_get_monotonic_time() - killed < G_USEC_PER_SEC)
                answer = gateway_open();
        cr_expect_eq(answer, 0, "a gateway was still refused a second after the kill: %s",
                     g_strerror(answer));
        cr_log_info("a gateway got in %lld ms after po-freeze was killed",
                    (long long)((g_get_monotonic_time() - killed) / 1000));
        cr_expect_not(freeze_shown(), "the freeze outlived its process");
        int other = EBUSY;
        while (other == EBUSY && g_get_monotonic_time() - killed < 2 * G_USEC_PER_SEC)
                other = gateway_open_through(second.mnt);
        cr_expect_eq(other, 0, "the other node was still refused: %s", g_strerror(other));
        /* The command it ran is an orphan now: not ours to keep. */
        cr_expect_geq(system("pkill -x -f 'sleep 613'"), 0);
}

Test(po_freeze, a_freeze_behind_a_hung_holder_gives_up_names_it_and_holds_nothing)
{
        harness_make_postoffice(harness.backing);
        mount_fixture_mount(&harness, NULL);
        /* A hung gateway: holds the queue and never lets go. */
        int pipe_fds[2];
        cr_assert_eq(pipe(pipe_fds), 0);
        pid_t hung = fork();
        cr_assert_geq(hung, 0);
        if (hung == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                g_autofree char *key = mnt_path("KEY/INQUEUE3.KEY");
                int fd = open(key, O_RDONLY);
                char ok = fd >= 0 ? 'y' : 'n';
                if (write(pipe_fds[1], &ok, 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        char ok = 0;
        cr_assert_eq(read(pipe_fds[0], &ok, 1), 1);
        cr_assert_eq(ok, 'y');

        g_auto(ToolRun) freeze = {0};
        gint64 start = g_get_monotonic_time();
        tool_run(&freeze, "PO_FREEZE", "--timeout", "2", harness.mnt, "--", "true", NULL);
        gint64 took_ms = (g_get_monotonic_time() - start) / 1000;
        cr_expect_eq(freeze.status, 3, "exit %d: %s", freeze.status, freeze.err);
        g_autofree char *hung_pid = g_strdup_printf("pid %d", (int)hung);
        cr_expect(strstr(freeze.err, "session INQUEUE3") && strstr(freeze.err, hung_pid),
                  "the holder is not named: %s", freeze.err);
        cr_expect_geq(took_ms, 1900, "gave up after %lld ms", (long long)took_ms);
        cr_expect_lt(took_ms, 10000, "gave up after %lld ms", (long long)took_ms);
        cr_expect_not(freeze_shown(), "a refused freeze left something held");
        /* The other queues it took first are free again. */
        g_autofree char *locks = harness_attribute(harness.mnt, "user.mailbag.locks");
        cr_expect(locks && !strstr(locks, "protocol=freeze"), "%s", locks);
        kill(hung, SIGKILL);
        waitpid(hung, NULL, 0);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
}

Test(po_freeze, only_root_may_freeze_and_bad_usage_is_refused)
{
        harness_make_postoffice(harness.backing);
        const char *const others[] = {"-oallow_other", NULL};
        mount_fixture_mount(&harness, others);
        cr_assert_eq(chmod(harness.dir, 0755), 0);
        g_auto(ToolRun) no_command = {0};
        tool_run(&no_command, "PO_FREEZE", harness.mnt, NULL);
        cr_expect_eq(no_command.status, 2, "%s", no_command.err);
        g_auto(ToolRun) not_po = {0};
        g_autofree char *elsewhere = g_build_filename(harness.dir, "backing", NULL);
        tool_run(&not_po, "PO_FREEZE", elsewhere, "--", "true", NULL);
        cr_expect_eq(not_po.status, 2, "freezing the backing directory: %d %s", not_po.status,
                     not_po.err);

        /* An ordinary user (the mount allows others) is refused. */
        g_autofree char *tool = g_strdup(tool_path("PO_FREEZE"));
        g_autofree char *command = g_strdup_printf(
                "setpriv --reuid=65534 --regid=65534 --clear-groups '%s' '%s' -- true",
                tool, harness.mnt);
        g_autofree char *said = NULL;
        int status = 0;
        cr_assert(g_spawn_command_line_sync(command, NULL, &said, &status, NULL));
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "as nobody: %d %s", status,
                  said);
        cr_expect(said && strstr(said, "only root"), "%s", said);
        cr_expect_not(freeze_shown());
}

/* --all: every postoffice below the path, also one the daemon has not
 * met yet, is held while the command runs, and let go after. */
Test(po_freeze, all_freezes_every_postoffice_below_the_path)
{
        g_autofree char *po1 = g_build_filename(harness.backing, "PO1", NULL);
        g_autofree char *po2 = g_build_filename(harness.backing, "HUB", "PO2", NULL);
        harness_make_postoffice(po1);
        harness_make_postoffice(po2);
        mount_fixture_mount(&harness, NULL);
        g_autofree char *script = g_strdup_printf(
                "getfattr --only-values -n user.mailbag.freeze '%s/PO1' '%s/HUB/PO2'",
                harness.mnt, harness.mnt);
        g_auto(ToolRun) freeze = {0};
        tool_run(&freeze, "PO_FREEZE", "--all", harness.mnt, "--", "sh", "-c", script, NULL);
        cr_assert_eq(freeze.status, 0, "%s", freeze.err);
        gchar **lines = g_strsplit(freeze.out, "frozen pid=", -1);
        cr_expect_eq(g_strv_length(lines), 3, "not both frozen: %s", freeze.out);
        g_strfreev(lines);
        g_autofree char *po2_mnt = g_build_filename(harness.mnt, "HUB", "PO2", NULL);
        g_autofree char *locks = harness_attribute(po2_mnt, "user.mailbag.locks");
        cr_expect(!locks || !strstr(locks, "po-freeze"), "still held after: %s", locks);
}
