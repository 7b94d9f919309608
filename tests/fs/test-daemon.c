/* test-daemon.c - the command line as a user meets it: help, version,
 * one-line errors for bad directories, mount(8) and fstab-style mounts
 * through mount.fuse3, and the descriptor bound over many files. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount-fixture.h"
#include "tool-run.h"

Test(daemon, help_and_version)
{
        g_auto(ToolRun) help = {0};
        tool_runv(&help, "MAILBAGFS", (const char *[]){"--help", NULL});
        cr_expect_eq(help.status, 0);
        cr_expect(strstr(help.out, "BACKING MOUNTPOINT"), "help: %s", help.out);
        cr_expect(strstr(help.out, "log_level"), "help lacks our options");

        g_auto(ToolRun) version = {0};
        tool_runv(&version, "MAILBAGFS", (const char *[]){"--version", NULL});
        cr_expect_eq(version.status, 0);
        cr_expect(g_str_has_prefix(version.out, "mailbagfs version "), "%s", version.out);
}

static int line_count(const char *text)
{
        int lines = 0;
        for (const char *p = text; *p; p++)
                lines += *p == '\n';
        return lines;
}

Test(daemon, clear_errors_for_bad_directories)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("mailbagfs-cli-XXXXXX", &error);
        cr_assert_not_null(dir);
        g_autofree char *file = g_build_filename(dir, "FILE", NULL);
        g_autofree char *missing = g_build_filename(dir, "MISSING", NULL);
        g_autofree char *inside = g_build_filename(dir, "INSIDE", NULL);
        cr_assert(g_file_set_contents(file, "x", 1, NULL));
        cr_assert_eq(mkdir(inside, 0755), 0);

        struct {
                const char *backing, *mountpoint, *expect;
        } cases[] = {
                {missing, dir, "backing directory"},
                {file, dir, "Not a directory"},
                {dir, missing, "mountpoint"},
                {dir, inside, "inside the backing directory"},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_auto(ToolRun) r = {0};
                tool_runv(&r, "MAILBAGFS", (const char *[]){cases[i].backing, cases[i].mountpoint, "-f", NULL});
                cr_expect_neq(r.status, 0, "case %zu succeeded", i);
                cr_expect(strstr(r.err, cases[i].expect), "case %zu: %s", i, r.err);
                cr_expect(strstr(r.err, cases[i].backing) || strstr(r.err, cases[i].mountpoint),
                          "case %zu names no path: %s", i, r.err);
                cr_expect_eq(line_count(r.err), 1, "case %zu: not one line: %s", i, r.err);
        }

        g_auto(ToolRun) none = {0};
        tool_runv(&none, "MAILBAGFS", (const char *[]){NULL});
        cr_expect_neq(none.status, 0);
        cr_expect(strstr(none.err, "no backing directory"), "%s", none.err);

        g_auto(ToolRun) bad_level = {0};
        tool_runv(&bad_level, "MAILBAGFS", (const char *[]){dir, inside, "-o", "log_level=loud", NULL});
        cr_expect_neq(bad_level.status, 0);
        cr_expect(strstr(bad_level.err, "log_level"), "%s", bad_level.err);

        harness_remove_tree(dir);
}

/* A hostile or mistyped -o value is refused in one line that names it:
 * fuse_opt alone took "5abc" as 5 and "nan" as a number, and read a profile
 * from /dev/zero without end or from a FIFO for ever. */
Test(daemon, bad_option_values_are_refused_in_one_line, .timeout = 60)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("mailbagfs-cli-XXXXXX", &error);
        cr_assert_not_null(dir);
        g_autofree char *mnt = g_build_filename(dir, "MNT", NULL);
        g_autofree char *backing = g_build_filename(dir, "BACKING", NULL);
        g_autofree char *fifo = g_build_filename(dir, "PROFILE.FIFO", NULL);
        cr_assert_eq(mkdir(mnt, 0755), 0);
        cr_assert_eq(mkdir(backing, 0755), 0);
        cr_assert_eq(mkfifo(fifo, 0644), 0);
        g_autofree char *fifo_option = g_strdup_printf("profile=%s", fifo);
        g_autofree char *dir_option = g_strdup_printf("profile=%s", dir);

        struct {
                const char *option, *named;
        } cases[] = {
                {"lock_timeout=nan", "lock_timeout"},   {"lock_timeout=5abc", "lock_timeout"},
                {"lock_timeout=inf", "lock_timeout"},   {"lock_timeout=", "lock_timeout"},
                {"cache_timeout=1e999", "cache_timeout"}, {"cache_timeout=0x", "cache_timeout"},
                {"ready_fd=3.5", "ready_fd"},           {"ready_fd=-2", "ready_fd"},
                {"profile=/dev/zero", "/dev/zero"},     {fifo_option, fifo},
                {dir_option, dir},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_auto(ToolRun) r = {0};
                tool_runv(&r, "MAILBAGFS",
                          (const char *[]){backing, mnt, "-f", "-o", cases[i].option, NULL});
                cr_expect_neq(r.status, 0, "-o %s was taken", cases[i].option);
                cr_expect(strstr(r.err, cases[i].named), "-o %s: %s", cases[i].option, r.err);
                cr_expect_eq(line_count(r.err), 1, "-o %s: not one line: %s", cases[i].option,
                             r.err);
        }
        harness_remove_tree(dir);
}

