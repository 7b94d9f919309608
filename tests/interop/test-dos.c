/* test-dos.c - DOS programs under Debian's DOSBox on a mailbagfs mount.
 *
 * The programs (the .asm files of dos/, built with nasm) make the INT 21h calls of the
 * Mail 3.x MTAs and gateways and write the DOS error of every step to a
 * file. Each runs on a plain directory and through the mount: alone, the
 * answers must be the same; while another process holds the queue, the
 * program must get its file once the holder is gone, never "file not
 * found". Two DOSBox processes working one queue never hold it at once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interop-util.h"
#include "mount-fixture.h"
#include "sample-postoffice.h"

#define DOSBOX_RUN_TIMEOUT_MS (120 * 1000)

typedef struct {
        MountHarness harness;
        char *raw;      /* a plain postoffice directory */
        char *tools;    /* drive D: the programs and their result files */
        char *home;     /* DOSBox writes its configuration under $HOME */
        bool mounted;
        bool dosbox_x;  /* the programs run under DOSBox-X, not DOSBox */
} DosTest;

static DosTest t;

static void dos_test_init(void)
{
        memset(&t, 0, sizeof(t));
        interop_adopt_descendants();
}

static void dos_test_fini(void)
{
        interop_end_descendants(3000);
        mount_harness_teardown(&t.harness);
        g_clear_pointer(&t.raw, g_free);
        g_clear_pointer(&t.tools, g_free);
        g_clear_pointer(&t.home, g_free);
}

#define dos_skip(...) interop_skip(dos_test_fini, __VA_ARGS__)

TestSuite(dos, .init = dos_test_init, .fini = dos_test_fini, .timeout = 500);

static const char *const programs[] = {"EXTERNAL", "GATEWAY", "V20", "PRODUCER", "CONTROL", "RECLOCK"};

/* Starts DOSBox running D:\@program with @args on C: = @po_dir. */
static pid_t dosbox_start(const char *po_dir, const char *program, const char *args, const char *log_name)
{
        g_autofree char *mount_c = g_strdup_printf("mount c \"%s\"", po_dir);
        g_autofree char *mount_d = g_strdup_printf("mount d \"%s\"", t.tools);
        g_autofree char *command = g_strdup_printf("D:\\%s.COM %s", program, args);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_ptr_array_add(argv, getenv(t.dosbox_x ? "DOSBOX_X" : "DOSBOX"));
        if (t.dosbox_x) {
                /* No GUI, its built-in defaults (share emulation on), no
                 * question about a working folder. */
                const char *flags[] = {"-nogui", "-nomenu", "-fastlaunch", "-nopromptfolder",
                                       "-defaultconf"};
                for (size_t i = 0; i < G_N_ELEMENTS(flags); i++)
                        g_ptr_array_add(argv, (char *)flags[i]);
        } else {
                g_ptr_array_add(argv, "-noconsole");
        }
        const char *commands[] = {mount_c, mount_d, "c:", command, "exit"};
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
                g_ptr_array_add(argv, "-c");
                g_ptr_array_add(argv, (char *)commands[i]);
        }
        g_ptr_array_add(argv, NULL);
        g_auto(GStrv) env = g_get_environ();
        env = g_environ_setenv(env, "HOME", t.home, TRUE);
        env = g_environ_setenv(env, "SDL_VIDEODRIVER", "dummy", TRUE);
        env = g_environ_setenv(env, "SDL_AUDIODRIVER", "dummy", TRUE);
        g_autofree char *log = g_build_filename(t.tools, log_name, NULL);
        return interop_spawn_logged((const char *const *)argv->pdata, (const char *const *)env, log);
}

static void dosbox_finish(pid_t pid, const char *what)
{
        cr_assert_gt(pid, 0, "cannot start DOSBox for %s", what);
        if (interop_wait_pid(pid, DOSBOX_RUN_TIMEOUT_MS) == -1) {
                interop_stop_pid(pid, 1000);
                cr_assert_fail("DOSBox running %s did not end in %d s", what, DOSBOX_RUN_TIMEOUT_MS / 1000);
        }
}

/* The result file of a run ("" when the program wrote none). */
static char *dos_result(const char *name)
{
        g_autofree char *path = g_build_filename(t.tools, name, NULL);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return g_strdup("");
        g_strdelimit(text, "\r", ' ');
        g_autoptr(GString) clean = g_string_new(NULL);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **line = lines; *line; line++) {
                g_strstrip(*line);
                if (**line)
                        g_string_append_printf(clean, "%s%s", clean->len ? "; " : "", *line);
        }
        return g_strdup(clean->str);
}

