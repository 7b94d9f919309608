/* test-passthrough.c - through the mount, every operation gives the same
 * result and errno as on a plain directory (the differential suite), and
 * the daemon's own rules: reserved attribute names, no symlink followed in
 * its own path resolution. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs-script.h"
#include "mount-fixture.h"

static MountHarness harness;

static void mount_default(void)
{
        mount_fixture_start(&harness, NULL);
}

static void unmount_and_check_log(void)
{
        mount_fixture_stop(&harness, NULL);
}

/* A directory on another filesystem than @near, for EXDEV, or NULL. */
static const char *other_filesystem(const char *near)
{
        struct stat a, b;
        if (stat(near, &a) == 0 && stat("/dev/shm", &b) == 0 && a.st_dev != b.st_dev &&
            access("/dev/shm", W_OK) == 0)
                return "/dev/shm";
        return NULL;
}

Test(passthrough, differential, .init = mount_default, .fini = unmount_and_check_log, .timeout = 300)
{
        g_autofree char *raw = g_build_filename(harness.dir, "raw", NULL);
        cr_assert_eq(mkdir(raw, 0755), 0);
        const char *other = other_filesystem(harness.dir);

        g_autofree char *expected = fs_script_run(raw, other);
        g_autofree char *actual = fs_script_run(harness.mnt, other);

        g_auto(GStrv) want = g_strsplit(expected, "\n", -1);
        g_auto(GStrv) got = g_strsplit(actual, "\n", -1);
        guint want_len = g_strv_length(want), got_len = g_strv_length(got);
        /* Sanity: the script really ran (hundreds of steps). */
        cr_assert_gt(want_len, 150, "script transcript too short:\n%s", expected);
        int differences = 0;
        for (guint i = 0; i < MAX(want_len, got_len); i++) {
                const char *w = i < want_len ? want[i] : "(end)";
                const char *g = i < got_len ? got[i] : "(end)";
                if (!g_str_equal(w, g)) {
                        cr_log_error("line %u differs:\n  raw:   %s\n  mount: %s", i + 1, w, g);
                        differences++;
                }
        }
        cr_assert_eq(differences, 0, "%d lines differ between the raw directory and the mount",
                     differences);
}

Test(passthrough, reserved_attribute_names, .init = mount_default, .fini = unmount_and_check_log)
{
        g_autofree char *backing_file = g_build_filename(harness.backing, "KEY", NULL);
        cr_assert_eq(g_file_set_contents(backing_file, "x", 1, NULL), TRUE);
        /* A stray attribute in the daemon's namespace on the backing store
         * (copied from elsewhere) must be neither shown nor served. */
        cr_assert_eq(setxattr(backing_file, "user.mailbag.lock", "forged", 6, 0), 0);
        cr_assert_eq(setxattr(backing_file, "user.keep", "1", 1, 0), 0);

        g_autofree char *file = g_build_filename(harness.mnt, "KEY", NULL);
        char value[64];
        cr_expect_eq(getxattr(file, "user.mailbag.lock", value, sizeof(value)), -1);
        cr_expect_eq(errno, ENODATA);
        cr_expect_eq(setxattr(file, "user.mailbag.anything", "1", 1, 0), -1);
        cr_expect_eq(errno, EPERM);
        cr_expect_eq(removexattr(file, "user.mailbag.lock"), -1);
        cr_expect_eq(errno, EPERM);

        char list[256];
        ssize_t len = listxattr(file, list, sizeof(list));
        cr_assert_gt(len, 0);
        bool saw_keep = false;
        for (ssize_t at = 0; at < len; at += (ssize_t)strlen(list + at) + 1) {
                cr_expect(!g_str_has_prefix(list + at, "user.mailbag."), "listed %s", list + at);
                saw_keep |= g_str_equal(list + at, "user.keep");
        }
        cr_expect(saw_keep, "ordinary attribute missing from the list");
        cr_expect_eq(listxattr(file, NULL, 0), len, "size query disagrees with the list");

        /* Nothing of ours reached the backing file. */
        cr_expect_eq(getxattr(backing_file, "user.mailbag.anything", value, sizeof(value)), -1);
}