/* For type fuse.mailbagfs, mount(8) runs "mount.fuse3 BACKING MOUNTPOINT
 * -t mailbagfs -o OPTIONS", which runs "mailbagfs BACKING MOUNTPOINT -o
 * OPTIONS" from PATH and lets it daemonize: the way an fstab line mounts
 * it. mount(8) gives its helper a fixed PATH, so the test calls the helper
 * the same way with the build directory on PATH. */
Test(daemon, mount_through_mount_fuse3, .timeout = 60)
{
        MountHarness h;
        mount_fixture_setup(&h);
        g_autofree char *marker = g_build_filename(h.backing, "POPULATE.MSM", NULL);
        cr_assert(g_file_set_contents(marker, "\0", 1, NULL));

        g_autofree char *bindir = g_path_get_dirname(getenv("MAILBAGFS"));
        g_autofree char *path = g_strdup_printf("%s:%s", bindir, g_getenv("PATH"));
        g_autofree char *command = g_strdup_printf(
                "PATH='%s' mount.fuse3 '%s' '%s' -t mailbagfs -o allow_other,rw", path, h.backing, h.mnt);
        int status = system(command);
        cr_assert_eq(status, 0, "mount failed: %s", command);

        g_autofree char *through = g_build_filename(h.mnt, "POPULATE.MSM", NULL);
        struct stat st;
        cr_expect_eq(stat(through, &st), 0);
        cr_expect_eq(st.st_size, 1);

        g_autofree char *mounts = NULL;
        cr_assert(g_file_get_contents("/proc/self/mounts", &mounts, NULL, NULL));
        g_autofree char *entry = g_strdup_printf("%s %s fuse.mailbagfs ", h.backing, h.mnt);
        cr_expect(strstr(mounts, entry), "no mount entry '%s'", entry);

        g_autofree char *unmount = g_strdup_printf("umount '%s'", h.mnt);
        cr_expect_eq(system(unmount), 0);
        mount_harness_teardown(&h);
}

static bool is_mounted_at(const char *mnt)
{
        return harness_is_mounted(mnt, "fuse.mailbagfs");
}

static MountHarness dead_mount;

static void dead_mount_cleanup(void)
{
        if (dead_mount.mnt && is_mounted_at(dead_mount.mnt)) {
                g_autofree char *command = g_strdup_printf("fusermount3 -u -z '%s'", dead_mount.mnt);
                cr_expect_eq(system(command), 0);
        }
        mount_harness_teardown(&dead_mount);
}

/* A daemon killed without auto_unmount (as fstab and systemd mount it)
 * leaves a dead mount behind: the next start says, in one line, what to
 * run, and refuses to hide it under a new mount; a live one is refused too. */
Test(daemon, dead_mount_is_named_with_its_remedy, .timeout = 60, .fini = dead_mount_cleanup)
{
        MountHarness *h = &dead_mount;
        mount_fixture_setup(h);
        const char *daemon = tool_path("MAILBAGFS");
        GPid pid;
        const char *argv[] = {daemon, h->backing, h->mnt, "-f", NULL};
        cr_assert(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
                                G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &pid, NULL));
        for (int i = 0; i < 2000 && !is_mounted_at(h->mnt); i++)
                g_usleep(5000);
        cr_assert(is_mounted_at(h->mnt));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);

        g_auto(ToolRun) again = {0};
        tool_run(&again, "MAILBAGFS", h->backing, h->mnt, NULL);
        cr_expect_eq(again.status, 1);
        cr_expect_eq(line_count(again.err), 1, "stderr: %s", again.err);
        g_autofree char *remedy = g_strdup_printf("run 'fusermount3 -u -z %s'", h->mnt);
        cr_expect(strstr(again.err, "dead mailbagfs mount") && strstr(again.err, remedy),
                  "stderr: %s", again.err);

        g_autofree char *command = g_strdup_printf("fusermount3 -u -z '%s'", h->mnt);
        cr_assert_eq(system(command), 0);
        g_auto(ToolRun) fresh = {0};
        tool_run(&fresh, "MAILBAGFS", h->backing, h->mnt, NULL);
        cr_expect_eq(fresh.status, 0, "stderr: %s", fresh.err);
        cr_expect(is_mounted_at(h->mnt));

        g_auto(ToolRun) twice = {0};
        tool_run(&twice, "MAILBAGFS", h->backing, h->mnt, NULL);
        cr_expect_eq(twice.status, 1);
        cr_expect(strstr(twice.err, "already served by a mailbagfs daemon"), "stderr: %s", twice.err);
}