/* Runs @program once on @po_dir and returns its steps. */
static char *dos_run(const char *po_dir, const char *program, const char *tag)
{
        /* DOSBox makes the names it creates upper case. */
        g_autofree char *out = g_strdup_printf("%c%.7s.TXT", g_ascii_toupper(tag[0]), program);
        g_autofree char *out_path = g_build_filename(t.tools, out, NULL);
        g_unlink(out_path);
        g_autofree char *args = g_strdup_printf("D:\\%s", out);
        g_autofree char *log = g_strdup_printf("%s-%s.log", tag, program);
        dosbox_finish(dosbox_start(po_dir, program, args, log), program);
        return dos_result(out);
}

static void dos_copy_programs(void)
{
        const char *dir = getenv("DOS_PROGRAMS");
        for (size_t i = 0; i < G_N_ELEMENTS(programs); i++) {
                g_autofree char *name = g_strdup_printf("%s.COM", programs[i]);
                g_autofree char *from = g_build_filename(dir, name, NULL);
                g_autofree char *to = g_build_filename(t.tools, name, NULL);
                g_autofree char *data = NULL;
                gsize len = 0;
                cr_assert(g_file_get_contents(from, &data, &len, NULL), "no %s", from);
                cr_assert(g_file_set_contents(to, data, (gssize)len, NULL));
        }
}

/* A postoffice on a plain directory and one behind the mount (with
 * @options), the programs on D:, and a DOSBox that runs them. */
static void dos_setup(const char *const *options)
{
        const char *dosbox = getenv(t.dosbox_x ? "DOSBOX_X" : "DOSBOX");
        const char *dir = getenv("DOS_PROGRAMS");
        if ((!dosbox || !*dosbox) && t.dosbox_x)
                dos_skip("dosbox-x not found at build time (Debian 13 ships the package "
                         "dosbox-x, Debian 12 does not)");
        if (!dosbox || !*dosbox)
                dos_skip("dosbox not found at build time (Debian package dosbox)");
        if (!dir || !*dir)
                dos_skip("nasm not found at build time (Debian package nasm): no DOS programs");
        mount_fixture_setup(&t.harness);
        t.raw = g_build_filename(t.harness.dir, "raw", NULL);
        t.tools = g_build_filename(t.harness.dir, "tools", NULL);
        t.home = g_build_filename(t.harness.dir, "home", NULL);
        cr_assert_eq(g_mkdir_with_parents(t.tools, 0755), 0);
        cr_assert_eq(g_mkdir_with_parents(t.home, 0755), 0);
        harness_make_postoffice(t.raw);
        harness_make_postoffice(t.harness.backing);
        dos_copy_programs();

        /* Can DOSBox run a program here at all? */
        g_autofree char *probe = dos_run(t.raw, "GATEWAY", "probe");
        if (!*probe) {
                g_autofree char *log_path = g_build_filename(t.tools, "probe-GATEWAY.log", NULL);
                g_autofree char *log = interop_file_tail(log_path, 1500);
                dos_skip("DOSBox cannot run a DOS program here: %s", log);
        }
        mount_fixture_mount(&t.harness, options);
}

/* Every step answered 0000 (no DOS error). */
static bool all_ok(const char *steps)
{
        if (!*steps)
                return false;
        g_auto(GStrv) items = g_strsplit(steps, "; ", -1);
        for (char **item = items; *item; item++)
                if (!g_str_has_suffix(*item, " 0000"))
                        return false;
        return true;
}

/* ---- alone: the same answers raw and through the mount ---------------- */

Test(dos, dos_programs_alone_match_raw)
{
        static const char *const options[] = {"-olock_timeout=2", NULL};
        dos_setup(options);
        for (size_t i = 0; i < G_N_ELEMENTS(programs); i++) {
                g_autofree char *raw = dos_run(t.raw, programs[i], "raw");
                g_autofree char *mbfs = dos_run(t.harness.mnt, programs[i], "mbfs");
                cr_log_info("%s alone: raw [%s]; mount [%s]", programs[i], raw, mbfs);
                cr_expect(*raw, "%s wrote no result on the plain directory", programs[i]);
                cr_expect_str_eq(mbfs, raw, "%s: raw [%s], through mailbagfs [%s]", programs[i], raw, mbfs);
        }
        mount_fixture_expect_quiet(&t.harness);
}

/* ---- a held queue: wait, never "file not found" ------------------------ */

