/* test-hostile-tools.c - po-check and po-sim, run by root, on a postoffice
 * that an unprivileged user can write to.
 *
 * The user (nobody, 65534, in a forked child) owns the postoffice's files,
 * as the users of a share do, and plants symbolic links, FIFOs and odd
 * names in it. A root-owned victim folder with one file sits beside the
 * postoffice, outside it: whatever the user plants, root's tools must
 * leave the victim as it was, say what they refused to do, finish within
 * a bound (a hang is a failure) and print names from the share with their
 * control characters escaped.
 *
 * Each test works in a private temporary directory, removed by the
 * suite's fini. Tool paths come from PO_CHECK, PO_SIM and MKPO (set by
 * meson); set them to other builds to run the tests against those.
 * Needs root (to set up a root-owned victim and to become the user).
 */
#include "mount-harness.h"
#include "sample-postoffice.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOSTILE_UID 65534
#define HOSTILE_GID 65534
#define VICTIM_CONTENT "root's file, outside the postoffice\n"
/* Long enough for an ASan build on a busy machine, far shorter than for
 * ever. */
#define TOOL_BOUND_SECONDS 60.0

static char *scratch;   /* the private directory, root-owned, 0755 */
static char *po;        /* scratch/PO: the postoffice, owned by the user */
static char *victim;    /* scratch/victim: root-owned folder outside it */
static char *victim_file;
static pid_t user_child = -1;

static void hostile_setup(void)
{
        if (geteuid() != 0)
                return; /* make_share() skips the test, which leaves nothing behind */
        g_autoptr(GError) error = NULL;
        scratch = g_dir_make_tmp("hostile-tools-XXXXXX", &error);
        cr_assert_not_null(scratch, "%s", error ? error->message : "?");
        cr_assert(chmod(scratch, 0755) == 0);
        po = g_build_filename(scratch, "PO", NULL);
        victim = g_build_filename(scratch, "victim", NULL);
        victim_file = g_build_filename(victim, "victim.txt", NULL);
}

static void hostile_teardown(void)
{
        if (user_child > 0) {
                kill(user_child, SIGKILL);
                waitpid(user_child, NULL, 0);
                user_child = -1;
        }
        if (scratch)
                harness_remove_tree(scratch);
        g_clear_pointer(&scratch, g_free);
        g_clear_pointer(&po, g_free);
        g_clear_pointer(&victim, g_free);
        g_clear_pointer(&victim_file, g_free);
}

TestSuite(hostile_tools, .init = hostile_setup, .fini = hostile_teardown);

/* --- the share and the victim ----------------------------------------- */

static void chown_tree(const char *path)
{
        cr_assert(lchown(path, HOSTILE_UID, HOSTILE_GID) == 0, "chown %s: %s", path,
                  g_strerror(errno));
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        for (const char *name; dir && (name = g_dir_read_name(dir)) != NULL;) {
                g_autofree char *child = g_build_filename(path, name, NULL);
                struct stat st;
                cr_assert(lstat(child, &st) == 0);
                if (S_ISDIR(st.st_mode))
                        chown_tree(child);
                else
                        cr_assert(lchown(child, HOSTILE_UID, HOSTILE_GID) == 0);
        }
}

/* A fresh postoffice the user owns, and the root-owned victim beside it.
 * Skips the test when not root. */
static void make_share(void)
{
        if (geteuid() != 0)
                cr_skip_test("needs root: root runs the tools, nobody attacks");
        harness_mkpo(po, 2, 3);
        chown_tree(po);
        cr_assert(mkdir(victim, 0755) == 0);
        cr_assert(g_file_set_contents(victim_file, VICTIM_CONTENT, -1, NULL));
        cr_assert(chmod(victim_file, 0644) == 0);
}

static char *po_path(const char *relpath)
{
        return g_build_filename(po, relpath, NULL);
}

/* The victim folder still holds exactly its one file, unchanged. */
static void expect_victim_untouched(const char *when)
{
        g_autoptr(GDir) dir = g_dir_open(victim, 0, NULL);
        cr_assert_not_null(dir, "%s: the victim folder is gone", when);
        for (const char *name; (name = g_dir_read_name(dir)) != NULL;)
                cr_expect_str_eq(name, "victim.txt", "%s: %s appeared in the victim folder",
                                 when, name);
        g_autofree char *content = NULL;
        gsize len = 0;
        cr_assert(g_file_get_contents(victim_file, &content, &len, NULL),
                  "%s: the victim file is gone", when);
        cr_expect(len == strlen(VICTIM_CONTENT) && memcmp(content, VICTIM_CONTENT, len) == 0,
                  "%s: the victim file was changed (%" G_GSIZE_FORMAT " bytes now)", when, len);
        struct stat st;
        cr_assert(stat(victim_file, &st) == 0);
        cr_expect_eq(st.st_uid, 0, "%s: the victim file changed owner", when);
        cr_expect_eq(st.st_mode & 07777, 0644, "%s: the victim file changed mode", when);
}