/* Starts a mount and returns the descriptors its daemon holds then, its
 * splice pipe ends apart (in @pipes). */
static int mount_counting_fds(MountHarness *h, int *pipes)
{
        mount_fixture_start(h, NULL);
        int baseline = harness_count_fds(h->daemon, pipes);
        cr_assert_gt(baseline, 0);
        return baseline;
}

/* A postoffice has hundreds of thousands of files: the daemon's
 * descriptors follow what clients hold open, not what they have seen. */
Test(daemon, descriptors_bounded_over_many_files, .timeout = 900)
{
        MountHarness h;
        int pipes = 0;
        int baseline = mount_counting_fds(&h, &pipes);

        const char *count_env = getenv("MAILBAGFS_MANY_FILES");
        int files = count_env ? atoi(count_env) : 200000;
        g_autofree char *dir = g_build_filename(h.mnt, "P1", NULL);
        cr_assert_eq(mkdir(dir, 0755), 0);
        int failures = 0;
        for (int i = 0; i < files; i++) {
                char name[64];
                snprintf(name, sizeof(name), "%s/%08X.P1", dir, i);
                int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd < 0 || write(fd, "P1", 2) != 2)
                        failures++;
                if (fd >= 0)
                        close(fd);
        }
        int after_create = harness_count_fds(h.daemon, &pipes);

        /* While a client holds 100 files open, the daemon holds about as
         * many; when it lets go, they are gone. */
        int held[100];
        for (int i = 0; i < 100; i++) {
                char name[64];
                snprintf(name, sizeof(name), "%s/%08X.P1", dir, i);
                held[i] = open(name, O_RDONLY);
        }
        int while_held = harness_count_fds(h.daemon, &pipes);
        for (int i = 0; i < 100; i++)
                close(held[i]);

        for (int i = 0; i < files; i++) {
                char name[64];
                snprintf(name, sizeof(name), "%s/%08X.P1", dir, i);
                if (unlink(name) < 0)
                        failures++;
        }
        cr_expect_eq(rmdir(dir), 0);
        int at_end = harness_count_fds(h.daemon, &pipes);
        cr_log_info("daemon fds: baseline %d, after %d creates %d, with 100 held %d, at end %d "
                    "(plus %d splice pipe ends)",
                    baseline, files, after_create, while_held, at_end, pipes);

        cr_expect_eq(failures, 0, "%d file operations failed", failures);
        /* Besides, the daemon keeps at most 64 folders and 64 other nodes
         * it served lately and the /proc files of 64 callers. */
        int kept_max = 3 * 64;
        cr_expect_leq(after_create, baseline + 4 + kept_max);
        cr_expect_geq(while_held, baseline + 100);
        cr_expect_leq(while_held, baseline + 104 + kept_max);
        cr_expect_leq(at_end, baseline + 4);
        cr_expect_leq(pipes, 2 * 10 + 1, "%d pipe ends", pipes);
        cr_expect_eq(mount_harness_unmount(&h), 0);
        mount_harness_teardown(&h);
}

/* The folders requests were made in are kept open for a while: no more
 * than 64 of them, however many folders clients go through, and none
 * once the folders are removed. */
Test(daemon, folder_descriptors_are_bounded, .timeout = 120)
{
        MountHarness h;
        int pipes = 0;
        int baseline = mount_counting_fds(&h, &pipes);

        enum { FOLDERS = 300 };
        for (int i = 0; i < FOLDERS; i++) {
                g_autofree char *dir = g_strdup_printf("%s/D%03d", h.mnt, i);
                g_autofree char *file = g_strdup_printf("%s/F", dir);
                cr_assert_eq(mkdir(dir, 0755), 0, "%s: %s", dir, g_strerror(errno));
                /* Made in place (g_file_set_contents renames into place,
                 * and a rename lets every kept folder go). */
                int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
                cr_assert_geq(fd, 0, "%s: %s", file, g_strerror(errno));
                close(fd);
        }
        int with_folders = harness_count_fds(h.daemon, &pipes);
        for (int i = 0; i < FOLDERS; i++) {
                g_autofree char *dir = g_strdup_printf("%s/D%03d", h.mnt, i);
                g_autofree char *file = g_strdup_printf("%s/F", dir);
                cr_expect_eq(unlink(file), 0, "%s: %s", file, g_strerror(errno));
                cr_expect_eq(rmdir(dir), 0, "%s: %s", dir, g_strerror(errno));
        }
        int at_end = harness_count_fds(h.daemon, &pipes);
        cr_log_info("daemon fds: baseline %d, with %d folders %d, at end %d", baseline, FOLDERS,
                    with_folders, at_end);
        cr_expect_geq(with_folders, baseline + 32, "folders are not kept at all");
        cr_expect_leq(with_folders, baseline + 64 + 4);
        cr_expect_leq(at_end, baseline + 4);
        cr_expect_eq(mount_harness_unmount(&h), 0);
        mount_harness_teardown(&h);
}