/* The daemon shows a waiter on @relpath of the mount, or the DOSBox @pid
 * has already ended. */
/* Whether MARK.TXT (the marker every program sets while it holds the
 * queue, see doslib.inc) says a DOS program is inside. */
static bool marker_set_by_dos(void)
{
        g_autofree char *path = g_build_filename(t.harness.backing, "MARK.TXT", NULL);
        g_autofree char *text = NULL;
        return g_file_get_contents(path, &text, NULL, NULL) && text[0] && text[0] != '0';
}

static void wait_for_waiter(const char *relpath, pid_t pid)
{
        g_autofree char *path = g_build_filename(t.harness.mnt, relpath, NULL);
        gint64 deadline = g_get_monotonic_time() + INTEROP_START_TIMEOUT_MS * 1000LL;
        while (g_get_monotonic_time() < deadline) {
                g_autofree char *state = harness_attribute(path, "user.mailbag.lock");
                if (interop_mailbag_waiters(state) > 0)
                        return;
                if (interop_wait_pid(pid, 0) != -1)
                        cr_assert_fail("DOSBox ended before it waited for %s", relpath);
                g_usleep(20 * 1000); /* polling interval of the event check */
        }
        cr_assert_fail("the daemon never showed DOSBox waiting for %s", relpath);
}

/* A local process (this one) holds the queue with @hold_path opened
 * @hold_flags; DOSBox runs @program, which must wait and then get the
 * queue. On the plain directory the same run shows the collision. */
static void dos_check_held(const char *hold_path, int hold_flags, const char *program, const char *wait_on)
{
        g_autofree char *raw_hold = g_build_filename(t.raw, hold_path, NULL);
        /* O_CLOEXEC: a DOSBox started meanwhile must not inherit the hold. */
        int raw_fd = open(raw_hold, hold_flags | O_CLOEXEC, 0644);
        cr_assert_geq(raw_fd, 0, "cannot hold %s", raw_hold);
        g_autofree char *raw = dos_run(t.raw, program, "rawheld");
        close(raw_fd);

        g_autofree char *mnt_hold = g_build_filename(t.harness.mnt, hold_path, NULL);
        int fd = open(mnt_hold, hold_flags | O_CLOEXEC, 0644);
        cr_assert_geq(fd, 0, "cannot hold %s through the mount", mnt_hold);
        g_autofree char *out = g_strdup_printf("H%.7s.TXT", program);
        g_autofree char *out_path = g_build_filename(t.tools, out, NULL);
        g_unlink(out_path);
        /* One session of two ticks with the marker: an open of a file
         * that exists, as of a queue's files, in the session. A program
         * whose create was answered before its lease waits there. */
        g_autofree char *marker = g_build_filename(t.harness.mnt, "MARK.TXT", NULL);
        cr_assert(g_file_set_contents(marker, "0", -1, NULL));
        g_autofree char *args = g_strdup_printf("D:\\%s 1 2 M", out);
        g_autofree char *log = g_strdup_printf("held-%s.log", program);
        pid_t pid = dosbox_start(t.harness.mnt, program, args, log);
        cr_assert_gt(pid, 0);
        /* DOSBox waits in the daemon's line (its result file would say
         * nothing yet: DOSBox buffers a DOS program's writes). */
        wait_for_waiter(wait_on, pid);
        g_usleep(300 * 1000);
        cr_expect_not(marker_set_by_dos(), "%s got into the queue %s holds", program, hold_path);
        close(fd);
        dosbox_finish(pid, program);
        g_autofree char *mbfs = dos_result(out);
        cr_log_info("%s while %s is held: raw [%s]; mount [%s]", program, hold_path, raw, mbfs);
        cr_expect(all_ok(mbfs), "%s through the mount must get the queue once it is free: [%s]",
                  program, mbfs);
        cr_expect(strstr(mbfs, " 0002") == NULL && strstr(mbfs, " 0003") == NULL,
                  "%s heard file or path not found: [%s]", program, mbfs);
}