static void mount_long_cache(void)
{
        const char *args[] = {"-ocache_timeout=600", NULL};
        mount_fixture_start(&harness, args);
}

Test(passthrough, backing_symlink_swap_is_not_followed, .init = mount_long_cache,
     .fini = unmount_and_check_log)
{
        g_autofree char *dir = g_build_filename(harness.backing, "MAI", NULL);
        g_autofree char *secret_dir = g_build_filename(harness.dir, "outside", NULL);
        g_autofree char *secret = g_build_filename(secret_dir, "SECRET", NULL);
        cr_assert_eq(mkdir(dir, 0755), 0);
        cr_assert_eq(mkdir(secret_dir, 0755), 0);
        cr_assert(g_file_set_contents(secret, "outside the share", -1, NULL));

        /* The kernel caches MAI as a directory of the mount... */
        g_autofree char *through_mount = g_build_filename(harness.mnt, "MAI", NULL);
        struct stat st;
        cr_assert_eq(stat(through_mount, &st), 0);

        /* ...then MAI is swapped for a symlink on the backing store. The
         * daemon's own lookups under the cached MAI must not follow it. */
        g_autofree char *moved = g_build_filename(harness.backing, "MAI.OLD", NULL);
        cr_assert_eq(rename(dir, moved), 0);
        cr_assert_eq(symlink(secret_dir, dir), 0);

        g_autofree char *escape = g_build_filename(through_mount, "SECRET", NULL);
        int fd = open(escape, O_RDONLY);
        int saved = errno;
        if (fd >= 0)
                close(fd);
        cr_expect_eq(fd, -1, "the daemon followed a backing symlink out of the share");
        cr_expect(saved == ELOOP || saved == ENOENT || saved == ESTALE, "errno %s",
                  strerrorname_np(saved));

        /* The renamed directory is still reachable under its new name. */
        g_autofree char *old_name = g_build_filename(harness.mnt, "MAI.OLD", NULL);
        struct stat old_st;
        cr_expect_eq(lstat(old_name, &old_st), 0);
        cr_expect(S_ISDIR(old_st.st_mode));
}

/* Reads @path whole into a new string (NULL when it cannot be read). */
static char *read_through(const char *path)
{
        char *text = NULL;
        return g_file_get_contents(path, &text, NULL, NULL) ? text : NULL;
}

Test(passthrough, a_file_replaced_on_the_backing_store_is_opened_anew, .init = mount_long_cache,
     .fini = unmount_and_check_log)
{
        g_autofree char *through_dir = g_build_filename(harness.mnt, "sub", NULL);
        g_autofree char *through = g_build_filename(through_dir, "QUEUE", NULL);
        cr_assert_eq(mkdir(through_dir, 0755), 0);
        /* Made in place (no rename, which would make the daemon drop the
         * folder descriptors it keeps). */
        int fd = open(through, O_WRONLY | O_CREAT | O_EXCL, 0644);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, "old", 3), 3);
        cr_assert_eq(close(fd), 0);
        /* Opened twice: the daemon keeps what it opened the first time. */
        for (int i = 0; i < 2; i++) {
                g_autofree char *text = read_through(through);
                cr_assert_str_eq(text, "old");
        }

        /* Replaced by a rename on the backing store, outside the mount:
         * the kernel still caches the name (cache_timeout=600), but what
         * the daemon opens must be what the name holds now. */
        g_autofree char *backing = g_build_filename(harness.backing, "sub", "QUEUE", NULL);
        g_autofree char *fresh = g_build_filename(harness.backing, "sub", "QUEUE.NEW", NULL);
        cr_assert(g_file_set_contents(fresh, "new", -1, NULL));
        cr_assert_eq(rename(fresh, backing), 0);
        for (int i = 0; i < 2; i++) {
                g_autofree char *text = read_through(through);
                cr_expect_str_eq(text ? text : "(unreadable)", "new",
                                 "open %d after the replacement", i + 1);
        }
}