/* --- acting as the user ------------------------------------------------ */

typedef void (*UserFn)(void *data);

static void become_user(void)
{
        if (setgroups(0, NULL) < 0 || setgid(HOSTILE_GID) < 0 || setuid(HOSTILE_UID) < 0)
                _exit(99);
}

/* Runs @fn as the user in a child; @wait: wait for it and expect it to
 * succeed, else leave it running (user_child). */
static void as_user(UserFn fn, void *data, bool wait)
{
        pid_t pid = fork();
        cr_assert(pid >= 0, "fork: %s", g_strerror(errno));
        if (pid == 0) {
                become_user();
                fn(data);
                _exit(0);
        }
        if (!wait) {
                user_child = pid;
                return;
        }
        int status = 0;
        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the user's part failed (status 0x%x)", status);
}

static void user_must(bool ok)
{
        if (!ok)
                _exit(1);
}

static void user_age_days(const char *path, int days)
{
        struct timeval times[2];
        gettimeofday(&times[0], NULL);
        times[0].tv_sec -= days * 24 * 3600;
        times[1] = times[0];
        user_must(utimes(path, times) == 0);
}

/* --- running a tool with a bound -------------------------------------- */

typedef struct {
        int status;      /* exit code, -1 when killed */
        bool timed_out;  /* killed after the bound */
        char *out;
        char *err;
} BoundedRun;

static void bounded_run_clear(BoundedRun *run)
{
        g_clear_pointer(&run->out, g_free);
        g_clear_pointer(&run->err, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(BoundedRun, bounded_run_clear)

/* Runs the program in @variable with @args (NULL terminated), killing it
 * after @seconds. */
static void run_bounded(BoundedRun *run, const char *variable, double seconds,
                        const char *const *args)
{
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_ptr_array_add(argv, (gpointer)tool_path(variable));
        for (const char *const *arg = args; *arg; arg++)
                g_ptr_array_add(argv, (gpointer)*arg);
        g_ptr_array_add(argv, NULL);
        int out_pipe[2], err_pipe[2];
        cr_assert(pipe2(out_pipe, O_CLOEXEC) == 0 && pipe2(err_pipe, O_CLOEXEC) == 0);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                dup2(out_pipe[1], STDOUT_FILENO);
                dup2(err_pipe[1], STDERR_FILENO);
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDIN_FILENO);
                execv(argv->pdata[0], (char **)argv->pdata);
                _exit(127);
        }
        close(out_pipe[1]);
        close(err_pipe[1]);
        GString *text[2] = { g_string_new(NULL), g_string_new(NULL) };
        struct pollfd fds[2] = { { .fd = out_pipe[0], .events = POLLIN },
                                 { .fd = err_pipe[0], .events = POLLIN } };
        gint64 deadline = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
        run->timed_out = false;
        while (fds[0].fd >= 0 || fds[1].fd >= 0) {
                gint64 left = deadline - g_get_monotonic_time();
                if (left <= 0 && !run->timed_out) {
                        run->timed_out = true;
                        kill(pid, SIGKILL);
                }
                int n = poll(fds, 2, run->timed_out ? 1000 : (int)MIN(left / 1000 + 1, 1000));
                if (n < 0 && errno == EINTR)
                        continue;
                cr_assert(n >= 0, "poll: %s", g_strerror(errno));
                for (int i = 0; i < 2; i++) {
                        if (fds[i].fd < 0 || fds[i].revents == 0)
                                continue;
                        char buf[4096];
                        ssize_t got = read(fds[i].fd, buf, sizeof buf);
                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got <= 0) {
                                close(fds[i].fd);
                                fds[i].fd = -1;
                        } else {
                                g_string_append_len(text[i], buf, got);
                        }
                }
        }
        int status = 0;
        cr_assert(waitpid(pid, &status, 0) == pid);
        run->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        run->out = g_string_free(text[0], FALSE);
        run->err = g_string_free(text[1], FALSE);
}