Test(dos, dos_held_queue_waits_never_not_found)
{
        /* Default options: no hold below ends within the lock timeout
         * for a create to outwait, nor needs to. */
        dos_setup(NULL);
        /* A gateway-style holder (read-only open of the queue's KEY). */
        dos_check_held("KEY/INQUEUE3.KEY", O_RDONLY, "GATEWAY", "KEY/INQUEUE3.KEY");
        dos_check_held("KEY/INQUEUE3.KEY", O_RDONLY, "EXTERNAL", "KEY/INQUEUE3.KEY");
        dos_check_held("KEY/INQUEUE3.KEY", O_RDONLY, "V20", "KEY/INQUEUE3.KEY");
        /* An External-style holder of an existing lock file. */
        dos_check_held("P1/INQUEUE3.0LK", O_RDWR | O_CREAT, "EXTERNAL", "P1/INQUEUE3.0LK");
        dos_check_held("P1/INQUEUE3.0LK", O_RDWR | O_CREAT, "GATEWAY", "P1/INQUEUE3.0LK");
        /* The one-process-at-a-time file. */
        dos_check_held("GLB/CONTROL.GLB", O_RDWR, "CONTROL", "GLB/CONTROL.GLB");
        mount_fixture_expect_quiet(&t.harness);
}

/* ---- a create meeting a busy queue ------------------------------------ */

static long long elapsed_ms(gint64 since_us)
{
        return (g_get_monotonic_time() - since_us) / 1000;
}

/* A gateway (this process) holds INQUEUE3 by its KEY and, as it delivers,
 * deletes a P1 file; meanwhile DOSBox runs @program, whose first step
 * creates its lock file (@lock_step). The create must not hold the P1
 * folder (the kernel locks it for a CREATE), the program must hear no
 * error, and it must not be inside the queue before the gateway lets go.
 * There is no marker yet: the program creates it, a create answered at
 * once while its lease is still deferred, and its write of the marker
 * must wait for that lease all the same. */