/* A folder replaced on the backing store (renamed away, another made at
 * its name) takes the files made by its name once the kernel looks the
 * name up again: when the name cache time has passed, and at once with
 * cache_timeout=0; no folder descriptor the daemon keeps sends them to
 * the old folder. */
static void replaced_folder_takes_new_files(const char *timeout, unsigned wait_ms)
{
        MountHarness h;
        g_autofree char *option = g_strdup_printf("-ocache_timeout=%s", timeout);
        const char *args[] = {option, NULL};
        mount_fixture_start(&h, args);
        g_autofree char *mnt_dir = g_build_filename(h.mnt, "Q", NULL);
        g_autofree char *first = g_build_filename(mnt_dir, "first", NULL);
        g_autofree char *second = g_build_filename(mnt_dir, "second", NULL);
        g_autofree char *backing_dir = g_build_filename(h.backing, "Q", NULL);
        g_autofree char *backing_old = g_build_filename(h.backing, "Q.old", NULL);
        g_autofree char *landed = g_build_filename(backing_dir, "second", NULL);

        cr_assert_eq(mkdir(mnt_dir, 0755), 0);
        cr_assert(g_file_set_contents(first, "1", 1, NULL));
        cr_assert_eq(rename(backing_dir, backing_old), 0);
        cr_assert_eq(mkdir(backing_dir, 0755), 0);
        g_usleep(wait_ms * 1000);
        cr_assert(g_file_set_contents(second, "2", 1, NULL), "%s", second);
        cr_expect(g_file_test(landed, G_FILE_TEST_EXISTS),
                  "cache_timeout=%s: a file made %u ms after the folder was replaced went to "
                  "the old folder", timeout, wait_ms);
        cr_expect_eq(mount_harness_unmount(&h), 0);
        mount_harness_teardown(&h);
}

Test(daemon, a_replaced_folder_takes_new_files_after_the_cache_time, .timeout = 60)
{
        replaced_folder_takes_new_files("0.3", 600);
        replaced_folder_takes_new_files("0", 0);
}

/* A folder removed and made again on the backing store while the kernel
 * still holds its old node (a long cache_timeout): a create in it finds
 * the new folder at once, though the daemon kept the old one's
 * descriptor. */
Test(daemon, a_folder_made_again_takes_new_files_at_once, .timeout = 60)
{
        MountHarness h;
        const char *args[] = {"-ocache_timeout=30", NULL};
        mount_fixture_start(&h, args);
        g_autofree char *mnt_dir = g_build_filename(h.mnt, "Q", NULL);
        g_autofree char *first = g_build_filename(mnt_dir, "first", NULL);
        g_autofree char *second = g_build_filename(mnt_dir, "second", NULL);
        g_autofree char *backing_dir = g_build_filename(h.backing, "Q", NULL);
        g_autofree char *backing_first = g_build_filename(backing_dir, "first", NULL);
        g_autofree char *landed = g_build_filename(backing_dir, "second", NULL);

        cr_assert_eq(mkdir(mnt_dir, 0755), 0);
        int fd = open(first, O_WRONLY | O_CREAT | O_EXCL, 0644);
        cr_assert_geq(fd, 0, "%s: %s", first, g_strerror(errno));
        close(fd);
        cr_assert_eq(unlink(backing_first), 0);
        cr_assert_eq(rmdir(backing_dir), 0);
        cr_assert_eq(mkdir(backing_dir, 0755), 0);
        fd = open(second, O_WRONLY | O_CREAT | O_EXCL, 0644);
        cr_expect_geq(fd, 0, "%s: %s", second, g_strerror(errno));
        if (fd >= 0)
                close(fd);
        cr_expect(g_file_test(landed, G_FILE_TEST_EXISTS), "the file is not in the new folder");
        cr_expect_eq(mount_harness_unmount(&h), 0);
        mount_harness_teardown(&h);
}