static void po_check(BoundedRun *run, bool fix)
{
        const char *args[] = { po, fix ? "--fix" : NULL, NULL };
        run_bounded(run, "PO_CHECK", TOOL_BOUND_SECONDS, args);
        cr_assert_not(run->timed_out, "po-check %s did not finish within %.0f s; it said:\n%s%s",
                      fix ? "--fix" : "", TOOL_BOUND_SECONDS, run->out, run->err);
        cr_assert(run->status >= 0 && run->status <= 2, "po-check died (status %d):\n%s%s",
                  run->status, run->out, run->err);
}

/* A whole line of @text starts with @prefix. */
static bool has_line(const char *text, const char *prefix)
{
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **line = lines; *line; line++)
                if (g_str_has_prefix(*line, prefix))
                        return true;
        return false;
}

static void expect_line(const char *text, const char *prefix, const char *also)
{
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **line = lines; *line; line++)
                if (g_str_has_prefix(*line, prefix) && (also == NULL || strstr(*line, also)))
                        return;
        cr_expect(false, "no line \"%s...%s\" in:\n%s", prefix, also ? also : "", text);
}

/* --- 1a: QUARANT/P1 (or QUARANT) a link to a root folder --------------- */

static void plant_old_p1_file(void *data)
{
        (void)data;
        g_autofree char *evil = po_path("P1/evil.sh");
        user_must(g_file_set_contents(evil, "echo owned\n", -1, NULL));
        user_age_days(evil, 3);
}

static void link_quarantine_p1(void *data)
{
        (void)data;
        g_autofree char *quarantine = po_path("QUARANT");
        g_autofree char *link = po_path("QUARANT/P1");
        user_must(mkdir(quarantine, 0755) == 0 || errno == EEXIST);
        user_must(symlink(victim, link) == 0);
}

static void link_quarantine(void *data)
{
        (void)data;
        g_autofree char *quarantine = po_path("QUARANT");
        g_autofree char *link = po_path("QUARANT/P1");
        unlink(link);
        user_must(rmdir(quarantine) == 0);
        user_must(symlink(victim, quarantine) == 0);
}

Test(hostile_tools, fix_does_not_move_debris_through_a_linked_quarantine, .timeout = 300)
{
        make_share();
        as_user(plant_old_p1_file, NULL, true);
        as_user(link_quarantine_p1, NULL, true);
        g_autofree char *evil = po_path("P1/evil.sh");

        g_auto(BoundedRun) fix = { 0 };
        po_check(&fix, true);
        expect_victim_untouched("QUARANT/P1 linked to a root folder");
        cr_expect(g_file_test(evil, G_FILE_TEST_IS_REGULAR), "P1/evil.sh was moved:\n%s", fix.out);
        cr_expect_eq(fix.status, 1, "a refusal must show in the exit status:\n%s", fix.out);
        expect_line(fix.out, "po-check: not fixed: old-p1-file: P1/evil.sh: ", "symbolic link");
        cr_expect_not(has_line(fix.out, "po-check: fixed: old-p1-file: P1/evil.sh"), "%s", fix.out);

        /* The same with QUARANT itself a link. */
        as_user(link_quarantine, NULL, true);
        g_auto(BoundedRun) again = { 0 };
        po_check(&again, true);
        expect_victim_untouched("QUARANT linked to a root folder");
        cr_expect(g_file_test(evil, G_FILE_TEST_IS_REGULAR), "P1/evil.sh was moved:\n%s",
                  again.out);
        cr_expect_eq(again.status, 1, "%s", again.out);
        expect_line(again.out, "po-check: not fixed: old-p1-file: P1/evil.sh: ", "symbolic link");
}

/* --- 1b: the marker's name raced between a link and nothing ------------ */

#define RACED_MARKER "ATT/ATF/POPULATE.MSM"

typedef struct {
        double seconds;
} RaceArgs;

static void race_marker(void *data)
{
        const RaceArgs *race = data;
        g_autofree char *marker = po_path(RACED_MARKER);
        gint64 end = g_get_monotonic_time() + (gint64)(race->seconds * G_USEC_PER_SEC);
        unlink(marker);
        while (g_get_monotonic_time() < end) {
                unlink(marker);
                if (symlink(victim_file, marker) < 0 && errno != EEXIST)
                        _exit(1);
        }
        /* Leave the link there: the last run meets it for sure. A run of
         * --fix still going may make the marker between the unlink and the
         * link: take it away again. */
        for (int tries = 0;; tries++) {
                unlink(marker);
                if (symlink(victim_file, marker) == 0)
                        break;
                user_must(errno == EEXIST && tries < 1000);
        }
}