static void dos_create_meets_busy_queue(const char *program, const char *lock_step)
{
        g_autofree char *key = g_build_filename(t.harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
        g_autofree char *message = g_build_filename(t.harness.mnt, "P1", "0000000A.P1", NULL);
        g_autofree char *marker = g_build_filename(t.harness.mnt, "MARK.TXT", NULL);
        cr_assert(g_file_set_contents(message, "message", -1, NULL));
        g_unlink(marker);

        int gateway = open(key, O_RDONLY | O_CLOEXEC);
        cr_assert_geq(gateway, 0, "the gateway cannot take the queue");
        g_autofree char *out = g_strdup_printf("B%.7s.TXT", program);
        g_autofree char *out_path = g_build_filename(t.tools, out, NULL);
        g_unlink(out_path);
        g_autofree char *args = g_strdup_printf("D:\\%s 1 2 M", out);
        g_autofree char *log = g_strdup_printf("busy-%s.log", program);
        pid_t pid = dosbox_start(t.harness.mnt, program, args, log);
        cr_assert_gt(pid, 0);
        /* The program is in line: its create came, and was answered or is
         * still held, which the delete below tells apart. */
        wait_for_waiter("KEY/INQUEUE3.KEY", pid);

        gint64 start = g_get_monotonic_time();
        cr_assert_eq(unlink(message), 0, "the gateway's delete: %s", g_strerror(errno));
        long long delete_ms = elapsed_ms(start);
        cr_log_info("%s: the gateway deleted a P1 file in %lld ms while the program waited",
                    program, delete_ms);
        /* A create held in the daemon would hold the folder for the lock
         * timeout (10 s): the bound tells the two apart on any machine. */
        cr_expect_lt(delete_ms, 1000, "%s's create held the P1 folder for %lld ms", program,
                     delete_ms);

        /* The gateway's session goes on a while: nobody else is inside. */
        for (int i = 0; i < 20; i++) {
                cr_expect_not(marker_set_by_dos(), "%s got into the queue the gateway holds",
                              program);
                g_usleep(50 * 1000);
        }
        close(gateway);
        dosbox_finish(pid, program);

        g_autofree char *steps = dos_result(out);
        cr_log_info("%s after a create on a busy queue: [%s]", program, steps);
        g_autofree char *first = g_strdup_printf("%s 0000", lock_step);
        cr_expect(g_str_has_prefix(steps, first), "%s's lock file: [%s]", program, steps);
        cr_expect(all_ok(steps), "%s heard an error or saw another program inside: [%s]", program,
                  steps);
}

Test(dos, dos_create_on_a_busy_queue_never_holds_its_folder)
{
        dos_setup(NULL);
        dos_create_meets_busy_queue("EXTERNAL", "open-0lk");
        dos_create_meets_busy_queue("V20", "create-0nn");
        mount_fixture_expect_quiet(&t.harness);
}

/* The same under DOSBox-X, whose share emulation takes its own fcntl
 * locks (byte 2^32) beside the daemon's sessions. */
Test(dos, dosbox_x_create_on_a_busy_queue_never_holds_its_folder)
{
        t.dosbox_x = true;
        dos_setup(NULL);
        dos_create_meets_busy_queue("EXTERNAL", "open-0lk");
        dos_create_meets_busy_queue("V20", "create-0nn");
        mount_fixture_expect_quiet(&t.harness);
}

/* ---- two emulators, one queue ----------------------------------------- */

#define LOOP_SESSIONS 12

static int count_lines(const char *steps, const char *prefix)
{
        int n = 0;
        g_auto(GStrv) items = g_strsplit(steps, "; ", -1);
        for (char **item = items; *item; item++)
                if (g_str_has_prefix(*item, prefix))
                        n++;
        return n;
}

/* External and a gateway at once on @po_dir, LOOP_SESSIONS sessions each,
 * holding 3 ticks with the marker; their steps go to @ext and @gw. @tag
 * names their result and log files. */
static void dos_run_both_loops(const char *po_dir, const char *tag, char **ext, char **gw)
{
        g_autofree char *lower = g_ascii_strdown(tag, -1);
        g_autofree char *out_e = g_strdup_printf("%sEXT.TXT", tag);
        g_autofree char *out_g = g_strdup_printf("%sGW.TXT", tag);
        g_autofree char *args_e = g_strdup_printf("D:\\%s %d 3 M", out_e, LOOP_SESSIONS);
        g_autofree char *args_g = g_strdup_printf("D:\\%s %d 3 M", out_g, LOOP_SESSIONS);
        g_autofree char *log_e = g_strdup_printf("%s-external.log", lower);
        g_autofree char *log_g = g_strdup_printf("%s-gateway.log", lower);
        pid_t external = dosbox_start(po_dir, "EXTERNAL", args_e, log_e);
        pid_t gateway = dosbox_start(po_dir, "GATEWAY", args_g, log_g);
        dosbox_finish(external, "the External loop");
        dosbox_finish(gateway, "the gateway loop");
        *ext = dos_result(out_e);
        *gw = dos_result(out_g);
        cr_log_info("%s: External loop: [%s]", lower, *ext);
        cr_log_info("%s: gateway loop: [%s]", lower, *gw);
}

Test(dos, dos_external_and_gateway_share_one_queue)
{
        dos_setup(NULL);
        g_autofree char *ext = NULL, *gw = NULL;
        dos_run_both_loops(t.harness.mnt, "LOOP", &ext, &gw);
        cr_expect_eq(count_lines(ext, "open-0lk 0000"), LOOP_SESSIONS, "External sessions: [%s]", ext);
        cr_expect_eq(count_lines(gw, "open-key-read 0000"), LOOP_SESSIONS, "gateway sessions: [%s]", gw);
        cr_expect(all_ok(ext), "External saw an error or the other's hold: [%s]", ext);
        cr_expect(all_ok(gw), "the gateway saw an error or the other's hold: [%s]", gw);
        mount_fixture_expect_quiet(&t.harness);
}

Test(dos, dosbox_x_external_and_gateway_share_one_queue)
{
        t.dosbox_x = true;
        dos_setup(NULL);
        g_autofree char *ext = NULL, *gw = NULL;
        dos_run_both_loops(t.harness.mnt, "XLOOP", &ext, &gw);
        cr_expect_eq(count_lines(ext, "open-0lk 0000"), LOOP_SESSIONS, "External sessions: [%s]", ext);
        cr_expect_eq(count_lines(gw, "open-key-read 0000"), LOOP_SESSIONS, "gateway sessions: [%s]", gw);
        cr_expect(all_ok(ext), "External saw an error or the other's hold: [%s]", ext);
        cr_expect(all_ok(gw), "the gateway saw an error or the other's hold: [%s]", gw);
        mount_fixture_expect_quiet(&t.harness);
}

/* On the plain directory the same two programs collide: DOSBox enforces
 * no sharing mode, so each sees the other's hold on the marker. */
Test(dos, dos_external_and_gateway_collide_on_raw)
{
        dos_setup(NULL);
        g_autofree char *ext = NULL, *gw = NULL;
        dos_run_both_loops(t.raw, "RAW", &ext, &gw);
        cr_expect_eq(count_lines(ext, "open-0lk 0000"), LOOP_SESSIONS);
        cr_expect_eq(count_lines(gw, "open-key-read 0000"), LOOP_SESSIONS);
}

int main(int argc, char *argv[])
{
        /* Two emulators at once load both cores by themselves. */
        return interop_main(argc, argv, NULL, NULL);
}