Test(hostile_tools, fix_never_writes_through_a_raced_marker_link, .timeout = 300)
{
        make_share();
        RaceArgs race = { .seconds = 2.0 };
        as_user(race_marker, &race, false);
        unsigned runs = 0, refused = 0, created = 0;
        for (;;) {
                int status = 0;
                pid_t done = user_child > 0 ? waitpid(user_child, &status, WNOHANG) : 0;
                cr_assert(done >= 0, "waitpid: %s", g_strerror(errno));
                if (user_child > 0 && done == user_child) {
                        user_child = -1;
                        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                                  "the user's loop failed (0x%x)", status);
                }
                if (user_child < 0 && runs >= 5)
                        break;
                g_auto(BoundedRun) fix = { 0 };
                po_check(&fix, true);
                runs++;
                if (has_line(fix.out, "po-check: not fixed: missing-marker: " RACED_MARKER ": "))
                        refused++;
                if (has_line(fix.out, "po-check: fixed: missing-marker: " RACED_MARKER ": "))
                        created++;
                expect_victim_untouched("during the race");
        }
        cr_log_info("%u runs of po-check --fix: %u refused, %u created the marker", runs,
                    refused, created);

        /* The link left in place: --fix says it will not write through it. */
        g_auto(BoundedRun) fix = { 0 };
        po_check(&fix, true);
        expect_victim_untouched("after the race");
        cr_expect_eq(fix.status, 1, "%s", fix.out);
        expect_line(fix.out, "po-check: not fixed: missing-marker: " RACED_MARKER ": ",
                    "symbolic link");
}

/* --- 1c: a whole folder replaced by a link ----------------------------- */

static void link_folder(void *data)
{
        (void)data;
        g_autofree char *folder = po_path("ATT/ATF");
        g_autofree char *marker = po_path("ATT/ATF/POPULATE.MSM");
        user_must(unlink(marker) == 0);
        user_must(rmdir(folder) == 0);
        user_must(symlink(victim, folder) == 0);
}

Test(hostile_tools, fix_creates_nothing_through_a_linked_folder, .timeout = 300)
{
        make_share();
        as_user(link_folder, NULL, true);
        g_auto(BoundedRun) check = { 0 };
        po_check(&check, false);
        expect_victim_untouched("po-check");
        cr_expect_eq(check.status, 1, "%s", check.out);
        expect_line(check.out, "po-check: ", "ATT/ATF");

        g_auto(BoundedRun) fix = { 0 };
        po_check(&fix, true);
        expect_victim_untouched("po-check --fix");
        cr_expect_eq(fix.status, 1, "%s", fix.out);
        expect_line(fix.out, "po-check: not fixed: missing-folder: ATT/ATF: ", "symbolic link");
        cr_expect_not(has_line(fix.out, "po-check: fixed: "), "%s", fix.out);
}

/* --- 2: FIFOs and folders where files should be ------------------------ */

static void replace_with_fifo(const char *relpath)
{
        g_autofree char *path = po_path(relpath);
        cr_assert(unlink(path) == 0, "%s: %s", path, g_strerror(errno));
        cr_assert(mkfifo(path, 0644) == 0);
        cr_assert(lchown(path, HOSTILE_UID, HOSTILE_GID) == 0);
}

Test(hostile_tools, po_check_reports_a_fifo_control_glb, .timeout = 300)
{
        make_share();
        replace_with_fifo("GLB/CONTROL.GLB");
        g_auto(BoundedRun) check = { 0 };
        po_check(&check, false);
        cr_expect_eq(check.status, 1, "%s%s", check.out, check.err);
        expect_line(check.out, "po-check: not-a-file: GLB/CONTROL.GLB: ", "FIFO");
}

Test(hostile_tools, po_check_reports_fifos_and_folders_in_place_of_mailbag_files,
     .timeout = 300)
{
        make_share();
        replace_with_fifo("KEY/00000001.KEY");
        replace_with_fifo("MBG/00000002.MBG");
        g_autofree char *key = po_path("KEY/INQUEUE.KEY");
        cr_assert(unlink(key) == 0 && mkdir(key, 0755) == 0);
        g_auto(BoundedRun) check = { 0 };
        po_check(&check, false);
        cr_expect_eq(check.status, 1, "%s%s", check.out, check.err);
        expect_line(check.out, "po-check: not-a-file: KEY/00000001.KEY: ", "FIFO");
        expect_line(check.out, "po-check: not-a-file: MBG/00000002.MBG: ", "FIFO");
        expect_line(check.out, "po-check: not-a-file: KEY/INQUEUE.KEY: ", "folder");
        cr_expect_not(has_line(check.out, "po-check: key-size: KEY/INQUEUE.KEY"),
                      "a folder is not a KEY of the wrong size:\n%s", check.out);

        /* --fix has nothing to offer for them, and still finishes. */
        g_auto(BoundedRun) fix = { 0 };
        po_check(&fix, true);
        cr_expect_eq(fix.status, 1, "%s%s", fix.out, fix.err);
        struct stat st;
        g_autofree char *fifo = po_path("MBG/00000002.MBG");
        cr_expect(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was touched");
}

static void po_sim_bounded(BoundedRun *run)
{
        const char *args[] = { po, "--messages", "2", "--producers", "1", "--consumers",
                               "external=1", "--timeout", "20", NULL };
        run_bounded(run, "PO_SIM", TOOL_BOUND_SECONDS, args);
        cr_assert_not(run->timed_out, "po-sim --timeout 20 ran past %.0f s; it said:\n%s%s",
                      TOOL_BOUND_SECONDS, run->out, run->err);
}

Test(hostile_tools, po_sim_refuses_a_fifo_control_glb_within_its_timeout, .timeout = 300)
{
        make_share();
        replace_with_fifo("GLB/CONTROL.GLB");
        g_auto(BoundedRun) sim = { 0 };
        po_sim_bounded(&sim);
        cr_expect_neq(sim.status, 0, "%s%s", sim.out, sim.err);
        cr_expect(strstr(sim.err, "GLB/CONTROL.GLB") && strstr(sim.err, "not a regular file"),
                  "%s", sim.err);
}

Test(hostile_tools, po_sim_refuses_a_fifo_key_within_its_timeout, .timeout = 300)
{
        make_share();
        replace_with_fifo("KEY/INQUEUE3.KEY");
        g_auto(BoundedRun) sim = { 0 };
        po_sim_bounded(&sim);
        cr_expect_neq(sim.status, 0, "%s%s", sim.out, sim.err);
        cr_expect(strstr(sim.err, "INQUEUE3.KEY") && strstr(sim.err, "not a regular file"),
                  "%s", sim.err);
}

/* --- 3: a newline in a name -------------------------------------------- */

static void plant_newline_names(void *data)
{
        (void)data;
        g_autofree char *forged = po_path("LOG/x\npo-check: forged: all is well");
        user_must(g_file_set_contents(forged, "", 0, NULL));
        g_autofree char *old = po_path("P1/OLD\npo-check: forged: moved");
        user_must(g_file_set_contents(old, "", 0, NULL));
        user_age_days(old, 3);
}

Test(hostile_tools, names_with_control_characters_are_escaped, .timeout = 300)
{
        make_share();
        as_user(plant_newline_names, NULL, true);
        g_auto(BoundedRun) check = { 0 };
        po_check(&check, false);
        cr_expect_eq(check.status, 1, "%s", check.out);
        cr_expect_not(has_line(check.out, "po-check: forged"), "a name wrote a line:\n%s",
                      check.out);
        expect_line(check.out,
                    "po-check: lower-case-name: LOG/x\\x0apo-check: forged: all is well: ", NULL);
        expect_line(check.out, "po-check: old-p1-file: P1/OLD\\x0apo-check: forged: moved: ",
                    NULL);

        g_auto(BoundedRun) fix = { 0 };
        po_check(&fix, true);
        cr_expect_not(has_line(fix.out, "po-check: forged"), "a name wrote a line:\n%s", fix.out);
        expect_line(fix.out, "po-check: fixed: old-p1-file: P1/OLD\\x0apo-check: forged: moved: ",
                    "QUARANT/P1/OLD\\x0apo-check: forged: moved");

        /* JSON carries the name as it is, escaped by JSON's rules. */
        const char *args[] = { po, "--json", NULL };
        g_auto(BoundedRun) json = { 0 };
        run_bounded(&json, "PO_CHECK", TOOL_BOUND_SECONDS, args);
        cr_expect(strstr(json.out, "\"file\":\"LOG/x\\npo-check: forged: all is well\""),
                  "%s", json.out);
}
